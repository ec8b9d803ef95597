"""Heartbeats paced for loops that poll ten times a second."""

from __future__ import annotations

import time

from temporalio import activity

# Far inside every heartbeat timeout we set (10 s and up). The SDK sends at most one
# heartbeat per 80 % of the timeout anyway, but each call still costs an asyncio task
# and an encode: twenty runs polling at 10 Hz made that a few percent of the worker.
HEARTBEAT_EVERY_SECONDS = 1.0


class Heartbeats:
    def __init__(self, every: float = HEARTBEAT_EVERY_SECONDS) -> None:
        self._every = every
        self._last: float | None = None

    def beat(self) -> None:
        """Heartbeat unless one was recorded less than `every` seconds ago."""
        now = time.monotonic()
        if self._last is None or now - self._last >= self._every:
            self._last = now
            activity.heartbeat()


# Loops that wait (a PR watch between polls, checks or a merge in a thread) beat this
# often: well inside the shortest heartbeat timeout we give them (10 s).
WAIT_BEAT_SECONDS = 3.0


def heartbeat_every() -> float:
    """How long a waiting activity may go without a heartbeat: a third of its timeout."""
    timeout = activity.info().heartbeat_timeout
    if timeout is None or timeout.total_seconds() <= 0:
        return WAIT_BEAT_SECONDS
    return min(WAIT_BEAT_SECONDS, timeout.total_seconds() / 3)
