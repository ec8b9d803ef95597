"""Running the agent as its own process group and streaming its output line by line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from integrations.agents.base import Stream

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
MAX_LINE = 1024 * 1024  # a line without newline this long is emitted as is
STOP_GRACE = 5.0
# A background child of the agent may keep the pipes open after the agent exits.
PIPE_GRACE = 2.0

LineHandler = Callable[[str, Stream], None]
# Writes the agent's stdin while it runs (runner/inbox.py); without one, stdin is empty.
InputFeed = Callable[[asyncio.StreamWriter], Coroutine[Any, Any, None]]
FEED_GRACE = 15.0  # for the feed's last report after the agent exited


async def _pump(reader: asyncio.StreamReader, stream: Stream, on_line: LineHandler) -> None:
    buf = b""
    while chunk := await reader.read(CHUNK):
        buf += chunk
        # Splitting bytes on b"\n" is safe for UTF-8: the byte never occurs inside a character.
        *lines, buf = buf.split(b"\n")
        for raw in lines:
            on_line(raw.decode("utf-8", errors="replace"), stream)
        if len(buf) >= MAX_LINE:
            on_line(buf.decode("utf-8", errors="replace"), stream)
            buf = b""
    if buf:
        on_line(buf.decode("utf-8", errors="replace"), stream)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def terminate_group(proc: asyncio.subprocess.Process, *, grace: float = STOP_GRACE) -> None:
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        log.warning("agent pid %d ignored SIGTERM for %.0fs, killing it", proc.pid, grace)
    # Also reaches children that outlived the group leader.
    _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


async def run_agent(
    *,
    command: list[str],
    cwd: Path,
    env: dict[str, str],
    on_line: LineHandler,
    on_start: Callable[[int], None],
    feed: InputFeed | None = None,
    on_exit: Callable[[], None] | None = None,
) -> int:
    """Run `command` to completion and return its exit code; cancelling kills its group.

    `feed` gets the agent's stdin; `on_exit` tells it the agent is gone, and the feed
    then has FEED_GRACE seconds to finish."""
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE if feed else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # Own process group: stopping the run kills the agent and everything it spawned.
        start_new_session=True,
    )
    on_start(proc.pid)
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [
        asyncio.create_task(_pump(proc.stdout, "stdout", on_line)),
        asyncio.create_task(_pump(proc.stderr, "stderr", on_line)),
    ]
    feeding: asyncio.Task[None] | None = None
    if feed is not None:
        assert proc.stdin is not None
        feeding = asyncio.create_task(feed(proc.stdin))
    try:
        code = await proc.wait()
        _, lingering = await asyncio.wait(pumps, timeout=PIPE_GRACE)
        if feeding is not None:
            if on_exit is not None:
                on_exit()
            _, unfinished = await asyncio.wait({feeding}, timeout=FEED_GRACE)
            lingering |= unfinished
        # Leftover background processes would hold the pipes and outlive the run.
        _signal_group(proc.pid, signal.SIGKILL)
        for task in lingering:
            task.cancel()
        return code
    except asyncio.CancelledError:
        await terminate_group(proc)
        for task in [*pumps, *([feeding] if feeding else [])]:
            task.cancel()
        raise
