"""WebSockets: /ws/logs/:taskId, /ws/events, /ws/workflow-runs/:id/logs.

Frames are JSON text: each event as `{type, eventId, ...}` (`catchUp: true` for the
catch-up), `{type: "heartbeat"}` when idle. A client that reconnects passes
`?lastEventId=<the last eventId it got>` and receives everything after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, WebSocket
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocketDisconnect, WebSocketState

from api.live import owners
from api.live.access import (
    NOT_FOUND,
    SLOW_CLIENT,
    TOO_LARGE,
    Refused,
    offered_protocol,
    ws_principal,
)
from api.live.owners import Opened
from api.live.streams import follow
from api.paging import LastEventId
from api.state import AppState
from core.errors import NotFoundError
from schemas.auth import Principal
from store.types import utcnow

router = APIRouter()
MAX_MESSAGE = 1024 * 1024
NORMAL = 1000
CLOSE_WAIT = 30.0
Open = Callable[[AsyncSession, Principal], Awaitable[Opened]]


@router.websocket("/ws/logs/{task_id}")
async def task_logs(websocket: WebSocket, task_id: str, after: LastEventId = None) -> None:
    async def open_(session: AsyncSession, principal: Principal) -> Opened:
        return await owners.task_logs(session, workspace_id=principal.workspace_id, task_id=task_id)

    await _serve(websocket, open_, after)


@router.websocket("/ws/workflow-runs/{run_id}/logs")
async def run_logs(websocket: WebSocket, run_id: str, after: LastEventId = None) -> None:
    async def open_(session: AsyncSession, principal: Principal) -> Opened:
        return await owners.run_logs(session, workspace_id=principal.workspace_id, run_id=run_id)

    await _serve(websocket, open_, after)


@router.websocket("/ws/events")
async def events(websocket: WebSocket, after: LastEventId = None) -> None:
    async def open_(session: AsyncSession, principal: Principal) -> Opened:
        return owners.workspace_events(workspace_id=principal.workspace_id)

    await _serve(websocket, open_, after)


async def _serve(websocket: WebSocket, open_: Open, after: int | None) -> None:
    state: AppState = websocket.app.state.optio
    settings = state.settings
    # Accepted first: a refusal before the handshake could only be a bare HTTP 403, and
    # the client is owed the close code that says why.
    await websocket.accept(subprotocol=offered_protocol(websocket))
    ip: str | None = None
    try:
        ip = state.live_limit.acquire(websocket)
        principal = await ws_principal(
            websocket, state.sessions, allowed_origins=(settings.public_url, settings.web_url)
        )
        try:
            async with state.sessions() as session:
                opened = await open_(session, principal)
        except NotFoundError as exc:
            raise Refused(NOT_FOUND, str(exc)) from exc
        code, reason = await _pump(websocket, state, opened, after)
    except Refused as refused:
        code, reason = refused.code, refused.reason
    finally:
        if ip is not None:
            state.live_limit.release(ip)
    await close_socket(websocket, code, reason)


async def _pump(
    websocket: WebSocket, state: AppState, opened: Opened, after: int | None
) -> tuple[int, str]:
    """Send until the stream ends, the client leaves, lags or sends too much."""
    sender = asyncio.create_task(_send(websocket, state, opened, after))
    receiver = asyncio.create_task(_receive(websocket))
    try:
        done, _ = await asyncio.wait({sender, receiver}, return_when="FIRST_COMPLETED")
    finally:
        for task in (sender, receiver):
            task.cancel()
        for task in (sender, receiver):
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                await task
    finished = sender if sender in done else receiver
    if finished.cancelled() or finished.exception() is not None:
        return NORMAL, ""
    return finished.result()


async def _send(
    websocket: WebSocket, state: AppState, opened: Opened, after: int | None
) -> tuple[int, str]:
    settings = state.settings
    timeout = settings.live_send_timeout_seconds
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
                text = json.dumps({"type": "heartbeat", "timestamp": utcnow().isoformat()})
            elif item.catch_up:
                text = json.dumps(item.event.frame(catch_up=True))
            else:
                text = item.event.json()
            await asyncio.wait_for(websocket.send_text(text), timeout=timeout)
    except TimeoutError:
        return SLOW_CLIENT, "Client too slow: reconnect with ?lastEventId= to resume"
    return NORMAL, "Stream ended"


async def _receive(websocket: WebSocket) -> tuple[int, str]:
    """Clients have nothing to say on these streams but may ping; a flood is refused."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        size = len(message.get("bytes") or b"") + len((message.get("text") or "").encode())
        if size > MAX_MESSAGE:
            return TOO_LARGE, "Message larger than 1 MB"


async def close_socket(websocket: WebSocket, code: int, reason: str) -> None:
    """The close frame goes after what is already buffered: a slow client that reads on
    gets it; one that never does is cut off after CLOSE_WAIT (its buffer is full, so
    nothing grows meanwhile)."""
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    if websocket.client_state != WebSocketState.CONNECTED:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code=code, reason=reason[:120]), CLOSE_WAIT)
