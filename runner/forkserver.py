"""`python -m runner.forkserver`: a warm runner that forks one detached runner per request.

A fresh `python -m runner` spends 0.25-0.35 CPU-seconds importing pydantic, httpx and
the agent adapters before it does anything, on every run. The local launcher keeps one
of these processes per worker instead: it imports all of that once, then reads one JSON
request per line on stdin (`{"run_dir": ..., "env": {...}, "secrets": "..."}`; the secrets
never touch a disk), forks, and answers with
the child's pid. Each child starts its own session, so it outlives the worker exactly
like a runner started with Popen, and then runs the same entry point as `python -m
runner`. The server itself exits when stdin closes, that is when its worker is gone.

It stays single-threaded and never runs an event loop, so forking it is safe.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import traceback
from typing import Any, NoReturn

# Imported here, once, so that forked runners need not: anyio's asyncio backend is
# otherwise imported lazily by the first HTTP request of every run, and httpcore by the
# first httpx client (about 15 ms of CPU per run, measured with py-spy).
import anyio._backends._asyncio  # noqa: F401
import httpcore  # noqa: F401

import runner.__main__ as entry
from integrations.sandbox import prepare_shared_args
from integrations.tls import tls_context
from schemas.run_dir import RUNNER_LOG

READY = "ready"


def _reap(*_: Any) -> None:
    """Collect finished children so they do not linger as zombies."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _become_runner(run_dir: str, env: dict[str, str], secrets: str, started_w: int) -> NoReturn:
    code = 1
    try:
        os.setsid()
        os.chdir(run_dir)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        log_fd = os.open(RUNNER_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        # The request pipe and the answer pipe are the server's, not the runner's.
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        os.close(null_fd)
        os.environ.clear()
        os.environ.update(env)
        # Liveness checks find the runner by its cwd from now on: tell the server.
        os.write(started_w, b"1")
        os.close(started_w)
        code = entry.main(["runner", run_dir], secrets)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _fork_runner(request: dict[str, Any]) -> int:
    run_dir, env = str(request["run_dir"]), dict(request["env"])
    secrets = str(request.get("secrets") or "")
    started_r, started_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(started_r)
        _become_runner(run_dir, env, secrets, started_w)
    os.close(started_w)
    os.read(started_r, 1)  # empty if the child died first: the launcher will see it lost
    os.close(started_r)
    return pid


def _answer(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def serve() -> int:
    tls_context()  # made before forking: every runner inherits it instead of building its own
    # The same for the sandbox's view of /etc: each runner walked /etc for it otherwise
    # (15 % of a runner's CPU in the bench, measured with py-spy).
    prepare_shared_args()
    # Everything imported so far stays put: the runners' garbage collector then leaves
    # those objects (and the memory pages they share with this process) alone.
    gc.freeze()
    signal.signal(signal.SIGCHLD, _reap)
    _answer(READY)
    for line in sys.stdin:
        try:
            request = json.loads(line)
            answer: dict[str, object] = {"pid": _fork_runner(request)}
        except Exception as exc:  # a bad request must not take the server down
            answer = {"error": repr(exc)}
        _answer(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(serve())
