"""The run directory: file names and crash-safe writes shared by runner and launcher.

Readers (the launcher polling from another process) must never see a half-written
file, so every write goes to a temporary file that is then renamed into place.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from schemas.runner import RunProgress, RunResult, RunSpec

SPEC = "spec.json"
PID = "pid"
PROGRESS = "progress.json"
RESULT = "result.json"
RUNNER_LOG = "runner.log"
SPOOL = "spool.ndjson"

M = TypeVar("M", bound=BaseModel)


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write_text(path: Path, text: str, *, durable: bool = True) -> None:
    """Readers see the old or the new text, never half; `durable` also survives power loss."""
    tmp = _tmp_path(path)
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_once_text(path: Path, text: str) -> bool:
    """Create `path` with `text` unless it exists; False if someone wrote it first.

    os.link fails if the target exists, so two writers (the runner and a launcher
    stopping it) cannot overwrite each other's result.
    """
    tmp = _tmp_path(path)
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def dump(model: BaseModel) -> str:
    return model.model_dump_json(by_alias=True)


def write_result(run_dir: Path, result: RunResult) -> bool:
    return write_once_text(run_dir / RESULT, dump(result))


def write_progress(run_dir: Path, progress: RunProgress) -> None:
    # Rewritten many times a second while logs flow; a runner killed mid-way leaves the
    # page cache behind, and a machine that loses power loses the runner as well.
    atomic_write_text(run_dir / PROGRESS, dump(progress), durable=False)


def _read_model(path: Path, model: type[M]) -> M | None:
    try:
        return model.model_validate_json(path.read_bytes())
    except (FileNotFoundError, ValidationError, ValueError):
        return None


def read_spec(run_dir: Path) -> RunSpec:
    return RunSpec.model_validate_json((run_dir / SPEC).read_bytes())


def read_result(run_dir: Path) -> RunResult | None:
    return _read_model(run_dir / RESULT, RunResult)


def read_progress(run_dir: Path) -> RunProgress | None:
    return _read_model(run_dir / PROGRESS, RunProgress)


def read_pid(run_dir: Path) -> int | None:
    with contextlib.suppress(FileNotFoundError, ValueError):
        return int((run_dir / PID).read_text().strip())
    return None
