"""Sessions through the running stack: create one, wait for its worktree, its sockets."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.conftest import Optio


async def wait_session(
    optio: Optio, session_id: str, *states: str, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await optio.client.get(f"/api/sessions/{session_id}")
        assert response.status_code == 200, response.text
        body = response.json()["session"]
        if body["state"] in states:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"session still {body.get('state')}: {body}")


async def active_session(optio: Optio, repo: Path) -> dict[str, Any]:
    connected = await optio.client.post("/api/repos", json={"repoUrl": str(repo)})
    assert connected.status_code in (200, 201), connected.text
    created = await optio.client.post("/api/sessions", json={"repoUrl": str(repo)})
    assert created.status_code == 201, created.text
    return await wait_session(optio, created.json()["session"]["id"], "active")


async def until(check: Any, *, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")
