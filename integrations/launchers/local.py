"""Runs agent runs as detached local processes (`python -m runner <run_dir>`).

The runner is started in its own session so it outlives the worker that launched it:
a worker crash does not kill the agent, and the retried activity re-attaches to the
run through the files in run_dir instead of starting a second agent.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from integrations.launchers.forkserver import fork_server
from runner.files import (
    PID,
    RUNNER_LOG,
    SPEC,
    atomic_write_text,
    dump,
    read_pid,
    read_progress,
    read_result,
    write_result,
)
from schemas.runner import RunProgress, RunResult, RunSpec

log = logging.getLogger(__name__)

# Where `runner` is importable from, for a child started with a bare interpreter.
_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])

RunState = Literal["running", "finished", "lost"]


@dataclass(frozen=True)
class RunStatus:
    state: RunState
    result: RunResult | None = None
    progress: RunProgress | None = None


def sandbox_name(run_id: str) -> str:
    return f"optio-run-{run_id}"


def runner_alive(pid: int, run_dir: Path) -> bool:
    """True if `pid` is a live runner for `run_dir` (guards against reused pids).

    A zombie has an empty cmdline, so a dead-but-unreaped runner counts as dead.
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    if fields[0] == "Z":
        return False
    if b"runner" in cmdline and str(run_dir).encode() in cmdline:
        return True
    # A runner forked by runner.forkserver carries the server's command line; it works
    # in its run_dir, which no other process does.
    with contextlib.suppress(OSError):
        if b"runner.forkserver" in cmdline and os.readlink(f"/proc/{pid}/cwd") == str(run_dir):
            return True
    # Our own child right after Popen may still be mid-exec, its cmdline empty or the
    # parent's: a live child of this process is the runner we just started.
    return int(fields[1]) == os.getpid()


def group_alive(pgid: int) -> bool:
    """True if a non-zombie process is in group `pgid`.

    killpg(pgid, 0) is not enough: it succeeds while unreaped zombies remain, and
    orphans are re-parented to a pid 1 that, in containers, may never reap them.
    """
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # Fields after "comm)": state ppid pgrp ...; comm itself may contain spaces.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@contextlib.contextmanager
def _launch_lock(run_dir: Path) -> Iterator[None]:
    # Two activity attempts racing on the same run must not both start a runner.
    with open(run_dir / ".launch.lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield


class LocalLauncher:
    def __init__(
        self, *, runs_root: Path, python: str = sys.executable, use_fork_server: bool = True
    ) -> None:
        self.runs_root = runs_root
        self.python = python
        # Runners forked from a pre-imported server start in milliseconds instead of
        # a third of a CPU-second; a fresh interpreter remains the fallback.
        self.use_fork_server = use_fork_server

    def warm(self) -> None:
        """Start the fork server ahead of the first run."""
        if self.use_fork_server:
            pythonpath = os.pathsep.join(
                p for p in (_PROJECT_ROOT, os.environ.get("PYTHONPATH")) if p
            )
            fork_server(python=self.python, pythonpath=pythonpath).warm()

    def run_dir(self, run_id: str) -> Path:
        return (self.runs_root / run_id).resolve()

    def launch(self, spec: RunSpec) -> Path:
        """Start the runner for `spec` unless it already runs or has finished; idempotent."""
        run_dir = self.run_dir(spec.run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        with _launch_lock(run_dir):
            if read_result(run_dir) is not None:
                return run_dir
            pid = read_pid(run_dir)
            if pid is not None and runner_alive(pid, run_dir):
                log.info("run %s: runner pid %d already alive, re-attaching", spec.run_id, pid)
                return run_dir
            atomic_write_text(run_dir / SPEC, dump(spec))
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (_PROJECT_ROOT, env.get("PYTHONPATH")) if p
            )
            pid = None
            if self.use_fork_server:
                server = fork_server(python=self.python, pythonpath=env["PYTHONPATH"])
                pid = server.spawn(run_dir=run_dir, env=env)
            if pid is None:
                pid = self._start_interpreter(run_dir, env)
            atomic_write_text(run_dir / PID, f"{pid}\n")
        log.info("run %s: started runner pid %d in %s", spec.run_id, pid, run_dir)
        return run_dir

    def _start_interpreter(self, run_dir: Path, env: dict[str, str]) -> int:
        with open(run_dir / RUNNER_LOG, "ab") as out:
            proc = subprocess.Popen(
                [self.python, "-m", "runner", str(run_dir)],
                cwd=run_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                close_fds=True,
                start_new_session=True,
            )
        # Reap it when it ends so a long-lived worker does not collect zombies; if this
        # process dies first, the runner is re-parented and keeps going.
        threading.Thread(target=proc.wait, name=f"reap-runner-{proc.pid}", daemon=True).start()
        return proc.pid

    def existing_spec(self, run_id: str) -> RunSpec | None:
        """The spec of a run launched before (by an earlier attempt of the activity)."""
        path = self.run_dir(run_id) / SPEC
        if not path.exists():
            return None
        return RunSpec.model_validate_json(path.read_text())

    def poll(self, run_dir: Path) -> RunStatus:
        """Where the run stands. A few small local file reads: cheap enough to call from
        the event loop ten times a second, cheaper than a hop to a thread each time."""
        progress = read_progress(run_dir)
        result = read_result(run_dir)
        if result is not None:
            return RunStatus(state="finished", result=result, progress=progress)
        pid = read_pid(run_dir)
        if pid is not None and runner_alive(pid, run_dir):
            return RunStatus(state="running", progress=progress)
        # The runner may have written its result between the two checks.
        result = read_result(run_dir)
        if result is not None:
            return RunStatus(state="finished", result=result, progress=read_progress(run_dir))
        return RunStatus(state="lost", progress=progress)

    def stop(self, run_dir: Path, grace: float = 5.0) -> None:
        """Stop the runner and its agent; leaves a result.json behind. Idempotent."""
        was_finished = read_result(run_dir) is not None
        pid = read_pid(run_dir)
        if pid is not None and runner_alive(pid, run_dir):
            # The runner leads its own group: this also reaches its git children.
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while runner_alive(pid, run_dir) and time.monotonic() < deadline:
                time.sleep(0.05)
            if runner_alive(pid, run_dir):
                log.warning("runner pid %d outlived SIGTERM by %.1fs, killing it", pid, grace)
            _signal_group(pid, signal.SIGKILL)
        progress = read_progress(run_dir)
        # The agent has its own group; if the runner died before killing it, we do.
        # Skipped for runs that had finished already: their agent group is long gone
        # and its number may belong to someone else by now.
        if not was_finished and progress is not None and progress.agent_pid is not None:
            agent = progress.agent_pid
            if group_alive(agent):
                _signal_group(agent, signal.SIGTERM)
                deadline = time.monotonic() + grace
                while group_alive(agent) and time.monotonic() < deadline:
                    time.sleep(0.05)
                _signal_group(agent, signal.SIGKILL)
        write_result(run_dir, RunResult(success=False, error="Run stopped"))

    def stop_all(self, grace: float = 3.0) -> int:
        """Stop every runner still alive under runs_root (used when the whole system stops)."""
        stopped = 0
        if not self.runs_root.is_dir():
            return stopped
        for run_dir in sorted(p for p in self.runs_root.iterdir() if p.is_dir()):
            pid = read_pid(run_dir)
            if pid is not None and runner_alive(pid, run_dir):
                self.stop(run_dir, grace=grace)
                stopped += 1
        return stopped
