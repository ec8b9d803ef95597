"""/ws/sessions/:id/chat: the session's agent, one turn per message, continuing its session.

Client -> server: `{"type":"message","content"}`, `{"type":"interrupt"}`,
`{"type":"set_model","model"}`. Server -> client: `{"type":"status","status":
"ready"|"thinking"|"idle"|"error","model","costUsd"}`, `{"type":"chat_event","event":
{...},"catchUp"?}`, `{"type":"cost_update","costUsd"}`, `{"type":"error","message"}`.
Every event, the person's own message first (`logType: "user_message"`), is kept in the
session's chat history (GET /api/sessions/:id/chat) and replayed as catch-up on connect.
Owner only; one turn at a time per session and connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from api.live.access import TOO_LARGE
from api.live.session_socket import SessionSocket, serve_session_socket
from api.live.ws import MAX_MESSAGE, NORMAL
from api.session_agent import run_turn, turn_setup
from core.budget import parse_usd
from integrations.agents.base import ParsedEntry
from integrations.sandbox import SandboxUnavailableError
from schemas.sessions import ChatInterrupt, ChatMessage, ChatSetModel
from store.db import transaction
from store.session_rows import add_chat_event, chat_history, chat_payload
from store.sessions import InteractiveSession

router = APIRouter()
CATCH_UP = 200


@router.websocket("/ws/sessions/{session_id}/chat")
async def chat(websocket: WebSocket, session_id: str) -> None:
    await serve_session_socket(websocket, session_id, _Chat.serve)


class _Chat:
    def __init__(self, sock: SessionSocket) -> None:
        self.sock = sock
        self.turn: asyncio.Task[None] | None = None

    @classmethod
    async def serve(cls, sock: SessionSocket) -> tuple[int, str]:
        chat = cls(sock)
        try:
            return await chat._run()
        finally:
            if chat.turn is not None:
                chat.turn.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await chat.turn

    async def _send(self, frame: dict[str, Any]) -> None:
        timeout = self.sock.state.settings.live_send_timeout_seconds
        await asyncio.wait_for(self.sock.websocket.send_text(json.dumps(frame)), timeout)

    async def _status(self, status: str) -> None:
        row = self.sock.row
        await self._send(
            {"type": "status", "status": status, "model": row.model, "costUsd": row.cost_usd}
        )

    async def _run(self) -> tuple[int, str]:
        async with self.sock.state.sessions() as session:
            history = await chat_history(session, session_id=self.sock.row.id, limit=CATCH_UP)
        for event in history:
            await self._send({"type": "chat_event", "event": chat_payload(event), "catchUp": True})
        await self._status("ready")
        while True:
            message = await self.sock.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return NORMAL, ""
            text = message.get("text") or (message.get("bytes") or b"").decode(errors="replace")
            if len(text.encode()) > MAX_MESSAGE:
                return TOO_LARGE, "Message larger than 1 MB"
            await self._handle(text)

    async def _handle(self, text: str) -> None:
        try:
            frame = json.loads(text)
            kind = frame.get("type") if isinstance(frame, dict) else None
            if kind == "message":
                await self._start_turn(ChatMessage.model_validate(frame).content)
            elif kind == "interrupt":
                ChatInterrupt.model_validate(frame)
                await self._interrupt()
            elif kind == "set_model":
                await self._set_model(ChatSetModel.model_validate(frame).model)
            else:
                await self._send({"type": "error", "message": "Unknown frame type"})
        except (ValueError, ValidationError) as exc:
            await self._send({"type": "error", "message": f"Malformed frame: {exc}"[:500]})

    async def _start_turn(self, content: str) -> None:
        if self.turn is not None and not self.turn.done():
            await self._send({"type": "error", "message": "A turn is running: interrupt it first"})
            return
        await self.sock.touch()
        self.turn = asyncio.create_task(self._turn(content))

    async def _interrupt(self) -> None:
        if self.turn is None or self.turn.done():
            return
        self.turn.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.turn
        await self._record(ParsedEntry("info", "Interrupted", "stdout", {"interrupted": True}))
        await self._status("idle")

    async def _set_model(self, model: str) -> None:
        async with transaction(self.sock.state.sessions) as session:
            row = await session.get(InteractiveSession, self.sock.row.id)
            if row is not None:
                row.model = model
        self.sock.row.model = model
        await self._status("ready")

    async def _turn(self, content: str) -> None:
        state, row = self.sock.state, self.sock.row
        await self._record(ParsedEntry("user_message", content, "stdout", {}))  # type: ignore[arg-type]
        await self._status("thinking")
        try:
            async with state.sessions() as session:
                setup = await turn_setup(session, state.settings, row)
                redact = await state.masks.redactor(
                    session, workspace_id=row.workspace_id, extra=setup.secrets
                )
            async for entry in run_turn(setup, content):
                masked = ParsedEntry(
                    entry.log_type, redact.text(entry.content), entry.stream,
                    redact.data(entry.metadata),
                )  # fmt: skip
                await self._record(masked)
                outcome = entry.metadata.get("outcome")
                if isinstance(outcome, dict):
                    await self._finish_turn(outcome)
        except (OSError, SandboxUnavailableError) as exc:
            await self._record(ParsedEntry("error", f"Could not start the agent: {exc}"))
            await self._status("error")
            return
        await self._status("idle")

    async def _finish_turn(self, outcome: dict[str, Any]) -> None:
        """The agent's session continues next time; its cost adds to the session's."""
        async with transaction(self.sock.state.sessions) as session:
            row = await session.get(InteractiveSession, self.sock.row.id)
            if row is None:
                return
            if outcome.get("sessionId"):
                row.agent_session_id = str(outcome["sessionId"])
            cost = parse_usd(outcome.get("costUsd"))
            if cost is not None:
                row.cost_usd = str((parse_usd(row.cost_usd) or Decimal(0)) + cost)
            self.sock.row.agent_session_id = row.agent_session_id
            self.sock.row.cost_usd = row.cost_usd
        if cost is not None:
            await self._send({"type": "cost_update", "costUsd": self.sock.row.cost_usd})

    async def _record(self, entry: ParsedEntry) -> None:
        async with transaction(self.sock.state.sessions) as session:
            event = add_chat_event(
                session, row=self.sock.row, log_type=entry.log_type, content=entry.content,
                stream=entry.stream, metadata=entry.metadata,
            )  # fmt: skip
            await session.flush()
            payload = chat_payload(event)
        await self._send({"type": "chat_event", "event": payload})
