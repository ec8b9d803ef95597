"""The session chat: the real Claude Code CLI against the scripted model endpoint, in the
session's sandbox, one turn per message, continuing its own session."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from core.settings import Settings
from integrations.session_sandbox import session_worktree
from tests.agents.conftest import need_cli, pointed_at
from tests.agents.model_endpoint import Endpoint
from tests.conftest import Optio
from tests.live.helpers import ws
from tests.sessions.helpers import active_session

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("sqlite")

MakeRepo = Callable[..., Path]


@pytest.fixture
def model_endpoint() -> Iterator[Endpoint]:
    endpoint = Endpoint()
    endpoint.start()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def settings(settings: Settings, model_endpoint: Endpoint) -> Settings:
    return pointed_at(settings, model_endpoint)


async def _until_status(
    conn: ClientConnection, status: str, *, timeout: float = 90
) -> list[dict[str, Any]]:
    """Frames up to and including the status `status`."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await conn.recv())
            frames.append(frame)
            if frame["type"] == "status" and frame["status"] == status:
                return frames


async def _until_type(conn: ClientConnection, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            frame: dict[str, Any] = json.loads(await conn.recv())
            if frame["type"] == kind:
                return frame


def _events(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f["event"] for f in frames if f["type"] == "chat_event"]


async def test_chat_runs_the_agent_in_the_worktree_and_continues_its_session(
    optio: Optio, make_repo: MakeRepo, model_endpoint: Endpoint
) -> None:
    need_cli("claude")
    session = await active_session(optio, make_repo())
    worktree = session_worktree(optio.settings, session["id"])
    api = f"http://127.0.0.1:{optio.settings.api_port}"
    path = f"/ws/sessions/{session['id']}/chat"
    async with ws(api, path, optio.token) as conn:
        await _until_status(conn, "ready")
        first_prompt = 'Create the file one.txt containing "1"'
        await conn.send(json.dumps({"type": "message", "content": first_prompt}))
        frames = await _until_status(conn, "idle")
        events = _events(frames)
        assert events[0]["logType"] == "user_message"
        assert any(e["logType"] == "tool_use" and e["content"].startswith("Write ") for e in events)
        assert any(f["type"] == "status" and f["status"] == "thinking" for f in frames)
        costs = [f["costUsd"] for f in frames if f["type"] == "cost_update"]
        assert costs and float(costs[-1]) > 0
    assert (worktree / "one.txt").read_text() == "1\n"
    first = (await optio.client.get(f"/api/sessions/{session['id']}")).json()["session"]
    assert first["agentSessionId"]
    before = len(model_endpoint.api_requests("anthropic"))

    async with ws(api, path, optio.token) as conn:
        catch_up = await _until_status(conn, "ready")
        assert all(f.get("catchUp") for f in catch_up if f["type"] == "chat_event")
        assert _events(catch_up)[0]["content"] == 'Create the file one.txt containing "1"'
        second_prompt = 'Create the file two.txt containing "2"'
        await conn.send(json.dumps({"type": "message", "content": second_prompt}))
        await _until_status(conn, "idle")
    assert (worktree / "two.txt").read_text() == "2\n"
    # The second turn's first request carries the first turn's conversation.
    history = json.dumps(model_endpoint.api_requests("anthropic")[before]["body"]["messages"])
    assert "one.txt" in history and '"name": "Write"' in history
    second = (await optio.client.get(f"/api/sessions/{session['id']}")).json()["session"]
    assert second["agentSessionId"] == first["agentSessionId"]
    assert float(second["costUsd"]) > float(first["costUsd"])
    chat = (await optio.client.get(f"/api/sessions/{session['id']}/chat")).json()["events"]
    prompts = [e["content"] for e in chat if e["logType"] == "user_message"]
    assert len(prompts) == 2


async def test_interrupt_stops_the_turn(
    optio: Optio, make_repo: MakeRepo, model_endpoint: Endpoint
) -> None:
    need_cli("claude")
    model_endpoint.commands.append("sleep 60")
    session = await active_session(optio, make_repo())
    api = f"http://127.0.0.1:{optio.settings.api_port}"
    async with ws(api, f"/ws/sessions/{session['id']}/chat", optio.token) as conn:
        await _until_status(conn, "ready")
        await conn.send(json.dumps({"type": "message", "content": "Say hello"}))
        await _until_status(conn, "thinking")
        async with asyncio.timeout(60):
            while not model_endpoint.api_requests("anthropic"):
                await asyncio.sleep(0.05)
        await conn.send(json.dumps({"type": "message", "content": "again"}))
        busy = await _until_type(conn, "error")
        assert "interrupt" in busy["message"]
        await conn.send(json.dumps({"type": "interrupt"}))
        frames = await _until_status(conn, "idle", timeout=20)
        assert _events(frames)[-1]["content"] == "Interrupted"
        await conn.send(json.dumps({"type": "bogus"}))
        assert "Unknown" in (await _until_type(conn, "error"))["message"]
