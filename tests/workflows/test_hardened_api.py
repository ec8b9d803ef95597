"""Faults of the core loop seen through the API, on the real dev server, worker and git."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from store.db import create_engine, session_factory
from store.models import AgentRun
from tests.conftest import Optio
from tests.lifecycle_helpers import create_task, triggers, wait_for_logs, wait_for_state

MakeRepo = Callable[..., Path]


async def run_states(optio: Optio, task_id: str) -> list[str]:
    engine = create_engine(optio.settings.database_url_resolved)
    try:
        async with session_factory(engine)() as session:
            rows = await session.execute(select(AgentRun.state).where(AgentRun.task_id == task_id))
            return [state for (state,) in rows]
    finally:
        await engine.dispose()


async def closed(handle: WorkflowHandle[Any, Any]) -> WorkflowExecutionStatus | None:
    async with asyncio.timeout(30):
        while (status := (await handle.describe()).status) == WorkflowExecutionStatus.RUNNING:
            await asyncio.sleep(0.1)
    return status


async def test_a_review_subtask_runs_as_a_review_and_is_cancelled_as_one(
    optio: Optio, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    response = await optio.client.post(
        "/api/repos", json={"repoUrl": str(repo), "reviewPromptTemplate": "sleep 60"}
    )
    assert response.status_code == 201, response.text
    parent = await create_task(optio.client, repo, "echo change > feature.txt")
    await wait_for_state(optio.client, parent["id"], "pr_opened")

    # bulk/cancel-active takes running and queued tasks (the reference), not a PR's wait.
    bulk = await optio.client.post("/api/tasks/bulk/cancel-active")
    assert bulk.json() == {"cancelled": 0, "total": 0}
    await wait_for_state(optio.client, parent["id"], "pr_opened")

    created = await optio.client.post(
        f"/api/tasks/{parent['id']}/subtasks",
        json={"title": "Review it", "prompt": "review", "taskType": "review", "blocksParent": True},
    )
    assert created.status_code == 201, created.text
    review = created.json()["subtask"]
    assert review["taskType"] == "review"
    await wait_for_state(optio.client, review["id"], "running")
    handle = optio.temporal.get_workflow_handle(f"review-{review['id']}")
    assert (await handle.describe()).workflow_type == "ReviewWorkflow"

    cancelled = await optio.client.post(f"/api/tasks/{review['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["task"]["state"] == "cancelled"
    assert (await triggers(optio.client, review["id"]))[-1] == ("cancelled", "user_cancel")
    assert await closed(handle) == WorkflowExecutionStatus.CANCELED
    assert await run_states(optio, review["id"]) == ["cancelled"]


async def test_a_cancel_while_running_records_the_run_cancelled(
    optio: Optio, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    task = await create_task(optio.client, repo, "echo started\nsleep 60")
    await wait_for_state(optio.client, task["id"], "running")
    cancelled = await optio.client.post(f"/api/tasks/{task['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    handle = optio.temporal.get_workflow_handle(f"task-{task['id']}")
    assert await closed(handle) == WorkflowExecutionStatus.CANCELED
    assert await run_states(optio, task["id"]) == ["cancelled"]


async def test_a_running_task_says_how_long_its_agent_is_silent(
    optio: Optio, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    task = await create_task(optio.client, repo, "echo started\nsleep 60")
    await wait_for_state(optio.client, task["id"], "running")
    await wait_for_logs(optio.client, task["id"], ["started"])
    body = (await optio.client.get(f"/api/tasks/{task['id']}")).json()
    info = body["stallInfo"]
    assert info["isStalled"] is False
    assert info["thresholdMs"] == optio.settings.stall_threshold_ms
    assert 0 <= info["silentForMs"] < info["thresholdMs"]
    assert info["lastLogSummary"] == "started"
    assert body["pipelineProgress"] is None


async def test_a_pipeline_parent_shows_its_steps(optio: Optio, make_repo: MakeRepo) -> None:
    repo = make_repo()
    parent = await create_task(optio.client, repo, "echo change > feature.txt")
    await wait_for_state(optio.client, parent["id"], "pr_opened")
    for title in ("one", "two"):
        created = await optio.client.post(
            f"/api/tasks/{parent['id']}/subtasks",
            json={"title": title, "prompt": "sleep 60", "taskType": "step"},
        )
        assert created.status_code == 201, created.text
    body = (await optio.client.get(f"/api/tasks/{parent['id']}")).json()
    progress = body["pipelineProgress"]
    assert {k: v for k, v in progress.items() if k != "steps"} == {
        "totalSteps": 2,
        "completedSteps": 0,
        "failedSteps": 0,
        "runningSteps": progress["runningSteps"],
        "currentStepIndex": 0,
        "currentStepTitle": "one",
    }
    assert [(s["title"], s["subtaskOrder"]) for s in progress["steps"]] == [("one", 0), ("two", 1)]
    assert body["stallInfo"] is None


async def test_a_missing_agent_cli_fails_once_and_names_the_install_step(
    optio: Optio, make_repo: MakeRepo, tmp_path: Path
) -> None:
    if shutil.which("claude") is not None:
        pytest.skip("a claude CLI is on PATH here")
    optio.settings.agents_bin_dir = tmp_path / "no-agents"
    repo = make_repo()
    task = await create_task(
        optio.client, repo, "Add a README", agentType="claude-code", maxRetries=3
    )
    failed = (await wait_for_state(optio.client, task["id"], "failed"))["task"]
    assert "make agents" in failed["errorMessage"]
    handle = optio.temporal.get_workflow_handle(f"task-{task['id']}")
    await asyncio.wait_for(handle.result(), 30)
    steps = await triggers(optio.client, task["id"])
    assert steps[-1] == ("failed", "provisioning_permanent_failure")
    assert steps.count(("provisioning", "worker_pickup")) == 1
