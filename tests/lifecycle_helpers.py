"""Small helpers for driving tasks through the API in tests."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.task_starts import TaskStarts
from store.db import transaction
from store.models import Task
from store.types import utcnow
from tests.conftest import Optio, free_port, git


async def create_task(
    client: httpx.AsyncClient, repo: Path | str, script: str, **fields: Any
) -> dict[str, Any]:
    body = {
        "title": fields.pop("title", "Test task"),
        "prompt": script,
        "repoUrl": str(repo),
        "agentType": "script",
        **fields,
    }
    response = await client.post("/api/tasks", json=body)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()["task"]
    return task


async def wait_for_state(
    client: httpx.AsyncClient, task_id: str, *states: str, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get(f"/api/tasks/{task_id}")
        assert response.status_code == 200, response.text
        last = response.json()
        if last["task"]["state"] in states:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"task never reached {states}; last seen {last.get('task')}")


async def wait_for_states(
    client: httpx.AsyncClient, task_ids: list[str], *states: str, timeout: float = 120
) -> None:
    """Until every task is in one of `states`: one list request per look, not one request
    per task (fifty tasks polled one by one were most of the API's load in a test)."""
    wanted = set(task_ids)
    deadline = time.monotonic() + timeout
    elsewhere: dict[str, str] = {}
    while time.monotonic() < deadline:
        response = await client.get("/api/tasks", params={"limit": 1000})
        assert response.status_code == 200, response.text
        found = {t["id"]: t["state"] for t in response.json()["tasks"] if t["id"] in wanted}
        elsewhere = {i: state for i, state in found.items() if state not in states}
        if not elsewhere and found.keys() == wanted:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"tasks never reached {states}: {elsewhere}")


async def triggers(client: httpx.AsyncClient, task_id: str) -> list[tuple[str, str]]:
    events = (await client.get(f"/api/tasks/{task_id}/events")).json()["events"]
    return [(e["toState"], e["trigger"]) for e in events]


def file_on_branch(repo: Path, branch: str, path: str) -> str | None:
    try:
        return git("show", f"{branch}:{path}", cwd=repo)
    except Exception:
        return None


async def wait_for_logs(
    client: httpx.AsyncClient, task_id: str, expected: list[str], timeout: float = 20
) -> None:
    """Runners deliver logs asynchronously: wait until exactly these contents are stored."""
    deadline = time.monotonic() + timeout
    contents: list[str] = []
    while time.monotonic() < deadline:
        logs = (await client.get(f"/api/tasks/{task_id}/logs")).json()["logs"]
        contents = [entry["content"] for entry in logs]
        if contents == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"logs {contents} never became {expected}")


async def wait_for_log_text(
    client: httpx.AsyncClient, task_id: str, *needles: str, timeout: float = 20
) -> str:
    """All the task's log contents once each needle is among them (logs arrive late)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        logs = (await client.get(f"/api/tasks/{task_id}/logs")).json()["logs"]
        text = "\n".join(entry["content"] for entry in logs)
        if all(needle in text for needle in needles):
            return text
        await asyncio.sleep(0.1)
    missing = [needle for needle in needles if needle not in text]
    raise AssertionError(f"logs never showed {missing}: {text[-2000:]!r}")


async def wait_for_trigger(
    client: httpx.AsyncClient, task_id: str, step: tuple[str, str], timeout: float = 60
) -> None:
    """Until (toState, trigger) is among the task's recorded transitions."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if step in await triggers(client, task_id):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{step} never happened: {await triggers(client, task_id)}")


async def wait_for_checks(
    client: httpx.AsyncClient, task_id: str, status: str, timeout: float = 60
) -> None:
    """Until the task's prChecksStatus is `status`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = (await client.get(f"/api/tasks/{task_id}")).json()["task"]
        if task["prChecksStatus"] == status:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"checks never became {status}")


async def commit_unstarted_task(
    sessions: async_sessionmaker[AsyncSession],
    optio: Optio,
    repo: Path,
    script: str,
    *,
    requested_at: datetime | None = None,
) -> Task:
    """A task row as an API commits it before starting its workflow: marked with
    `start_requested_at`, and no workflow yet."""
    async with transaction(sessions) as session:
        task = Task(
            workspace_id=optio.workspace_id,
            title="not started yet",
            prompt=script,
            repo_url=str(repo),
            agent_type="script",
            state="pending",
            start_requested_at=requested_at or utcnow(),
        )
        session.add(task)
    return task


def task_starts(optio: Optio, sessions: async_sessionmaker[AsyncSession]) -> TaskStarts:
    """An API process's task starter, on the test's Temporal client."""

    async def client() -> Any:
        return optio.temporal

    return TaskStarts(sessions=sessions, client=client, task_queue=optio.settings.task_queue)


class Gate:
    """A port the sandboxed script waits on (it sees no file of the test's, but shares the
    network): the test opens it to let the script go on."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: socket.socket | None = None

    def probe(self) -> str:
        """A shell condition: true once the gate is open."""
        return f"(exec 3<>/dev/tcp/127.0.0.1/{self.port}) 2>/dev/null"

    def script(self, script: str) -> str:
        return f"until {self.probe()}; do sleep 0.1; done\n{script}"

    def open(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
