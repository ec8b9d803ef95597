"""Regression tests for what the fuzz run of issue 18 found: each answered 500, 503 or
accepted what it should refuse, or named the problem badly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Optio

MakeRepo = Callable[..., Path]
PAST_INT64 = "9223372036854775808"


async def test_an_offset_past_64_bits_is_a_400_not_a_500(
    api_only: Optio, make_repo: MakeRepo
) -> None:
    body = {"title": "t", "prompt": "p", "repoUrl": str(make_repo()), "agentType": "script"}
    task = (await api_only.client.post("/api/tasks", json=body)).json()["task"]
    for path in ("/api/tasks", f"/api/tasks/{task['id']}/logs", "/api/sessions"):
        for offset in (PAST_INT64, "1000000001", "-1"):
            response = await api_only.client.get(path, params={"offset": offset})
            assert response.status_code == 400, (path, offset, response.text)
            assert response.json()["details"][0]["field"] == "offset"
        assert (await api_only.client.get(path, params={"offset": 1000})).status_code == 200


async def test_an_event_id_past_64_bits_is_a_400_not_a_500(api_only: Optio) -> None:
    stream = "/api/events/stream"
    response = await api_only.client.get(stream, params={"lastEventId": PAST_INT64})
    assert response.status_code == 400, response.text
    assert response.json()["details"][0]["field"] == "lastEventId"
    header = await api_only.client.get(stream, headers={"Last-Event-ID": PAST_INT64})
    assert header.status_code == 400 and "Last-Event-ID" in header.json()["error"]


@pytest.mark.parametrize(
    "expression", ["@every 0s", "@every 0m/0s", "@every 100000d", "@every 1h/2h"]
)
async def test_a_schedule_that_cannot_fire_is_a_400(
    api_only: Optio, make_repo: MakeRepo, expression: str
) -> None:
    blueprint = {
        "type": "repo-blueprint",
        "name": "nightly",
        "title": "Nightly",
        "prompt": "echo",
        "repoUrl": str(make_repo()),
        "agentType": "script",
    }
    created = await api_only.client.post("/api/tasks", json=blueprint)
    assert created.status_code == 201, created.text
    task_id = created.json()["task"]["id"]
    trigger = {"type": "schedule", "config": {"cronExpression": expression}}
    response = await api_only.client.post(f"/api/tasks/{task_id}/triggers", json=trigger)
    assert response.status_code == 400, response.text
    assert "config.cronExpression" in response.json()["error"]
    listed = await api_only.client.get(f"/api/tasks/{task_id}/triggers")
    assert listed.json() == {"triggers": []}


@pytest.mark.parametrize(
    "expires_at", [0, 1893456000, "1970-01-01T00:00:00Z", "2001-01-01T00:00:00", True]
)
async def test_an_api_key_that_is_dead_on_arrival_is_refused(
    api_only: Optio, expires_at: object
) -> None:
    response = await api_only.client.post(
        "/api/auth/api-keys", json={"name": "k", "expiresAt": expires_at}
    )
    assert response.status_code == 400, response.text
    assert response.json()["details"][0]["field"] == "expiresAt"
    names = [k["name"] for k in (await api_only.client.get("/api/auth/api-keys")).json()["keys"]]
    assert "k" not in names


async def test_an_api_key_expiring_in_the_future_works(api_only: Optio) -> None:
    response = await api_only.client.post(
        "/api/auth/api-keys", json={"name": "k", "expiresAt": "2100-01-01T00:00:00Z"}
    )
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    me = await api_only.anon.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200


@pytest.mark.parametrize("value", [0, 1, "true", "yes", None])
async def test_booleans_are_strict(api_only: Optio, make_repo: MakeRepo, value: object) -> None:
    blueprint = {
        "type": "repo-blueprint",
        "name": "b",
        "title": "B",
        "prompt": "echo",
        "repoUrl": str(make_repo()),
        "agentType": "script",
    }
    task_id = (await api_only.client.post("/api/tasks", json=blueprint)).json()["task"]["id"]
    cases = [
        ("PATCH", f"/api/tasks/{task_id}", {"enabled": value}),
        ("POST", "/api/mcp-servers", {"name": "m", "command": "x", "enabled": value}),
        ("POST", f"/api/tasks/{task_id}/triggers", {"type": "manual", "enabled": value}),
    ]
    for method, path, body in cases:
        response = await api_only.client.request(method, path, json=body)
        if value is None and response.status_code < 400:
            continue  # null means "unchanged" where the field is optional
        assert response.status_code == 400, (path, response.text)
        assert "enabled" in {d["field"] for d in response.json()["details"]}, response.json()
    task = (await api_only.client.get(f"/api/tasks/{task_id}")).json()["task"]
    assert task["enabled"] is True


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ('{"title": x}', "line 1, column 11: expected a JSON value"),
        ('{"title": "t",}', "line 1, column 15: expected a property name in double quotes"),
        ('{\n  "title": "t"\n  "prompt": "p"}', "line 3, column 3: expected ','"),
        ('{"title": "t"} trailing', "line 1, column 16: expected the end of the body"),
        ('{"title": "t', "line 1, column 11: a string is not closed"),
    ],
)
async def test_malformed_json_names_the_problem_and_where(
    api_only: Optio, raw: str, where: str
) -> None:
    response = await api_only.client.post(
        "/api/tasks", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["error"].startswith("Malformed JSON: " + where), error
    assert error["details"] == [{"field": "body", "message": error["error"]}]


async def test_a_body_that_is_not_declared_json_says_so(api_only: Optio) -> None:
    response = await api_only.client.post(
        "/api/tasks", content='{"title": "t"}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 400, response.text
    assert "Content-Type: application/json" in response.json()["details"][0]["message"]


@pytest.mark.parametrize("path", ["/api/skills", "/api/mcp-servers"])
async def test_a_bad_scope_names_scope(api_only: Optio, path: str) -> None:
    response = await api_only.client.get(path, params={"scope": "not a repo"})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "Invalid fields: scope"
    assert response.json()["details"][0]["field"] == "scope"


@pytest.mark.parametrize("field", ["allowDockerInDocker", "name", "slug"])
async def test_null_for_a_field_that_cannot_be_empty_is_a_400(api_only: Optio, field: str) -> None:
    path = f"/api/workspaces/{api_only.workspace_id}"
    response = await api_only.client.patch(path, json={field: None, "description": ""})
    assert response.status_code == 400, response.text
    assert response.json()["details"] == [{"field": field, "message": "must not be null"}]
    cleared = await api_only.client.patch(path, json={"monthlyBudgetUsd": None})
    assert cleared.status_code == 200, cleared.text
