"""The run directory: the contract between the local launcher and the runner.

File names and crash-safe writes, shared by both sides (neither imports the other).
Readers (the launcher polling from another process) must never see a half-written
file, so every write goes to a temporary file that is then renamed into place.

Nothing secret is ever written here: spec.json is the spec without its credentials and
run token (those reach the runner through a pipe), and everything the runner logs is
masked first. The directory is private to Optio's user (0700) and is never mounted
into a sandbox. When the run ends it is stripped down to result.json, progress.json, pid and the
runner's log; a sweep removes what is left after a retention period.
"""

from __future__ import annotations

import contextlib
import os
import shutil
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


# What a finished run keeps until the sweep: enough for a retried activity to read its
# result instead of starting a second agent.
KEPT_AFTER_RUN = frozenset({RESULT, PROGRESS, PID, RUNNER_LOG, ".launch.lock"})
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_run_dir(run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(run_dir, PRIVATE_DIR)


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write_text(path: Path, text: str, *, durable: bool = True) -> None:
    """Readers see the old or the new text, never half; `durable` also survives power loss."""
    tmp = _tmp_path(path)
    with open(_private(tmp), "w", encoding="utf-8") as fh:
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
    with open(_private(tmp), "w", encoding="utf-8") as fh:
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


def _private(path: Path) -> int:
    """An fd for `path`, created 0600 whatever the umask."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)


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


def write_spec(run_dir: Path, spec: RunSpec) -> None:
    atomic_write_text(run_dir / SPEC, spec.public_json())


def read_spec(run_dir: Path, secrets: str | None = None) -> RunSpec:
    """The spec as written, joined with the `secrets` JSON the launcher piped over."""
    return RunSpec.joined((run_dir / SPEC).read_bytes(), secrets)


def strip_run_dir(run_dir: Path, *, keep_spool: bool = False) -> None:
    """Remove everything a finished run no longer needs (see KEPT_AFTER_RUN)."""
    keep = KEPT_AFTER_RUN | ({SPOOL} if keep_spool else set())
    with contextlib.suppress(FileNotFoundError):
        for entry in run_dir.iterdir():
            if entry.name in keep:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def read_result(run_dir: Path) -> RunResult | None:
    return _read_model(run_dir / RESULT, RunResult)


def read_progress(run_dir: Path) -> RunProgress | None:
    return _read_model(run_dir / PROGRESS, RunProgress)


def read_pid(run_dir: Path) -> int | None:
    with contextlib.suppress(FileNotFoundError, ValueError):
        return int((run_dir / PID).read_text().strip())
    return None
