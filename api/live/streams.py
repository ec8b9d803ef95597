"""One client's stream: a catch-up from the database, then live events from the bus.

The same for WebSocket and SSE. The catch-up reads up to the bus position taken at
subscription and the bus queues everything after it, so the two meet with no gap and
no duplicate; a client resuming from an event id gets every event after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.live.bus import Event, LiveBus, StreamSpec, Subscription
from core.states import TaskState
from store import live

RESUME_PAGE = 500
TERMINAL = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED})
ENDING_TYPES = frozenset({"task:state_changed", "workflow_run:state_changed"})
RUN_TERMINAL = frozenset({"completed", "failed", "cancelled"})


class SlowClient(Exception):
    """The client fell `live_client_buffer` events behind: it reads on from the database."""


@dataclass(frozen=True)
class Stream:
    spec: StreamSpec
    # The first connection's catch-up: the last `catch_up_limit` events of these types.
    catch_up_types: tuple[str, ...] | None
    catch_up_limit: int
    # Streams of one task or run end with it (after a grace period for late log entries).
    ends_with_owner: bool


@dataclass(frozen=True)
class Item:
    """A frame to send, or a heartbeat when `event` is None."""

    event: Event | None
    catch_up: bool = False


def ends(event: Event) -> bool:
    if event.type not in ENDING_TYPES:
        return False
    return str(event.payload.get("toState")) in TERMINAL | RUN_TERMINAL


async def follow(
    *,
    bus: LiveBus,
    sessions: async_sessionmaker[AsyncSession],
    stream: Stream,
    after: int | None,
    heartbeat: float,
    end_grace: float,
    ended_already: bool,
) -> AsyncIterator[Item]:
    """Yield the catch-up, then live events and heartbeats, until the owner ended (or
    forever). A client that falls `live_client_buffer` events behind loses its queue and
    reads on from the database: memory stays bounded and nothing is skipped (a client
    that stops reading altogether is dropped by its transport's send timeout)."""
    await bus.ready.wait()
    await bus.current()
    sub = bus.subscribe(stream.spec)
    try:
        async for event in _catch_up(sessions, stream=stream, sub=sub, after=after):
            yield Item(event, catch_up=True)
        # Everything up to the watermark is covered: the catch-up was the stream's tail.
        last = sub.watermark
        deadline = time.monotonic() + end_grace if ended_already else None
        while True:
            timeout = heartbeat
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    return
            try:
                next_event = await _next(sub, timeout)
            except SlowClient:
                bus.unsubscribe(sub)
                sub = bus.subscribe(stream.spec)
                async for event in _catch_up(sessions, stream=stream, sub=sub, after=last):
                    yield Item(event)
                    last = event.id
                    if stream.ends_with_owner and ends(event):
                        deadline = time.monotonic() + end_grace
                last = max(last, sub.watermark)
                continue
            if next_event is None:
                if deadline is None or time.monotonic() < deadline:
                    yield Item(None)
                continue
            yield Item(next_event)
            last = next_event.id
            if stream.ends_with_owner and ends(next_event):
                deadline = time.monotonic() + end_grace
    finally:
        bus.unsubscribe(sub)


async def _next(sub: Subscription, timeout: float) -> Event | None:
    if sub.overflowed.is_set():
        raise SlowClient
    with contextlib.suppress(asyncio.QueueEmpty):
        return sub.queue.get_nowait()
    getter = asyncio.ensure_future(sub.queue.get())
    dropped = asyncio.ensure_future(sub.overflowed.wait())
    try:
        done, _ = await asyncio.wait(
            {getter, dropped}, timeout=timeout, return_when="FIRST_COMPLETED"
        )
    finally:
        for task in (getter, dropped):
            if not task.done():
                task.cancel()
    if getter in done:
        return getter.result()
    if dropped in done:
        raise SlowClient
    return None


async def _catch_up(
    sessions: async_sessionmaker[AsyncSession],
    *,
    stream: Stream,
    sub: Subscription,
    after: int | None,
) -> AsyncIterator[Event]:
    spec = stream.spec
    if after is None:
        async with sessions() as session:
            rows = await live.stream_tail(
                session,
                workspace_id=spec.workspace_id,
                topic=spec.topic,
                kind=spec.kind,
                types=stream.catch_up_types,
                through=sub.watermark,
                limit=stream.catch_up_limit,
            )
        for row in rows:
            yield Event.of(row)
        return
    while after < sub.watermark:
        async with sessions() as session:
            rows = list(
                await live.stream_page(
                    session,
                    workspace_id=spec.workspace_id,
                    topic=spec.topic,
                    kind=spec.kind,
                    after=after,
                    through=sub.watermark,
                    limit=RESUME_PAGE,
                )
            )
        for row in rows:
            yield Event.of(row)
        if len(rows) < RESUME_PAGE:
            return
        after = rows[-1].id
