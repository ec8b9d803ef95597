"""The runner's side of a run's pod (`python -m runner.pod prepare|run|agent`).

- `prepare` (init container): fetches the mirror and adds the worktree, with the forge
  credential the run token buys; nothing else of the run has started yet.
- `agent` (the agent's container: worktree, home, its model credentials, no token):
  waits for the command the runner hands it through the memory-backed control volume,
  runs it with its output on two FIFOs, and leaves its exit code there; stops it when
  the runner asks (a stall: no output for the spec's stall_timeout_seconds).
- `run` (the runner container): writes the agent's setup and command, parses and ships
  every line to the ingest endpoint (masked, as the local runner does), then commits and
  pushes and reports the result as its termination message, which the launcher reads
  from the pod's status through the API server.

The control volume is shared with the agent: everything the runner opens there is opened
without following links, and nothing it writes there is secret but the agent's own
environment (tmpfs, removed by the agent as soon as it has read it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from integrations.agents import ParsedEntry
from integrations.agents.base import Stream
from integrations.git import GitError, head_sha, mirror_path
from runner.inbox import Inbox
from runner.main import Run, carry_out, in_thread
from schemas import pod
from schemas.run_dir import atomic_write_text, make_run_dir
from schemas.runner import RunResult, RunSpec

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
WAIT_STEP = 0.05
EXIT_GRACE = 5.0  # the agent's exit code follows the end of its output this closely
STOP_GRACE = 5.0  # SIGTERM to SIGKILL of a stopped agent's process group
PIPE_GRACE = 2.0  # a background child of the agent may hold its output open
KILLED = 137  # no exit code came: the agent container was killed


def spec_from_env() -> RunSpec:
    """The spec from our environment (public part and the run's Secret), then forgotten:
    git and hooks started by this process must not inherit the secrets."""
    public = os.environ.pop(pod.SPEC_ENV)
    secrets = os.environ.pop(pod.SECRETS_ENV, None)
    return RunSpec.joined(public, secrets)


def write_termination_message(result: RunResult) -> None:
    try:
        Path(pod.TERMINATION_LOG).write_text(pod.termination_message(result))
    except OSError:
        log.exception("could not write the termination message")


def protect_git_dir(mirror: Path) -> None:
    """Create what the agent container mounts read-only (config, hooks, info)."""
    for name in ("hooks", "info", "objects/info"):
        (mirror / name).mkdir(parents=True, exist_ok=True)


class PodRun(Run):
    async def prepare_git(self) -> Path:
        # The prepare container did the fetching; this container finds its work.
        mirror = mirror_path(
            repo_url=self.spec.repo_url, cache_dir=Path(self.spec.mirror_cache_dir)
        )
        self.start_sha = await in_thread(lambda: head_sha(repo=self.worktree))
        return mirror

    def emit(self, entry: ParsedEntry) -> None:
        super().emit(entry)
        # The pod's own log (GET /api/cluster/pods/:name/logs) shows the masked lines.
        sys.stdout.write(self.redact.text(entry.content) + "\n")
        sys.stdout.flush()

    def inbox(self, spec: RunSpec) -> Inbox | None:
        # The agent container's stdin is not ours to write: messages wait for the next run.
        return None

    async def run_agent_process(
        self,
        *,
        command: list[str],
        home: Path,
        mirror: Path,
        env: dict[str, str],
        on_line: Callable[[str, Stream], None],
        inbox: Inbox | None = None,
    ) -> int:
        control = Path(pod.CONTROL)
        exit_file = control / pod.EXIT_FILE
        exit_file.unlink(missing_ok=True)
        (control / pod.STOP_FILE).unlink(missing_ok=True)
        for name in (pod.STDOUT_FIFO, pod.STDERR_FIFO):
            (control / name).unlink(missing_ok=True)
            os.mkfifo(control / name, 0o600)
        body = {"argv": command, "env": env, "cwd": str(self.worktree)}
        atomic_write_text(control / pod.COMMAND_FILE, json.dumps(body), durable=False)
        self.progress.set_agent_pid(None)
        loop = asyncio.get_running_loop()
        last_output = time.monotonic()

        def heard(line: str, stream: Stream) -> None:
            nonlocal last_output
            last_output = time.monotonic()
            on_line(line, stream)

        def deliver(line: str, stream: Stream) -> None:
            loop.call_soon_threadsafe(heard, line, stream)

        pumps = [
            asyncio.ensure_future(
                in_thread(lambda: pump(control / pod.STDOUT_FIFO, "stdout", deliver))
            ),
            asyncio.ensure_future(
                in_thread(lambda: pump(control / pod.STDERR_FIFO, "stderr", deliver))
            ),
        ]
        stall = self.spec.stall_timeout_seconds
        stopped_at: float | None = None
        while not exit_file.exists() and not all(p.done() for p in pumps):
            now = time.monotonic()
            if stopped_at is None and stall is not None and now - last_output > stall:
                # Only this container sees the agent's output: the stall is judged here,
                # as the activity judges a local run's from its progress file.
                self.stall_error = f"No agent output for {stall:.0f} s"
                atomic_write_text(control / pod.STOP_FILE, "stall\n", durable=False)
                stopped_at = now
            if stopped_at is not None and now - stopped_at > STOP_GRACE + EXIT_GRACE:
                break  # an agent that will not stop: the pod's deletion ends it
            await asyncio.sleep(WAIT_STEP)
        deadline = time.monotonic() + EXIT_GRACE
        while not exit_file.exists() and time.monotonic() < deadline:
            await asyncio.sleep(WAIT_STEP)
        await asyncio.wait(pumps, timeout=PIPE_GRACE)
        try:
            fd = os.open(exit_file, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd) as fh:
                return int(fh.read().strip())
        except (OSError, ValueError):
            log.error("the agent container ended without an exit code")
            return KILLED


def pump(path: Path, stream: Stream, on_line: Callable[[str, Stream], None]) -> None:
    """Read a FIFO to its end line by line (blocks until the agent opens it)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    buf = b""
    with os.fdopen(fd, "rb", buffering=0) as fh:
        while chunk := fh.read(CHUNK):
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                on_line(raw.decode("utf-8", errors="replace"), stream)
    if buf:
        on_line(buf.decode("utf-8", errors="replace"), stream)


async def prepare() -> int:
    spec = spec_from_env()
    state = Path(pod.STATE)
    make_run_dir(state)
    r = Run(run_dir=state, spec=spec)
    try:
        mirror = await r.prepare_git()
        protect_git_dir(mirror)
        return 0
    except (GitError, httpx.HTTPError) as exc:
        result = r.fail(f"Preparing the worktree failed: {exc}", prepared=False)
    write_termination_message(result)
    r.sink.close()
    await asyncio.wait({asyncio.ensure_future(r.sink.run())}, timeout=30)
    return 1


async def run() -> int:
    spec = spec_from_env()
    state = Path(pod.STATE)
    make_run_dir(state)
    result = await carry_out(PodRun(run_dir=state, spec=spec))
    write_termination_message(result)
    return 0 if result.success else 1


def agent() -> int:
    """Wait for the command, run it with the FIFOs as its output, leave its exit code."""
    control = Path(pod.CONTROL)
    command_file = control / pod.COMMAND_FILE
    while not command_file.exists():
        time.sleep(WAIT_STEP)
    body = json.loads(command_file.read_text())
    command_file.unlink()  # the agent's own environment: gone from the volume at once
    out = open(control / pod.STDOUT_FIFO, "wb")
    err = open(control / pod.STDERR_FIFO, "wb")
    with out, err:
        proc = subprocess.Popen(
            body["argv"],
            cwd=body["cwd"],
            env=body["env"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )

    def forward(signum: int, _frame: object) -> None:
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    code = wait_or_stop(proc, control / pod.STOP_FILE)
    atomic_write_text(control / pod.EXIT_FILE, f"{code}\n", durable=False)
    return code


def wait_or_stop(proc: subprocess.Popen[bytes], stop_file: Path) -> int:
    """The command's exit code; when the runner asks (a stall), its whole process group
    is stopped first: SIGTERM, then SIGKILL after STOP_GRACE."""
    while (code := proc.poll()) is None:
        if stop_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                return proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                return proc.wait()
        time.sleep(WAIT_STEP)
    return code


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    command = argv[1] if len(argv) == 2 else ""
    if command == "prepare":
        return asyncio.run(prepare())
    if command == "run":
        return asyncio.run(run())
    if command == "agent":
        return agent()
    logging.error("usage: python -m runner.pod prepare|run|agent")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
