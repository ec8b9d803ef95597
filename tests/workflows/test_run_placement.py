"""A run's worktree activities go to the worker that holds it, and a run whose worker is
gone fails over to another one (workflows/run_placement.py), on the time-skipping server."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.workflow import RepoTaskInput, RunPlacement
from tests.workflows.harness import OPEN_PASSING, World, time_skipping_client, worker_for


@pytest.fixture
async def client(time_skipping_env: WorkflowEnvironment) -> Client:
    return await time_skipping_client(time_skipping_env)


async def run_task(client: Client, world: World, queue: str) -> str:
    handle = await client.start_workflow(
        "RepoTaskWorkflow",
        RepoTaskInput(task_id=world.task_id),
        id=f"task-{world.task_id}",
        task_queue=queue,
    )
    return await handle.result()


async def test_worktree_activities_run_on_the_placed_worker(client: Client) -> None:
    host_queue = f"optio@host-{uuid.uuid4().hex[:6]}"
    world = World(auto_merge=True, opened_snapshot=OPEN_PASSING)
    world.placements = [RunPlacement(task_queue=host_queue, failover_seconds=60)]
    host = World()  # what the placed worker ran
    async with worker_for(client, world) as queue:
        async with Worker(client, task_queue=host_queue, activities=host.activities()):
            assert await run_task(client, world, queue) == "completed"
    assert [name for name, _ in host.calls] == ["prepare_worktree", "run_agent"]
    assert world.called("prepare_worktree") == [] and world.called("run_agent") == []
    assert world.called("record_lost_run") == []


async def test_a_run_whose_worker_is_gone_fails_over_without_using_a_retry(
    client: Client,
) -> None:
    world = World(auto_merge=True, opened_snapshot=OPEN_PASSING, max_retries=0)
    # Nobody polls the first worker's queue: it is gone. The next run lands anywhere.
    # (The test server times a schedule-to-start out in real time: keep it short.)
    gone = RunPlacement(task_queue="optio@gone-worker", failover_seconds=2)
    world.placements = [gone, RunPlacement()]
    async with worker_for(client, world) as queue:
        assert await run_task(client, world, queue) == "completed"
    lost = world.called("record_lost_run")
    assert len(lost) == 1 and lost[0].state == "lost"
    assert "gone-worker" in lost[0].message and "more than 2 s" in lost[0].message
    assert ("failed", "worker_lost") in world.triggers()
    assert len(world.called("prepare_worktree")) == 1  # only the second run's
    first_run, second_run = (p.run_id for p in world.called("place_run"))
    assert lost[0].run_id == first_run != second_run


async def test_stopping_a_run_whose_worker_is_gone_still_settles_its_row(
    client: Client,
) -> None:
    """A cancel while the run's worker is unreachable: the stop cannot reach it, so the
    row is settled from any worker instead of the cancel hanging."""
    host_queue = f"optio@host-{uuid.uuid4().hex[:6]}"
    world = World()
    world.placements = [RunPlacement(task_queue=host_queue, failover_seconds=2)]
    host = World()
    host.hold("run_agent")
    async with worker_for(client, world) as queue:
        handle = await client.start_workflow(
            "RepoTaskWorkflow",
            RepoTaskInput(task_id=world.task_id),
            id=f"task-{world.task_id}",
            task_queue=queue,
        )
        async with Worker(client, task_queue=host_queue, activities=host.activities()):
            await host.wait_reached("run_agent")
        # The placed worker stopped: the cancel's stop waits there until failover.
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()  # lets the test server skip to the failover
    assert world.state == "cancelled"
    lost = world.called("record_lost_run")
    assert [entry.state for entry in lost] == ["cancelled"]
