"""Blueprints on the polymorphic /api/tasks: CRUD, manual runs that open real PRs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.blueprints.conftest import create_blueprint, other_workspace_client, runs_of
from tests.conftest import Optio
from tests.lifecycle_helpers import create_task, file_on_branch, wait_for_state

MakeRepo = Callable[..., Path]


async def test_blueprint_run_opens_a_task_that_reaches_pr_opened(
    bp: Optio, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    blueprint = await create_blueprint(
        bp.client,
        repo,
        title="Bump {{pkg}}",
        prompt="echo {{pkg}} > bumped.txt{{#if loud}}\necho LOUD{{/if}}\necho bumped {{pkg}}",
    )
    assert blueprint["type"] == "repo-blueprint" and blueprint["enabled"] is True
    assert blueprint["repoUrl"] == f"file://{repo.resolve()}"
    read = (await bp.client.get(f"/api/tasks/{blueprint['id']}")).json()["task"]
    assert read["type"] == "repo-blueprint" and read["name"] == "nightly"

    started = await bp.client.post(
        f"/api/tasks/{blueprint['id']}/runs", json={"params": {"pkg": "left-pad"}}
    )
    assert started.status_code == 202, started.text
    assert started.json()["type"] == "repo-task"
    task_id = started.json()["runId"]

    task = (await wait_for_state(bp.client, task_id, "pr_opened"))["task"]
    assert task["type"] == "repo-task"
    assert task["title"] == "Bump left-pad"
    assert task["prompt"] == (
        "export OPTIO_PARAM_pkg=left-pad\n"
        'echo "${OPTIO_PARAM_pkg}" > bumped.txt\necho bumped "${OPTIO_PARAM_pkg}"'
    )
    assert task["metadata"]["taskConfigId"] == blueprint["id"]
    assert task["metadata"]["params"] == {"pkg": "left-pad"}
    assert task["metadata"]["triggerId"] is None
    assert file_on_branch(repo, f"optio/task-{task_id}", "bumped.txt") == "left-pad"

    runs = await runs_of(bp.client, blueprint["id"])
    assert [r["id"] for r in runs] == [task_id]
    one = await bp.client.get(f"/api/tasks/{blueprint['id']}/runs/{task_id}")
    assert one.status_code == 200 and one.json()["run"]["state"] == "pr_opened"
    # The task is a repo task like any other; the blueprint lists apart from them.
    listed = (await bp.client.get("/api/tasks")).json()["tasks"]
    assert [t["id"] for t in listed] == [task_id]
    blueprints = (await bp.client.get("/api/tasks", params={"type": "repo-blueprint"})).json()
    assert [t["id"] for t in blueprints["tasks"]] == [blueprint["id"]]
    everything = (await bp.client.get("/api/tasks", params={"type": "all"})).json()["tasks"]
    assert {t["type"] for t in everything} == {"repo-task", "repo-blueprint"}


async def test_blueprint_patch_delete_and_repo_task_refusals(
    bp: Optio, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    blueprint = await create_blueprint(bp.client, repo)
    patched = await bp.client.patch(
        f"/api/tasks/{blueprint['id']}", json={"priority": 5, "enabled": False}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["task"]["priority"] == 5 and patched.json()["task"]["enabled"] is False
    refused = await bp.client.post(f"/api/tasks/{blueprint['id']}/runs", json={})
    assert refused.status_code == 409 and "disabled" in refused.json()["error"]

    duplicate = await bp.client.post(
        "/api/tasks",
        json={"type": "repo-blueprint", "name": "nightly", "prompt": "x", "repoUrl": str(repo)},
    )
    assert duplicate.status_code == 409

    adhoc = await create_task(bp.client, repo, "exit 0")
    assert (await bp.client.post(f"/api/tasks/{adhoc['id']}/runs", json={})).status_code == 405
    assert (await bp.client.get(f"/api/tasks/{adhoc['id']}/runs")).json() == {"runs": []}
    assert (await bp.client.get(f"/api/tasks/{adhoc['id']}/triggers")).status_code == 405

    async with await other_workspace_client(bp) as other:
        for method in ("get", "delete"):
            response = await getattr(other, method)(f"/api/tasks/{blueprint['id']}")
            assert response.status_code == 404
        assert (await other.get(f"/api/tasks/{blueprint['id']}/runs")).status_code == 404
        assert (await other.get(f"/api/tasks/{blueprint['id']}/triggers")).status_code == 404

    assert (await bp.client.delete(f"/api/tasks/{blueprint['id']}")).status_code == 204
    assert (await bp.client.get(f"/api/tasks/{blueprint['id']}")).status_code == 404
