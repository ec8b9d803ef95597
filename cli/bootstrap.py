"""Start-up steps shared by `optio up`, `optio api` and `optio worker`."""

from __future__ import annotations

import asyncio
import secrets

from core.settings import Settings
from store.auth import Bootstrap, bootstrap_local_admin
from store.db import create_engine, session_factory, transaction
from store.migrate import upgrade


class StartupError(Exception):
    """A problem a person can fix, reported in one line."""


def ensure_data_dir(settings: Settings) -> None:
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create data dir {settings.data_dir}: {exc.strerror}") from exc


def ensure_encryption_key(settings: Settings) -> None:
    """Generate a key into the data dir once, so secrets survive restarts without setup."""
    if settings.encryption_key:
        return
    key_file = settings.data_dir / "encryption.key"
    if not key_file.exists():
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_hex(32))
    settings.encryption_key = key_file.read_text().strip()


def migrate(settings: Settings) -> None:
    try:
        upgrade(settings.database_url_resolved)
    except Exception as exc:
        raise StartupError(f"database unreachable or migration failed: {_one_line(exc)}") from exc


def bootstrap(settings: Settings) -> Bootstrap:
    async def run() -> Bootstrap:
        engine = create_engine(settings.database_url_resolved)
        try:
            async with transaction(session_factory(engine)) as session:
                return await bootstrap_local_admin(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
