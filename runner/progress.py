"""progress.json: the launcher's window into a live run (phase, agent pid, liveness)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from schemas.run_dir import write_progress
from schemas.runner import RunProgress

Phase = Literal["preparing", "running_agent", "pushing", "done"]

TICK = 0.25  # bounds how stale last_output_at can be on disk
HEARTBEAT = 2.0  # rewrite even when idle, so the file's mtime shows the runner is alive


class ProgressTracker:
    def __init__(self, *, run_dir: Path, counters: Callable[[], tuple[int, int]]) -> None:
        self._run_dir = run_dir
        self._counters = counters  # (events_emitted, events_delivered)
        self.phase: Phase = "preparing"
        self.agent_pid: int | None = None
        self.last_output_at = datetime.now(UTC)
        self._dirty = True
        self._written_at = 0.0

    def set_phase(self, phase: Phase) -> None:
        self.phase = phase
        self.write()

    def set_agent_pid(self, pid: int | None) -> None:
        self.agent_pid = pid
        self.write()

    def touch(self) -> None:
        """Called on every output line; written by the next tick to avoid a write per line."""
        self.last_output_at = datetime.now(UTC)
        self._dirty = True

    def mark(self) -> None:
        self._dirty = True

    def write(self) -> None:
        emitted, delivered = self._counters()
        write_progress(
            self._run_dir,
            RunProgress(
                phase=self.phase,
                agent_pid=self.agent_pid,
                last_output_at=self.last_output_at,
                events_emitted=emitted,
                events_delivered=delivered,
            ),
        )
        self._dirty = False
        self._written_at = time.monotonic()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            if self._dirty or time.monotonic() - self._written_at >= HEARTBEAT:
                self.write()
