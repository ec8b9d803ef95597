"""Small helpers shared by the ticket tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import Optio
from tests.tickets.conftest import JIRA_EMAIL, JIRA_TOKEN
from tests.tickets.jira_double import JiraDouble


async def connect_repo(optio: Optio, repo: Path, **settings: Any) -> dict[str, Any]:
    body = {"repoUrl": str(repo), "defaultAgentType": "script", **settings}
    response = await optio.client.post("/api/repos", json=body)
    assert response.status_code == 201, response.text
    repo_row: dict[str, Any] = response.json()["repo"]
    return repo_row


async def add_jira(
    optio: Optio, jira: JiraDouble, repo_url: str, *, token: str = JIRA_TOKEN, **extra: Any
) -> dict[str, Any]:
    config = {
        "baseUrl": jira.base_url,
        "email": JIRA_EMAIL,
        "apiToken": token,
        "projectKey": "OPS",
        "repoUrl": repo_url,
        **extra,
    }
    response = await optio.client.post(
        "/api/tickets/providers", json={"source": "jira", "config": config}
    )
    assert response.status_code == 201, response.text
    provider: dict[str, Any] = response.json()["provider"]
    return provider


async def sync(optio: Optio, **params: str) -> dict[str, Any]:
    response = await optio.client.post("/api/tickets/sync", params=params, timeout=120)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def eventually(check: Callable[[], bool], *, timeout: float = 90, what: str = "") -> None:
    """Until `check()` holds (the outside world changes on its own time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")
