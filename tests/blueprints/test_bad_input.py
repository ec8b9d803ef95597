"""Bad input is a 400 that names the problem, and nothing is created."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.blueprints.conftest import create_blueprint, create_standalone
from tests.conftest import Optio

MakeRepo = Callable[..., Path]


async def schedules_of(optio: Optio) -> list[str]:
    return [s.id async for s in await optio.temporal.list_schedules()]


async def post_trigger(optio: Optio, task_id: str, **body: Any) -> Any:
    return await optio.client.post(f"/api/tasks/{task_id}/triggers", json=body)


async def test_bad_triggers_are_refused_and_nothing_is_created(
    bp: Optio, make_repo: MakeRepo
) -> None:
    blueprint = await create_blueprint(bp.client, make_repo())
    job = await create_standalone(
        bp.client,
        paramsSchema={"type": "object", "properties": {"n": {"type": "integer", "maximum": 5}}},
    )
    before = await schedules_of(bp)
    cases = [
        (blueprint, {"type": "schedule", "config": {"cronExpression": "61 * * * *"}}, "minute 61"),
        (blueprint, {"type": "schedule", "config": {"cronExpression": "* * *"}}, "5, 6 or 7"),
        (blueprint, {"type": "schedule", "config": {}}, "config.cronExpression"),
        (
            blueprint,
            {"type": "schedule", "config": {"cronExpression": "0 9 * * MON", "timezone": "Mars/X"}},
            "config.timezone",
        ),
        (job, {"type": "ticket", "config": {"source": "github"}}, "not available on standalone"),
        (blueprint, {"type": "webhook", "config": {"path": "../etc"}}, "config.path"),
        (
            job,
            {"type": "schedule", "config": {"cronExpression": "@daily"}, "paramMapping": {"n": 9}},
            "params.n must be <= 5",
        ),
    ]
    for target, body, problem in cases:
        response = await post_trigger(bp, target["id"], **body)
        assert response.status_code == 400, (body, response.text)
        assert problem in response.json()["error"], (problem, response.json())
    for target in (blueprint, job):
        listed = await bp.client.get(f"/api/tasks/{target['id']}/triggers")
        assert listed.json() == {"triggers": []}
    assert await schedules_of(bp) == before

    hook = {"type": "webhook", "config": {"path": "shared/path", "secret": "s3cret-s3cret"}}
    assert (await post_trigger(bp, blueprint["id"], **hook)).status_code == 201
    taken = await post_trigger(bp, job["id"], **hook)
    assert taken.status_code == 400 and "already in use" in taken.json()["error"]
    again = await post_trigger(bp, blueprint["id"], type="webhook", config={"path": "other"})
    assert again.status_code == 409 and 'type "webhook" already exists' in again.json()["error"]
    ticket = await post_trigger(
        bp, blueprint["id"], type="ticket", config={"source": "github", "labels": ["optio"]}
    )
    assert ticket.status_code == 201 and ticket.json()["trigger"]["config"]["labels"] == ["optio"]
    daily = await post_trigger(
        bp,
        blueprint["id"],
        type="schedule",
        config={"cronExpression": "0 9 * * MON-FRI", "timezone": "Europe/Oslo"},
    )
    assert daily.status_code == 201, daily.text
    trigger = daily.json()["trigger"]
    bad_patch = await bp.client.patch(
        f"/api/tasks/{blueprint['id']}/triggers/{trigger['id']}",
        json={"config": {"cronExpression": "0 25 * * *"}},
    )
    assert bad_patch.status_code == 400 and "hour 25" in bad_patch.json()["error"]
    handle = bp.temporal.get_schedule_handle(f"trigger-{trigger['id']}")
    spec = (await handle.describe()).schedule.spec
    assert spec.time_zone_name == "Europe/Oslo"


async def test_bad_tasks_and_params_are_refused(bp: Optio, make_repo: MakeRepo) -> None:
    repo = str(make_repo())
    unclosed = {"type": "repo-blueprint", "name": "b", "prompt": "{{#if x}}y", "repoUrl": repo}
    response = await bp.client.post("/api/tasks", json=unclosed)
    assert response.status_code == 400 and "Unclosed {{#if x}}" in response.json()["error"]
    no_prompt = {"type": "repo-blueprint", "name": "b", "repoUrl": repo}
    assert (await bp.client.post("/api/tasks", json=no_prompt)).status_code == 400
    bad_job = {"type": "standalone", "name": "j", "prompt": "{{/if}}"}
    assert (await bp.client.post("/api/tasks", json=bad_job)).status_code == 400
    bad_schema = {"type": "standalone", "name": "j", "prompt": "x", "paramsSchema": {"type": "x"}}
    response = await bp.client.post("/api/tasks", json=bad_schema)
    assert response.status_code == 400 and "unknown type" in response.json()["error"]
    unknown = await bp.client.post("/api/tasks", json={"type": "nope", "prompt": "x"})
    assert unknown.status_code == 400 and unknown.json()["error"] == "Invalid fields: type"
    assert (await bp.client.get("/api/tasks", params={"type": "all"})).json()["tasks"] == []

    job = await create_standalone(
        bp.client, paramsSchema={"type": "object", "required": ["n"], "additionalProperties": False}
    )
    missing = await bp.client.post(f"/api/tasks/{job['id']}/runs", json={"params": {"m": 1}})
    assert missing.status_code == 400
    assert missing.json()["error"] == (
        "Invalid params: params.n is required; params.m is not allowed"
    )
    assert (await bp.client.get(f"/api/tasks/{job['id']}/runs")).json() == {"runs": []}
