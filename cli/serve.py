"""The API process: `optio api`, and what `optio up` starts as `python -m cli.serve`.

`optio up` starts the API as this module rather than `optio api`: the `optio` command
imports its client commands to register them (typer, rich, pygments), some 2 MiB the
server never uses, and httpx imports its own command-line client (rich, pygments) when
those are installed, some 3 MiB more (docs/benchmarks.md, memory). Here neither is
imported: the API's idle RSS is what the server needs.
"""

from __future__ import annotations

import gc
import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.settings import Settings


def settle_heap() -> None:
    """Hide what the imports built from the garbage collector: it lives as long as the
    process, and a full collection would otherwise walk all of it every time, a pause of
    tens of milliseconds in the middle of a request."""
    gc.collect()
    gc.freeze()


class ServeError(Exception):
    """Said on stderr as `optio: ...`, exit code 1."""


def serve_api(settings: Settings, fd: int | None = None) -> bool:
    """Serve until stopped; False if uvicorn could not start. `fd`: a socket `optio up`
    bound for this process (cli/api_sockets.py), maybe one of several on the same port."""
    import contextlib
    import socket

    import uvicorn

    from api.main import create_app
    from temporal.devserver import port_in_use

    if fd is None and port_in_use(settings.api_host, settings.api_port):
        raise ServeError(f"API port {settings.api_host}:{settings.api_port} is already in use")
    logging.basicConfig(level=logging.INFO)
    app = create_app(settings)
    settle_heap()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.api_host,
            port=settings.api_port,
            log_level="warning",
            timeout_graceful_shutdown=3,
            # Outlive typical client and load-balancer idle timeouts (60 s).
            timeout_keep_alive=75,
        )
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled
        server.run(sockets=None if fd is None else [socket.socket(fileno=fd)])
    return bool(server.started)


def main() -> int:
    """`optio up`'s API child (`python -m cli.serve --fd N`): the data dir and key are
    ready, migrations are done."""
    # httpx's package imports `httpx._main` (its CLI) only to offer `httpx.main`, and
    # falls back to a stub of its own when that import fails: nothing here calls it.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    from cli.bootstrap import StartupError, ensure_data_dir, ensure_encryption_key
    from core.settings import Settings

    try:
        settings = Settings()
    except Exception as exc:
        print(f"optio: invalid settings: {exc}", file=sys.stderr)
        return 1
    try:
        ensure_data_dir(settings)
        ensure_encryption_key(settings)
        started = serve_api(settings, fd=int(sys.argv[2]) if sys.argv[1:2] == ["--fd"] else None)
    except (StartupError, ServeError) as exc:
        print(f"optio: {exc}", file=sys.stderr)
        return 1
    return 0 if started else 3  # uvicorn's own code for a failed startup


if __name__ == "__main__":
    sys.exit(main())
