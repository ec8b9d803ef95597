"""The launcher's side of `runner.forkserver`: one warm runner server per process.

Forking a pre-imported runner saves every run the 0.25-0.35 CPU-seconds a fresh
interpreter spends on imports. The server belongs to the process that started it (its
stdin is our pipe, so it exits with us); the runners it forks do not. When the server
cannot be used for any reason, `spawn` answers None and the launcher starts the runner
the old way, with a fresh interpreter.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import subprocess
import threading
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

READY_TIMEOUT = 30.0
ANSWER_TIMEOUT = 10.0


class ForkServer:
    def __init__(self, *, python: str, pythonpath: str) -> None:
        self.python = python
        self.pythonpath = pythonpath
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def spawn(self, *, run_dir: Path, env: dict[str, str], secrets: str) -> int | None:
        """Fork a runner for `run_dir`; its pid, or None if the server is not usable.

        `secrets` travel in the request over the server's stdin pipe, never via a file."""
        request = {"run_dir": str(run_dir), "env": env, "secrets": secrets}
        line = json.dumps(request).encode() + b"\n"
        with self._lock:
            proc = self._ensure_started()
            if proc is None:
                return None
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(line)
                proc.stdin.flush()
                answer = json.loads(_read_line(proc.stdout, ANSWER_TIMEOUT) or b"{}")
            except (OSError, ValueError, TimeoutError) as exc:
                log.warning("runner fork server failed (%r); starting runners directly", exc)
                self._discard()
                return None
        pid = answer.get("pid")
        if not isinstance(pid, int):
            log.warning("runner fork server refused %s: %s", run_dir, answer.get("error"))
            return None
        return pid

    def warm(self) -> None:
        """Start the server now, so the first run does not pay for its imports."""
        with self._lock:
            self._ensure_started()

    def close(self) -> None:
        with self._lock:
            self._discard()

    def _ensure_started(self) -> subprocess.Popen[bytes] | None:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._discard()
        env = dict(os.environ)
        env["PYTHONPATH"] = self.pythonpath
        try:
            proc = subprocess.Popen(
                [self.python, "-m", "runner.forkserver"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                close_fds=True,
            )
            assert proc.stdout is not None
            if _read_line(proc.stdout, READY_TIMEOUT) != b"ready\n":
                raise OSError("no ready line")
        except (OSError, TimeoutError) as exc:
            log.warning("runner fork server did not start (%r); starting runners directly", exc)
            if "proc" in locals():
                proc.kill()
                proc.wait()
            return None
        self._proc = proc
        return proc

    def _discard(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # end of input: the server exits; its runners go on
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _read_line(stream: IO[bytes], timeout: float) -> bytes:
    """One line from a pipe the server writes whole lines to, or TimeoutError."""
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise TimeoutError(f"no answer within {timeout:.0f} s")
    return stream.readline()


_servers: dict[tuple[str, str], ForkServer] = {}
_servers_lock = threading.Lock()


def fork_server(*, python: str, pythonpath: str) -> ForkServer:
    """The process's server for this interpreter and import path, created on first use."""
    key = (python, pythonpath)
    with _servers_lock:
        server = _servers.get(key)
        if server is None:
            server = _servers[key] = ForkServer(python=python, pythonpath=pythonpath)
            atexit.register(server.close)
        return server
