"""Fixtures for blueprints and standalone tasks: schedules must not outlive their test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from temporalio.client import ScheduleActionStartWorkflow

from core.tokens import hash_token, new_api_token
from store.db import create_engine, session_factory, transaction
from store.models import ApiKey, User, Workspace, WorkspaceMember
from tests.conftest import Optio


@pytest.fixture
async def bp(optio: Optio) -> AsyncIterator[Optio]:
    """`optio`, and at the end every Temporal Schedule aimed at this test's task queue deleted.

    The dev server is shared by the whole session: a schedule left behind would keep
    firing into a task queue nobody polls any more.
    """
    yield optio
    async for listed in await optio.temporal.list_schedules():
        handle = optio.temporal.get_schedule_handle(listed.id)
        try:
            action = (await handle.describe()).schedule.action
        except Exception:
            continue
        if (
            isinstance(action, ScheduleActionStartWorkflow)
            and action.task_queue == optio.settings.task_queue
        ):
            await handle.delete()


async def eventually(
    probe: Callable[[], Awaitable[Any]], *, timeout: float = 30, every: float = 0.2
) -> Any:
    """Poll until `probe` returns something truthy; that value is returned."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s; last value {last!r}")


async def create_blueprint(client: httpx.AsyncClient, repo: Any, **fields: Any) -> dict[str, Any]:
    body = {
        "type": "repo-blueprint",
        "name": fields.pop("name", "nightly"),
        "title": fields.pop("title", "Nightly chore"),
        "prompt": fields.pop("prompt", "echo done > done.txt"),
        "repoUrl": str(repo),
        "agentType": "script",
        **fields,
    }
    response = await client.post("/api/tasks", json=body)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()["task"]
    return task


async def create_standalone(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {
        "type": "standalone",
        "name": fields.pop("name", "report"),
        "prompt": fields.pop("prompt", "echo hello"),
        "agentType": "script",
        **fields,
    }
    response = await client.post("/api/tasks", json=body)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()["task"]
    return task


async def runs_of(client: httpx.AsyncClient, task_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/tasks/{task_id}/runs")
    assert response.status_code == 200, response.text
    runs: list[dict[str, Any]] = response.json()["runs"]
    return runs


async def other_workspace_client(optio: Optio) -> httpx.AsyncClient:
    """A client of an admin in a second workspace (caller closes it)."""
    token = new_api_token()
    engine = create_engine(optio.settings.database_url_resolved)
    async with transaction(session_factory(engine)) as session:
        workspace = Workspace(name="Other", slug="other")
        session.add(workspace)
        await session.flush()
        user = User(
            provider="local",
            external_id="someone",
            display_name="Someone",
            default_workspace_id=workspace.id,
        )
        session.add(user)
        await session.flush()
        session.add(WorkspaceMember(workspace_id=workspace.id, user_id=user.id, role="admin"))
        session.add(ApiKey(user_id=user.id, name="t", prefix="x", hashed_key=hash_token(token)))
    await engine.dispose()
    return httpx.AsyncClient(
        base_url=str(optio.client.base_url),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
