"""A running task with a runner's token, its log lines, its transitions, live clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from core.tokens import hash_token
from schemas.workflow import TransitionInput
from store.db import create_engine, session_factory, transaction
from store.models import AgentRun, Task
from store.tasks import apply_transition


@dataclass
class Running:
    task_id: str
    run_id: str
    token: str
    workspace_id: str


async def running_task(database_url: str, *, workspace_id: str) -> Running:
    """A task in `running` with an agent run, as the worker leaves them."""
    engine = create_engine(database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            task = Task(workspace_id=workspace_id, title="live", prompt="p", repo_url="/r.git",
                        agent_type="script", state="running")  # fmt: skip
            session.add(task)
            await session.flush()
            token = uuid.uuid4().hex
            run = AgentRun(
                id=str(uuid.uuid4()), task_id=task.id, workspace_id=workspace_id,
                agent_type="script", sandbox_name="s", token_hash=hash_token(token),
            )  # fmt: skip
            session.add(run)
        return Running(task.id, run.id, token, workspace_id)
    finally:
        await engine.dispose()


async def post_lines(api: str, run: Running, seqs: range, *, size: int = 0) -> None:
    """What a runner sends: a batch of entries, authenticated by its run token."""
    pad = "x" * size
    batch = {
        "events": [
            {"seq": s, "timestamp": datetime.now(UTC).isoformat(), "content": f"line {s}{pad}"}
            for s in seqs
        ]
    }
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        response = await client.post(
            f"/api/internal/runs/{run.run_id}/events",
            json=batch,
            headers={"Authorization": f"Bearer {run.token}"},
        )
    assert response.status_code == 200, response.text


async def transition(database_url: str, run: Running, *, seq: int, to_state: str) -> None:
    """What the worker's record_transition writes (from a process of its own)."""
    engine = create_engine(database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            data = TransitionInput(task_id=run.task_id, seq=seq, from_state="running",
                                   to_state=to_state, trigger="test")  # fmt: skip
            assert await apply_transition(session, data=data)
    finally:
        await engine.dispose()


def ws_url(api: str, path: str) -> str:
    return api.replace("http://", "ws://", 1) + path


@contextlib.asynccontextmanager
async def ws(
    api: str, path: str, token: str | None, **kwargs: Any
) -> AsyncIterator[ClientConnection]:
    protocols = ["optio-ws-v1", f"optio-auth-{token}"] if token else None
    async with connect(ws_url(api, path), subprotocols=protocols, **kwargs) as conn:  # type: ignore[arg-type]
        yield conn


async def frames(conn: ClientConnection, n: int, *, timeout: float = 20) -> list[dict[str, Any]]:
    """The next n frames that are not heartbeats."""
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            frame = json.loads(await conn.recv())
            if frame["type"] != "heartbeat":
                out.append(frame)
    return out


async def close_code(conn: ClientConnection, *, timeout: float = 20) -> int | None:
    """Read until the server closes; its close code."""
    from websockets.exceptions import ConnectionClosed

    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(timeout):
            while True:
                await conn.recv()
    return conn.close_code


def seq_of(frame: dict[str, Any]) -> int:
    return int(frame["content"].split()[1].rstrip("x"))


class SseReader:
    """A real SSE client over httpx: parses `id:`, `event:` and `data:` fields."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next(self, *, timeout: float = 20) -> dict[str, Any]:
        fields: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            async for line in self.lines:
                if not line:
                    if "data" in fields:
                        return {"id": int(fields["id"]), "event": fields["event"],
                                "data": json.loads(fields["data"])}  # fmt: skip
                    fields = {}
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        raise EOFError("stream ended")


class StuckClient:
    """A WebSocket client on a raw socket with a tiny receive buffer that reads nothing
    until told to: what a client on a dead network looks like to the server."""

    def __init__(self, port: int, path: str, token: str) -> None:
        import base64
        import os
        import socket

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: optio-ws-v1, optio-auth-{token}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def read_until_close(self) -> tuple[int | None, str, int]:
        """(close code, reason, data frames) once the server closes (blocking)."""
        self.sock.settimeout(60)
        buf, frames = b"", 0

        def need(n: int) -> bytes:
            nonlocal buf
            while len(buf) < n:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise EOFError
                buf += chunk
            out, buf = buf[:n], buf[n:]
            return out

        try:
            while True:
                b0, b1 = need(2)
                length = b1 & 0x7F
                if length == 126:
                    length = int.from_bytes(need(2), "big")
                elif length == 127:
                    length = int.from_bytes(need(8), "big")
                payload = need(length)
                if b0 & 0x0F == 0x8:
                    return int.from_bytes(payload[:2], "big"), payload[2:].decode(), frames
                frames += 1
        except EOFError:
            return None, "", frames
        finally:
            self.sock.close()


async def subscribed(optio: Any, count: int) -> None:
    """Wait until the API's bus has `count` clients: the handshake answers before the
    client is subscribed, and what happens in between is only in the catch-up."""
    bus = optio.server._server.config.app.state.optio.live
    async with asyncio.timeout(20):
        while bus.subscribers < count:
            await asyncio.sleep(0.01)
