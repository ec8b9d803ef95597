"""Server-sent events: the same streams as the WebSockets, resumable with Last-Event-ID.

Each event is sent with its id (`id:`), its type (`event:`) and the WebSocket frame as
`data:`. A dropped or too-slow client reconnects with `Last-Event-ID` (EventSource does
it by itself) and misses nothing; a stream whose task had ended before answers 204,
which tells EventSource to stop reconnecting.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.deps import CurrentPrincipal, StateDep, guard_routes
from api.live import owners
from api.live.access import Refused
from api.live.owners import Opened
from api.live.streams import follow
from api.paging import MAX_EVENT_ID, LastEventId
from api.state import AppState
from core.errors import InvalidInputError, TooManyRequestsError
from schemas.live import LiveFrame
from store import live

router = APIRouter(tags=["Live"])
LastEventIdHeader = Annotated[str | None, Header(alias="Last-Event-ID")]
Open = Callable[[AsyncSession], Awaitable[Opened]]


class EventStream(EventSourceResponse):
    """EventSourceResponse with its media type known before an instance exists, so the
    document files the streams' schema under text/event-stream, not application/json."""

    media_type = "text/event-stream"


# Each event's `data:` is a LiveFrame as JSON.
STREAM: dict[str, Any] = {
    "response_class": EventStream,
    "response_model": None,
    "responses": {
        200: {
            "model": LiveFrame,
            "description": "Server-sent events: `id:` the event id, `event:` its type, "
            "`data:` the frame as JSON",
        },
        204: {"description": "The stream had ended before `Last-Event-ID`: stop reconnecting"},
    },
}


@router.get("/api/tasks/{task_id}/logs/stream", **STREAM)
async def task_logs_stream(
    task_id: str,
    request: Request,
    principal: CurrentPrincipal,
    state: StateDep,
    last_event_id: LastEventIdHeader = None,
    after: LastEventId = None,
) -> Response:
    """The task's log entries (the last 50, then live) and its other events."""

    async def open_(session: AsyncSession) -> Opened:
        return await owners.task_logs(session, workspace_id=principal.workspace_id, task_id=task_id)

    return await _respond(request, state, open_, _resume_point(last_event_id, after))


@router.get("/api/workflow-runs/{run_id}/logs/stream", **STREAM)
async def run_logs_stream(
    run_id: str,
    request: Request,
    principal: CurrentPrincipal,
    state: StateDep,
    last_event_id: LastEventIdHeader = None,
    after: LastEventId = None,
) -> Response:
    """A standalone task run's log entries and state changes."""

    async def open_(session: AsyncSession) -> Opened:
        return await owners.run_logs(session, workspace_id=principal.workspace_id, run_id=run_id)

    return await _respond(request, state, open_, _resume_point(last_event_id, after))


@router.get("/api/events/stream", **STREAM)
async def events_stream(
    request: Request,
    principal: CurrentPrincipal,
    state: StateDep,
    last_event_id: LastEventIdHeader = None,
    after: LastEventId = None,
) -> Response:
    """The caller's workspace's events (the last 20 state changes, then live)."""

    async def open_(session: AsyncSession) -> Opened:
        return owners.workspace_events(workspace_id=principal.workspace_id)

    return await _respond(request, state, open_, _resume_point(last_event_id, after))


def _resume_point(header: str | None, query: int | None) -> int | None:
    if header is None or not header.strip():
        return query
    try:
        value = int(header.strip())
    except ValueError:
        raise InvalidInputError("Last-Event-ID must be an event id (a whole number)") from None
    if not 0 <= value <= MAX_EVENT_ID:
        raise InvalidInputError(f"Last-Event-ID must be an event id between 0 and {MAX_EVENT_ID}")
    return value


async def _respond(request: Request, state: AppState, open_: Open, after: int | None) -> Response:
    # A session of its own, closed before streaming: a long stream holds no connection.
    async with state.sessions() as session:
        opened = await open_(session)
        # Read here, not the bus's position: with no subscriber the reader looks only
        # once a second (api/live/bus.py), so its position may be behind the end.
        caught_up = opened.ended and after is not None and after >= await live.latest_id(session)
    if caught_up:
        return Response(status_code=204)
    try:
        ip = state.live_limit.acquire(request)
    except Refused as refused:
        raise TooManyRequestsError(refused.reason) from None
    settings = state.settings

    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            async for item in follow(
                bus=state.live,
                sessions=state.sessions,
                stream=opened.stream,
                after=after,
                heartbeat=settings.live_heartbeat_seconds,
                end_grace=settings.live_end_grace_seconds,
                ended_already=opened.ended,
            ):
                if item.event is None:
                    continue  # EventSourceResponse pings by itself
                data: Any = (
                    json.dumps(item.event.frame(catch_up=True))
                    if item.catch_up
                    else item.event.json()
                )
                yield ServerSentEvent(data=data, event=item.event.type, id=str(item.event.id))
        finally:
            state.live_limit.release(ip)

    return EventSourceResponse(
        events(),
        ping=settings.live_heartbeat_seconds,
        send_timeout=settings.live_send_timeout_seconds,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


guard_routes(router)
