"""Budgets: a run passing its task's budget is stopped and fails for good; a workspace
over its monthly budget refuses new runs with 409 and says so once."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.worker import Replayer

from tests.conftest import Optio
from tests.lifecycle_helpers import create_task, triggers, wait_for_state
from tests.notify.receiver import Receiver
from tests.workflows.test_record_histories import save
from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS


def usage(cost: str) -> str:
    line = {"costUsd": cost, "inputTokens": 10, "outputTokens": 1, "model": "m"}
    return f"echo 'optio-usage {json.dumps(line)}'"


# Reports a running cost under the budget, then over it, then would work on for a minute.
OVERSPENDER = f"{usage('0.05')}\nsleep 0.3\n{usage('0.20')}\nsleep 60\necho never"


async def test_a_run_is_stopped_at_its_budget_and_not_retried(optio: Optio, make_repo: Any) -> None:
    repo: Path = make_repo()
    task = await create_task(optio.client, repo, OVERSPENDER, maxRetries=2, maxCostUsd="0.10")
    assert task["maxCostUsd"] == "0.10"
    started = time.monotonic()
    done = await wait_for_state(optio.client, task["id"], "failed", timeout=45)
    assert time.monotonic() - started < 40  # stopped, not waited out
    got = done["task"]
    assert got["errorMessage"] == "Budget exceeded: spent $0.20 of a $0.10 budget"
    assert got["costUsd"] == "0.20" and got["retryCount"] == 0
    steps = await triggers(optio.client, task["id"])
    assert ("failed", "budget_exceeded") in steps
    await asyncio.sleep(1.5)  # no automatic retry follows
    assert [s for s in await triggers(optio.client, task["id"]) if s[1] == "auto_retry"] == []
    logs = (await optio.client.get(f"/api/tasks/{task['id']}/logs")).json()["logs"]
    assert "never" not in [entry["content"] for entry in logs]
    # The stop (signal, cancel, stop_agent_run) replays deterministically.
    history = await optio.temporal.get_workflow_handle(f"task-{task['id']}").fetch_history()
    await Replayer(workflows=WORKFLOWS, workflow_runner=WORKFLOW_RUNNER).replay_workflow(history)


@pytest.mark.skipif(
    os.environ.get("OPTIO_RECORD_HISTORIES") != "1", reason="records histories on request"
)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_record_budget_history(optio: Optio, make_repo: Any) -> None:
    """Stores the history of a run stopped at its budget for tests/workflows/test_replay.py."""
    task = await create_task(optio.client, make_repo(), OVERSPENDER, maxCostUsd="0.10")
    await wait_for_state(optio.client, task["id"], "failed", timeout=45)
    await save(optio, f"task-{task['id']}", "budget_exceeded")


async def test_a_workspace_over_its_monthly_budget_refuses_new_runs(
    optio: Optio, make_repo: Any, receiver: Receiver
) -> None:
    hook = await optio.client.post(
        "/api/webhooks", json={"url": receiver.url, "events": ["workspace.budget_exceeded"]}
    )
    assert hook.status_code == 201, hook.text
    slack = await optio.client.post(
        "/api/secrets", json={"name": "SLACK_WEBHOOK_URL", "value": f"{receiver.url}/slack"}
    )
    assert slack.status_code == 201, slack.text
    repo: Path = make_repo()
    first = await create_task(optio.client, repo, f"{usage('0.30')}\nexit 1", maxRetries=0)
    await wait_for_state(optio.client, first["id"], "failed")
    patched = await optio.client.patch(
        f"/api/workspaces/{optio.workspace_id}", json={"monthlyBudgetUsd": "0.25"}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["workspace"]["monthlyBudgetUsd"] == "0.25"

    body = {"title": "t", "prompt": "true", "repoUrl": str(repo), "agentType": "script"}
    for _ in range(2):
        refused = await optio.client.post("/api/tasks", json=body)
        assert refused.status_code == 409, refused.text
        assert "monthly budget is spent: $0.30 of $0.25" in refused.json()["error"]
    retry = await optio.client.post(f"/api/tasks/{first['id']}/retry")
    assert retry.status_code == 409
    # The first task's failure went to Slack too; then the budget, to both.
    await receiver.wait_for(3)
    hooks = [json.loads(r.body) for r in receiver.requests if r.path == "/hook"]
    slacks = [json.loads(r.body) for r in receiver.requests if r.path == "/hook/slack"]
    (payload,) = hooks
    assert payload["event"] == "workspace.budget_exceeded"
    assert payload["data"]["spentUsd"] == "0.30"
    assert any("Monthly budget reached" in m["text"] for m in slacks)
    await asyncio.sleep(1.0)
    assert len(receiver.requests) == 3  # told once, not at every refusal

    raised = await optio.client.patch(
        f"/api/workspaces/{optio.workspace_id}", json={"monthlyBudgetUsd": "5"}
    )
    assert raised.status_code == 200
    assert (await optio.client.post("/api/tasks", json=body)).status_code == 201


async def test_a_repo_budget_holds_for_each_task_and_blueprints_pass_theirs_on(
    optio: Optio, make_repo: Any
) -> None:
    repo: Path = make_repo()
    connected = await optio.client.post(
        "/api/repos", json={"repoUrl": str(repo), "maxCostUsd": 0.1}
    )
    assert connected.status_code == 201, connected.text
    assert connected.json()["repo"]["maxCostUsd"] == "0.1"
    task = await create_task(optio.client, repo, OVERSPENDER, maxRetries=1)
    assert task["maxCostUsd"] is None  # the repo's budget applies
    done = await wait_for_state(optio.client, task["id"], "failed", timeout=45)
    assert done["task"]["errorMessage"] == "Budget exceeded: spent $0.20 of a $0.1 budget"

    bad = await optio.client.post(
        "/api/repos", json={"repoUrl": str(make_repo()), "maxCostUsd": "-1"}
    )
    assert bad.status_code in (400, 422)
    blueprint = await optio.client.post(
        "/api/tasks",
        json={
            "type": "repo-blueprint",
            "name": "nightly",
            "prompt": "true",
            "repoUrl": str(repo),
            "maxCostUsd": "0.5",
        },
    )
    assert blueprint.status_code == 201, blueprint.text
    assert blueprint.json()["task"]["maxCostUsd"] == "0.5"
    run = await optio.client.post(f"/api/tasks/{blueprint.json()['task']['id']}/runs", json={})
    assert run.status_code == 202, run.text
    assert run.json()["task"]["maxCostUsd"] == "0.5"
