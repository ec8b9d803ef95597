"""/api/task-configs/* and /api/jobs/* serve the same rows as /api/tasks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.blueprints.test_standalone import run_state
from tests.conftest import Optio
from tests.lifecycle_helpers import wait_for_state

MakeRepo = Callable[..., Path]


async def test_task_configs_alias(bp: Optio, make_repo: MakeRepo) -> None:
    client, repo = bp.client, make_repo()
    created = await client.post(
        "/api/task-configs",
        json={
            "name": "c",
            "title": "T",
            "prompt": "echo x > x",
            "repoUrl": str(repo),
            "agentType": "script",
        },
    )
    assert created.status_code == 201, created.text
    config = created.json()["taskConfig"]
    assert config["type"] == "repo-blueprint"
    assert (await client.get(f"/api/tasks/{config['id']}")).json()["task"]["name"] == "c"
    assert [c["id"] for c in (await client.get("/api/task-configs")).json()["taskConfigs"]] == [
        config["id"]
    ]
    trigger = await client.post(
        f"/api/task-configs/{config['id']}/triggers", json={"type": "manual"}
    )
    assert trigger.status_code == 201
    assert len((await client.get(f"/api/tasks/{config['id']}/triggers")).json()["triggers"]) == 1
    ran = await client.post(f"/api/task-configs/{config['id']}/run", json={})
    assert ran.status_code == 202, ran.text
    await wait_for_state(client, ran.json()["task"]["id"], "pr_opened")
    patched = await client.patch(f"/api/task-configs/{config['id']}", json={"description": "d"})
    assert patched.json()["taskConfig"]["description"] == "d"
    assert (await client.delete(f"/api/task-configs/{config['id']}")).status_code == 204
    assert (await client.get(f"/api/task-configs/{config['id']}")).status_code == 404


async def test_jobs_alias(bp: Optio) -> None:
    client = bp.client
    created = await client.post(
        "/api/jobs",
        json={
            "name": "j",
            "promptTemplate": "echo {{x}}",
            "agentRuntime": "script",
            "budgetUsd": 1.5,
        },
    )
    assert created.status_code == 201, created.text
    job = created.json()["workflow"]
    assert job["type"] == "standalone" and job["budgetUsd"] == "1.5"
    assert job["agentRuntime"] == "script" and job["promptTemplate"] == "echo {{x}}"
    listed = (await client.get("/api/tasks", params={"type": "standalone"})).json()["tasks"]
    assert [t["id"] for t in listed] == [job["id"]]
    run = await client.post(f"/api/jobs/{job['id']}/runs", json={"params": {"x": "y"}})
    assert run.status_code == 201, run.text
    run_id = run.json()["run"]["id"]
    done = await run_state(bp, job["id"], run_id, "completed")
    assert done["output"] == {"summary": "y"}
    assert (await client.get(f"/api/workflow-runs/{run_id}")).json()["run"]["state"] == "completed"
    assert [r["id"] for r in (await client.get(f"/api/jobs/{job['id']}/runs")).json()["runs"]] == [
        run_id
    ]
    assert (await client.get("/api/workflow-runs/nope")).status_code == 404
    assert (await client.delete(f"/api/jobs/{job['id']}")).status_code == 204
    assert (await client.get(f"/api/tasks/{job['id']}")).status_code == 404
