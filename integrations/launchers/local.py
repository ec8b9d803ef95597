"""Runs agent runs as detached local processes (`python -m runner <run_dir>`).

The runner is started in its own session so it outlives the worker that launched it:
a worker crash does not kill the agent, and the retried activity re-attaches to the
run through the files in run_dir instead of starting a second agent. The runner stays
outside the sandbox (it holds the run token and fetches the forge credential); the
agent it starts runs in bubblewrap (integrations/sandbox.py). The run's secrets reach
the runner through a pipe, never through run_dir.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from integrations.launchers.base import sandbox_name
from integrations.launchers.forkserver import fork_server
from schemas.run_dir import (
    PID,
    RESULT,
    RUNNER_LOG,
    atomic_write_text,
    make_run_dir,
    read_pid,
    read_progress,
    read_result,
    strip_run_dir,
    write_result,
    write_spec,
)
from schemas.runner import RunResult, RunSpec, RunStatus

__all__ = ["LocalLauncher", "RunStatus", "sandbox_name"]

log = logging.getLogger(__name__)

# Where `runner` is importable from, for a child started with a bare interpreter.
_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])


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
        with contextlib.suppress(OSError):
            runs_root.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(runs_root, 0o700)
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

    def attach(self, run_id: str) -> bool:
        run_dir = self.run_dir(run_id)
        if read_result(run_dir) is not None:
            return True
        pid = read_pid(run_dir)
        return pid is not None and runner_alive(pid, run_dir)

    def launch(self, spec: RunSpec) -> None:
        """Start the runner for `spec` unless it already runs or has finished; idempotent."""
        run_dir = self.run_dir(spec.run_id)
        make_run_dir(run_dir)
        with _launch_lock(run_dir):
            if read_result(run_dir) is not None:
                return
            pid = read_pid(run_dir)
            if pid is not None and runner_alive(pid, run_dir):
                log.info("run %s: runner pid %d already alive, re-attaching", spec.run_id, pid)
                return
            write_spec(run_dir, spec)
            secrets = spec.secrets_json()
            # The runner needs none of the control plane's settings (database, encryption
            # key); it gets only what the spec and the secrets pipe carry.
            env = {k: v for k, v in os.environ.items() if not k.startswith("OPTIO_")}
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (_PROJECT_ROOT, env.get("PYTHONPATH")) if p
            )
            pid = None
            if self.use_fork_server:
                server = fork_server(python=self.python, pythonpath=env["PYTHONPATH"])
                pid = server.spawn(run_dir=run_dir, env=env, secrets=secrets)
            if pid is None:
                pid = self._start_interpreter(run_dir, env, secrets)
            atomic_write_text(run_dir / PID, f"{pid}\n")
        log.info("run %s: started runner pid %d in %s", spec.run_id, pid, run_dir)

    def _start_interpreter(self, run_dir: Path, env: dict[str, str], secrets: str) -> int:
        fd = os.open(run_dir / RUNNER_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "ab") as out:
            proc = subprocess.Popen(
                [self.python, "-m", "runner", str(run_dir)],
                cwd=run_dir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                close_fds=True,
                start_new_session=True,
            )
        assert proc.stdin is not None
        # The secrets travel through the pipe: the runner reads them to its end.
        with proc.stdin:
            proc.stdin.write(secrets.encode())
        # Reap it when it ends so a long-lived worker does not collect zombies; if this
        # process dies first, the runner is re-parented and keeps going.
        threading.Thread(target=proc.wait, name=f"reap-runner-{proc.pid}", daemon=True).start()
        return proc.pid

    def poll(self, run_id: str) -> RunStatus:
        """Where the run stands. A few small local file reads: cheap enough to call from
        the event loop ten times a second, cheaper than a hop to a thread each time."""
        run_dir = self.run_dir(run_id)
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

    def stop(self, run_id: str, grace: float = 5.0) -> None:
        """Stop the runner and its agent; leaves a result.json behind. Idempotent."""
        run_dir = self.run_dir(run_id)
        if not run_dir.is_dir():
            return
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
        strip_run_dir(run_dir)

    def stop_all(self, grace: float = 3.0) -> int:
        """Stop every runner still alive under runs_root (used when the whole system stops)."""
        stopped = 0
        for run_dir in self._run_dirs():
            pid = read_pid(run_dir)
            if pid is not None and runner_alive(pid, run_dir):
                self.stop(run_dir.name, grace=grace)
                stopped += 1
        return stopped

    def sweep(self, *, older_than_seconds: float) -> int:
        """Strip the directories of runs whose runner is gone, and remove those untouched
        for `older_than_seconds` (a retried activity reads a result long before that).

        Covers runs that ended while no worker was up to see them end.
        """
        removed = 0
        cutoff = time.time() - older_than_seconds
        for run_dir in self._run_dirs():
            pid = read_pid(run_dir)
            if pid is not None and runner_alive(pid, run_dir):
                continue
            try:
                mtime = max(p.stat().st_mtime for p in (run_dir, run_dir / RESULT) if p.exists())
            except (OSError, ValueError):
                continue
            if mtime < cutoff:
                shutil.rmtree(run_dir, ignore_errors=True)
                removed += 1
            elif (run_dir / RESULT).exists():
                strip_run_dir(run_dir)
        return removed

    def _run_dirs(self) -> list[Path]:
        if not self.runs_root.is_dir():
            return []
        return sorted(p for p in self.runs_root.iterdir() if p.is_dir())
