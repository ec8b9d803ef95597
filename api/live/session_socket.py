"""What the session WebSockets share: who may open them, and telling the session's
workflow that someone is using it (so the idle timeout starts again)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect
from temporalio.service import RPCError

from api.live.access import (
    FORBIDDEN,
    NOT_FOUND,
    SLOW_CLIENT,
    Refused,
    offered_protocol,
    ws_principal,
)
from api.live.ws import NORMAL, close_socket
from api.state import AppState
from core.errors import NotFoundError
from core.names import session_workflow_id
from schemas.auth import Principal
from store.db import transaction
from store.session_rows import get_session
from store.sessions import InteractiveSession
from store.types import utcnow

TOUCH_EVERY = 30.0  # seconds between two idle-clock resets of one connection
READY_WAIT = 120.0  # a session still provisioning is waited for this long


@dataclass
class SessionSocket:
    websocket: WebSocket
    state: AppState
    principal: Principal
    row: InteractiveSession
    _touched_at: float = 0.0

    async def touch(self) -> None:
        """Someone is using the session: restart its idle clock (at most every 30 s)."""
        now = time.monotonic()
        if now - self._touched_at < TOUCH_EVERY:
            return
        self._touched_at = now
        async with transaction(self.state.sessions) as session:
            row = await session.get(InteractiveSession, self.row.id)
            if row is not None:
                row.last_activity_at = utcnow()
        with contextlib.suppress(RPCError):
            client = await self.state.temporal_client()
            await client.get_workflow_handle(session_workflow_id(self.row.id)).signal("touch")


Handler = Callable[[SessionSocket], Awaitable[tuple[int, str]]]


async def serve_session_socket(websocket: WebSocket, session_id: str, handler: Handler) -> None:
    """Accept, authenticate (owner only), wait for the worktree, hand over; close with a code."""
    state: AppState = websocket.app.state.optio
    settings = state.settings
    await websocket.accept(subprotocol=offered_protocol(websocket))
    ip: str | None = None
    try:
        ip = state.live_limit.acquire(websocket)
        principal = await ws_principal(
            websocket, state.sessions, allowed_origins=(settings.public_url, settings.web_url)
        )
        row = await _ready_session(state, principal, session_id)
        try:
            code, reason = await handler(SessionSocket(websocket, state, principal, row))
        except TimeoutError:
            code, reason = SLOW_CLIENT, "Client too slow"
        except (WebSocketDisconnect, RuntimeError):
            code, reason = NORMAL, ""  # the client left while we were sending
    except Refused as refused:
        code, reason = refused.code, refused.reason
    finally:
        if ip is not None:
            state.live_limit.release(ip)
    await close_socket(websocket, code or NORMAL, reason)


async def _ready_session(
    state: AppState, principal: Principal, session_id: str
) -> InteractiveSession:
    deadline = time.monotonic() + READY_WAIT
    while True:
        async with state.sessions() as session:
            try:
                row = await get_session(
                    session, workspace_id=principal.workspace_id, session_id=session_id
                )
            except NotFoundError as exc:
                raise Refused(NOT_FOUND, str(exc)) from exc
        if row.user_id != principal.user_id:
            raise Refused(FORBIDDEN, "Only the person who started this session may use it")
        if row.state == "active":
            return row
        if row.state != "provisioning" or time.monotonic() > deadline:
            raise Refused(NOT_FOUND, f"The session is {row.state}")
        await asyncio.sleep(0.2)
