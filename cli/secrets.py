"""`optio secrets rotate-key`: re-encrypt every secret under a new key, all or nothing."""

from __future__ import annotations

import asyncio
import secrets

from cli.bootstrap import StartupError
from core.crypto import WeakKeyError, check_key, derive_key
from core.settings import Settings
from store.db import create_engine, session_factory, transaction
from store.secrets import KEY_FILE, rotate_key, write_key_file


def rotate(settings: Settings, *, new_key: str | None, key_in_data_dir: bool) -> str:
    """Returns what to tell the operator; the new key is printed only when we generated it
    and it does not live in the data dir."""
    value = new_key or secrets.token_hex(32)
    try:
        check_key(value)
        old, new = derive_key(settings.encryption_key), derive_key(value)
    except WeakKeyError as exc:
        raise StartupError(str(exc)) from None
    pending = settings.data_dir / f"{KEY_FILE}.next"
    if key_in_data_dir:
        # Written before the commit: a crash in between leaves the new key recoverable.
        write_key_file(settings.data_dir, value, name=pending.name)

    async def run() -> int:
        engine = create_engine(settings.database_url_resolved)
        try:
            async with transaction(session_factory(engine)) as session:
                return await rotate_key(session, old_key=old, new_key=new)
        finally:
            await engine.dispose()

    count = asyncio.run(run())
    if key_in_data_dir:
        pending.replace(settings.data_dir / KEY_FILE)
        return (
            f"re-encrypted {count} secrets; the new key is in {settings.data_dir / KEY_FILE}. "
            "Restart the API and the worker."
        )
    message = (
        f"re-encrypted {count} secrets. Set OPTIO_ENCRYPTION_KEY to the new key everywhere "
        "and restart the API and the worker."
    )
    return message if new_key else f"{message}\nnew key: {value}"
