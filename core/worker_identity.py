"""Which worker this process is, for the runs whose worktree it holds.

With the local launcher a run's worktree and runner live on one worker's disk, so every
later activity of that run goes to that worker's own task queue,
`<OPTIO_TASK_QUEUE>@<worker id>` (docs/deployment.md#workers-on-several-machines). The
id survives restarts: a worker that comes back with the same data dir serves its runs
again.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

from core.settings import Settings

WORKER_ID_FILE = "worker-id"
_VALID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def worker_id(settings: Settings) -> str:
    """OPTIO_WORKER_ID, or one generated once into the data dir and kept there."""
    if settings.worker_id:
        return settings.worker_id
    path = settings.data_dir / WORKER_ID_FILE
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if _VALID.match(existing):
        return existing
    fresh = f"w-{uuid.uuid4().hex[:12]}"
    _write_once(path, fresh)
    return path.read_text().strip()


def host_queue(settings: Settings) -> str:
    """The task queue only this worker polls."""
    return f"{settings.task_queue}@{worker_id(settings)}"


def _write_once(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting on one data dir agree on the first id written.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
