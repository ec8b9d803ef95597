"""The `optio` command."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import TYPE_CHECKING

import typer

from cli.client.commands import register_client
from cli.serve import settle_heap

if TYPE_CHECKING:
    from core.settings import Settings

# The server commands import the server (SQLAlchemy, Temporal, FastAPI) when they run:
# the client commands, run many times a day, start without it.

app = typer.Typer(
    help="Optio: AI coding agents from prompt to merged PR, on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
token_app = typer.Typer(help="API tokens for the local admin.")
app.add_typer(token_app, name="token")
secrets_app = typer.Typer(help="Encrypted secrets: server-side maintenance.")
app.add_typer(secrets_app, name="secrets")
register_client(app)


def _settings() -> Settings:
    from core.settings import Settings

    try:
        return Settings()
    except Exception as exc:
        _fail(f"invalid settings: {exc}")
        raise


def _fail(message: str) -> None:
    print(f"optio: {message}", file=sys.stderr)
    raise typer.Exit(1)


def _prepare(settings: Settings, *, run_migrations: bool) -> None:
    from cli.bootstrap import StartupError, ensure_data_dir, ensure_encryption_key, migrate

    try:
        ensure_data_dir(settings)
        ensure_encryption_key(settings)
        if run_migrations:
            migrate(settings)
    except StartupError as exc:
        _fail(str(exc))


@app.command()
def up() -> None:
    """Start Temporal (unless OPTIO_TEMPORAL_ADDRESS is set), the worker and the API."""
    from cli.bootstrap import StartupError
    from cli.up import run_up

    try:
        raise typer.Exit(run_up(_settings()))
    except StartupError as exc:
        _fail(str(exc))


@app.command()
def api(
    no_migrate: bool = typer.Option(False, "--no-migrate", hidden=True),
    fd: int | None = typer.Option(None, "--fd", hidden=True),
) -> None:
    """Run the HTTP API (uvicorn)."""
    from cli.serve import ServeError, serve_api

    settings = _settings()
    _prepare(settings, run_migrations=not no_migrate)
    try:
        started = serve_api(settings, fd=fd)
    except ServeError as exc:
        _fail(str(exc))
    if not started:
        raise typer.Exit(3)  # uvicorn's own code for a failed startup


@app.command()
def worker(no_migrate: bool = typer.Option(False, "--no-migrate", hidden=True)) -> None:
    """Run a Temporal worker for Optio's workflows and activities."""
    from worker.main import run_worker

    settings = _settings()
    _prepare(settings, run_migrations=not no_migrate)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settle_heap()
    try:
        asyncio.run(run_worker(settings))
    except RuntimeError as exc:
        _fail(f"worker stopped: {exc}")


@app.command(name="migrate")
def migrate_command() -> None:
    """Apply database migrations."""
    settings = _settings()
    _prepare(settings, run_migrations=True)
    print(f"migrations applied to {settings.database_url_resolved.split('@')[-1]}")


@app.command()
def openapi() -> None:
    """Print the OpenAPI document as JSON, starting nothing."""
    from api.main import create_app
    from core.settings import Settings

    print(json.dumps(create_app(Settings()).openapi(), indent=2))


@app.command()
def temporal() -> None:
    """Run only the Temporal dev server, in the foreground."""
    import os

    from temporal.devserver import TemporalBinaryMissing, dev_server_command, port_in_use

    settings = _settings()
    _prepare(settings, run_migrations=False)
    if port_in_use("127.0.0.1", settings.temporal_port):
        _fail(f"Temporal port 127.0.0.1:{settings.temporal_port} is already in use")
    try:
        command = dev_server_command(settings)
    except TemporalBinaryMissing as exc:
        _fail(str(exc))
        return
    os.execv(command[0], command)


@secrets_app.command("rotate-key")
def secrets_rotate_key(
    new_key: str = typer.Option(
        "", "--new-key", envvar="OPTIO_NEW_ENCRYPTION_KEY", help="Default: generate one"
    ),
) -> None:
    """Re-encrypt every secret under a new encryption key."""
    from cli.bootstrap import StartupError
    from cli.secrets import rotate

    settings = _settings()
    key_in_data_dir = not settings.encryption_key
    _prepare(settings, run_migrations=True)
    try:
        print(rotate(settings, new_key=new_key or None, key_in_data_dir=key_in_data_dir))
    except StartupError as exc:
        _fail(str(exc))


@token_app.command("create")
def token_create(name: str = typer.Option("cli", help="A label for the token")) -> None:
    """Mint an API token for the local admin and print it once."""
    from cli.bootstrap import StartupError, bootstrap
    from cli.locate import locate
    from store.auth import create_api_token, local_admin_id
    from store.db import create_engine, session_factory, transaction

    try:
        settings = locate(_settings())
    except StartupError as exc:
        _fail(str(exc))
        raise
    _prepare(settings, run_migrations=True)
    bootstrap(settings)

    async def mint() -> str:
        engine = create_engine(settings.database_url_resolved)
        try:
            async with transaction(session_factory(engine)) as session:
                user_id = await local_admin_id(session)
                assert user_id is not None
                return await create_api_token(session, user_id=user_id, name=name)
        finally:
            await engine.dispose()

    print(asyncio.run(mint()))
