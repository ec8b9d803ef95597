"""Bad input to POST /api/tasks: a 400 naming the field, and nothing created."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Optio

MakeRepo = Callable[..., Path]


def valid(repo: Path) -> dict[str, Any]:
    return {"title": "t", "prompt": "echo hi", "repoUrl": str(repo), "agentType": "script"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"prompt": None}, "prompt"),
        ({"title": None}, "title"),
        ({"prompt": ""}, "prompt"),
        ({"type": "weird"}, "type"),
        ({"agentType": "gpt-pilot"}, "agentType"),
        ({"repoBranch": "main; rm -rf /"}, "repoBranch"),
        ({"priority": 0}, "priority"),
        ({"priority": 1001}, "priority"),
        ({"maxRetries": 11}, "maxRetries"),
        ({"maxRetries": -1}, "maxRetries"),
        ({"repoUrl": "not a repo"}, "repoUrl"),
        ({"repoUrl": "/definitely/not/here"}, "repoUrl"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_bad_input_is_400_naming_the_field(
    api_only: Optio, make_repo: MakeRepo, change: dict[str, Any], field: str
) -> None:
    body = {**valid(make_repo()), **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = await api_only.client.post("/api/tasks", json=body)
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]
    assert field in {d["field"] for d in response.json()["details"]}
    assert (await api_only.client.get("/api/tasks")).json()["tasks"] == []


async def test_claude_is_an_alias_and_unknown_ids_are_404(
    optio: Optio, make_repo: MakeRepo
) -> None:
    body = {**valid(make_repo()), "agentType": "claude", "maxRetries": 0}
    created = await optio.client.post("/api/tasks", json=body)
    assert created.status_code == 201
    assert created.json()["task"]["agentType"] == "claude-code"
    for path in ("", "/events", "/logs"):
        missing = await optio.client.get(f"/api/tasks/00000000-0000-0000-0000-000000000000{path}")
        assert missing.status_code == 404
        assert missing.json() == {"error": "Task not found"}
    cancel = await optio.client.post("/api/tasks/nope/cancel")
    assert cancel.status_code == 404


async def test_idempotency_key_makes_post_safe_to_retry(optio: Optio, make_repo: MakeRepo) -> None:
    body = valid(make_repo())
    headers = {"Idempotency-Key": "create-once-123"}
    first = await optio.client.post("/api/tasks", json=body, headers=headers)
    again = await optio.client.post("/api/tasks", json=body, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["task"]["id"] == again.json()["task"]["id"]
    assert len((await optio.client.get("/api/tasks")).json()["tasks"]) == 1


async def test_list_filters_by_state(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    await optio.client.post("/api/tasks", json={**valid(repo), "prompt": "exit 1", "maxRetries": 0})
    listed = await optio.client.get("/api/tasks", params={"state": "running", "limit": 5})
    assert listed.status_code == 200 and listed.json()["limit"] == 5
    bad = await optio.client.get("/api/tasks", params={"state": "sleeping"})
    assert bad.status_code == 400
