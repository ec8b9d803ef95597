"""ReviewWorkflow as a workflow, on the time-skipping server (activities replaced by name)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from schemas.workflow import ReviewInput, RunAgentResult
from tests.workflows.harness import World, keep_history, time_skipping_client, worker_for


@pytest.fixture
async def client(time_skipping_env: WorkflowEnvironment) -> Client:
    return await time_skipping_client(time_skipping_env)


async def test_a_review_posts_its_verdict_and_tells_the_parent(client: Client) -> None:
    world = World(task_type="review")
    async with worker_for(client, world) as queue:
        workflow_id = f"review-{world.task_id}"
        result = await client.execute_workflow(
            "ReviewWorkflow",
            ReviewInput(task_id=world.task_id, parent_task_id="parent"),
            id=workflow_id,
            task_queue=queue,
        )
        await keep_history(client, workflow_id, "posted")
    assert result == "completed"
    assert world.triggers() == [
        ("provisioning", "worker_pickup"),
        ("running", "worktree_created"),
        ("completed", "review_posted"),
    ]
    assert [f.state for f in world.called("notify_task_finished")] == ["completed"]
    assert len(world.called("release_worktree")) == 1


async def test_a_failed_review_agent_fails_the_review(client: Client) -> None:
    world = World(task_type="review", agent_results=[RunAgentResult(success=False, error="401")])
    async with worker_for(client, world) as queue:
        result = await client.execute_workflow(
            "ReviewWorkflow",
            ReviewInput(task_id=world.task_id, parent_task_id="parent"),
            id=f"review-{world.task_id}",
            task_queue=queue,
        )
    assert result == "failed" and world.triggers()[-1] == ("failed", "agent_failure")
    assert world.called("post_verdict") == []


async def test_a_cancelled_review_records_cancelled_not_a_failure(client: Client) -> None:
    world = World(task_type="review")
    world.hold("run_agent")
    async with worker_for(client, world) as queue:
        workflow_id = f"review-{world.task_id}-{uuid.uuid4().hex[:6]}"
        handle = await client.start_workflow(
            "ReviewWorkflow",
            ReviewInput(task_id=world.task_id, parent_task_id="parent"),
            id=workflow_id,
            task_queue=queue,
        )
        await world.wait_reached("run_agent")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), 20)
        await keep_history(client, workflow_id, "cancelled")
    assert world.triggers()[-1] == ("cancelled", "user_cancel")
    assert [s.state for s in world.called("stop_agent_run")] == ["cancelled"]
    assert [f.state for f in world.called("notify_task_finished")] == ["cancelled"]
