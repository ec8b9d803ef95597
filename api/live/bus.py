"""The event bus of one API process: it tails `live_events` by id and fans out.

One reader per process, whatever the number of clients: every API process tails the
same table, so an event written by the worker or by another API process reaches the
clients of each. PostgreSQL wakes the reader with NOTIFY (the table's trigger); on
SQLite it looks every `live_poll_seconds`.

Ids are taken at insert and become visible at commit, so on PostgreSQL a smaller id may
appear after a larger one. The reader only moves past an id once it has seen it, or once
it has been missing for GAP_WAIT (a rolled-back insert): no client ever gets a later
event before an earlier one, and a resume from an id misses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store import live
from store.db import transaction
from store.types import utcnow

log = logging.getLogger(__name__)

GAP_WAIT = 3.0
PAGE = 1000
PG_FALLBACK_POLL = 1.0
# SQLite, no subscriber in this process: nobody waits for the events, so the reader looks
# once a second (a read every `live_poll_seconds` was 30-40 ms of CPU a second in an
# idle API). A stream that opens then has the reader catch up first (`current`), so its
# catch-up ("the last 20") ends where the table ends, as with a reader that never slept.
IDLE_POLL = 1.0
PRUNE_EVERY = 600.0


@dataclass(eq=False)
class Event:
    id: int
    workspace_id: str
    topic: str
    kind: str
    type: str
    payload: dict[str, Any]
    _json: str | None = None

    @classmethod
    def of(cls, row: live.LiveEvent) -> Event:
        return cls(row.id, row.workspace_id, row.topic, row.kind, row.type, row.payload)

    def frame(self, *, catch_up: bool = False) -> dict[str, Any]:
        frame = {"type": self.type, "eventId": self.id, **self.payload}
        if catch_up:
            frame["catchUp"] = True
        return frame

    def json(self) -> str:
        """The live frame, serialised once however many clients receive it."""
        if self._json is None:
            self._json = json.dumps(self.frame())
        return self._json


@dataclass(frozen=True)
class StreamSpec:
    """Which events one client follows: always one workspace's, maybe one topic's."""

    workspace_id: str
    topic: str | None
    kind: str | None

    def matches(self, event: Event) -> bool:
        return (self.topic is None or event.topic == self.topic) and (
            self.kind is None or event.kind == self.kind
        )


@dataclass(eq=False)
class Subscription:
    spec: StreamSpec
    # The reader's position when the client subscribed: the client reads the database up
    # to here, and receives everything after it from the queue.
    watermark: int
    queue: asyncio.Queue[Event]
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)


class LiveBus:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        database_url: str,
        poll_seconds: float,
        client_buffer: int,
        retention: timedelta,
    ) -> None:
        self.sessions = sessions
        self.database_url = database_url
        self.poll_seconds = poll_seconds
        self.client_buffer = client_buffer
        self.retention = retention
        self.cursor = 0
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._holes: dict[int, float] = {}
        # `current` callers: answered after the next read pass that starts after them.
        self._waiting: list[asyncio.Future[None]] = []
        # Set once the reader knows where the log ends; subscribers wait for it.
        self.ready = asyncio.Event()
        self._stopping = False

    @property
    def postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._tail(), name="live-tail"))
        if self.postgres:
            self._tasks.append(asyncio.create_task(self._listen(), name="live-listen"))
        self._tasks.append(asyncio.create_task(self._prune(), name="live-prune"))

    async def close(self) -> None:
        # The reader stops between reads: cancelled inside a query, it would leave its
        # pooled connection mid-transaction as the engine is being disposed.
        self._stopping = True
        self._wake.set()
        tail = self._tasks[0] if self._tasks else None
        if tail is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(tail), timeout=5)
        self._answer(self._waiting)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def subscribe(self, spec: StreamSpec) -> Subscription:
        sub = Subscription(
            spec=spec, watermark=self.cursor, queue=asyncio.Queue(self.client_buffer)
        )
        if not self._subs:
            self._wake.set()  # the reader may be in its idle wait: to the short one
        self._subs[spec.workspace_id].add(sub)
        return sub

    async def current(self) -> None:
        """Return once the reader's position is where the table ends now (or was, at most
        `live_poll_seconds` ago): call before `subscribe`, whose watermark it is."""
        if self._subs or self.postgres or self._stopping:
            return  # the reader is not idle (PostgreSQL's is woken by NOTIFY)
        done = asyncio.get_running_loop().create_future()
        self._waiting.append(done)
        self._wake.set()
        await done

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.spec.workspace_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.spec.workspace_id]

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def wake(self) -> None:
        self._wake.set()

    # ---- the reader ----------------------------------------------------------------------

    async def _tail(self) -> None:
        interval = PG_FALLBACK_POLL if self.postgres else self.poll_seconds
        idle_interval = max(interval, IDLE_POLL)
        # In the task, not at start-up: the API starts (and says it is unhealthy) while
        # the database is unreachable; no client can authenticate before this is done.
        while not self._stopping:
            try:
                async with self.sessions() as session:
                    self.cursor = await live.latest_id(session)
                self.ready.set()
                break
            except Exception:
                log.warning("live: database unreachable; retrying", exc_info=True)
                await asyncio.sleep(1.0)
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), timeout=interval if self._subs else idle_interval
                )
            self._wake.clear()
            if self._stopping:
                self._answer(self._waiting)
                return
            waiting, self._waiting = self._waiting, []
            try:
                while await self._read_once():
                    pass
                self._answer(waiting)
            except Exception:
                self._waiting[:0] = waiting  # answered after a pass that succeeds
                # The database may be restarting: keep the position and read again.
                log.warning("live: reading events failed; retrying", exc_info=True)
                await asyncio.sleep(1.0)

    async def _read_once(self) -> bool:
        """Deliver what is new; True when there may be more to read right away."""
        async with self.sessions() as session:
            rows = await live.events_after(session, after=self.cursor, limit=PAGE)
        now = time.monotonic()
        for row in rows:
            if row.id != self.cursor + 1 and not self._hole_expired(self.cursor + 1, now):
                # An earlier id is still to commit: look again shortly.
                self._wake_soon()
                return False
            self._holes.clear()
            self.cursor = row.id
            self._deliver(Event.of(row))
        return len(rows) == PAGE

    @staticmethod
    def _answer(waiting: list[asyncio.Future[None]]) -> None:
        for done in waiting:
            if not done.done():
                done.set_result(None)
        waiting.clear()

    def _hole_expired(self, missing: int, now: float) -> bool:
        first_seen = self._holes.setdefault(missing, now)
        return now - first_seen >= GAP_WAIT

    def _wake_soon(self) -> None:
        asyncio.get_running_loop().call_later(0.02, self._wake.set)

    def _deliver(self, event: Event) -> None:
        for sub in self._subs.get(event.workspace_id, ()):
            if sub.overflowed.is_set() or not sub.spec.matches(event):
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                # The client does not keep up: it is dropped, never allowed to grow.
                sub.overflowed.set()

    async def _listen(self) -> None:
        """PostgreSQL: wake the reader at each commit that added events."""
        import psycopg

        url = self.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {live.NOTIFY_CHANNEL}")
                    self.wake()  # whatever committed while we were not listening
                    async for _ in conn.notifies():
                        self.wake()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Until it is back, the reader's fallback poll keeps clients served.
                log.warning("live: LISTEN connection lost; reconnecting", exc_info=True)
                await asyncio.sleep(1.0)

    async def _prune(self) -> None:
        while True:
            # Not at start-up: a write at every start (and a shutdown cancelling it while
            # it waits for SQLite's write gate) is not worth hours-old events.
            await asyncio.sleep(PRUNE_EVERY)
            try:
                async with transaction(self.sessions) as session:
                    await live.prune(session, before=utcnow() - self.retention)
            except Exception:
                log.warning("live: pruning old events failed", exc_info=True)
