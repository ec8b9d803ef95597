"""PrPhaseWorkflow on its own, on the time-skipping server (activities replaced by name):
its outcomes, its continue-as-new, and the commands its parent passes on."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from core.names import Signals
from schemas.workflow import (
    CarriedState,
    PrCommand,
    PrEvent,
    PrPhaseInput,
    PrPhaseOutcome,
    PrSnapshotData,
)
from tests.workflows.harness import (
    OPEN_FAILING,
    OPEN_PASSING,
    World,
    time_skipping_client,
    worker_for,
)


@pytest.fixture
async def client(time_skipping_env: WorkflowEnvironment) -> Client:
    return await time_skipping_client(time_skipping_env)


async def start_phase(
    client: Client, world: World, queue: str, *, known: PrSnapshotData | None = None
) -> WorkflowHandle[object, PrPhaseOutcome]:
    world.state = "pr_opened"
    return await client.start_workflow(
        "PrPhaseWorkflow",
        PrPhaseInput(
            task_id=world.task_id,
            carried=CarriedState(state="pr_opened", seq=world.seq, attempt=1),
            known=known,
        ),
        id=f"task-{world.task_id}-{uuid.uuid4().hex[:6]}-pr",
        task_queue=queue,
        result_type=PrPhaseOutcome,
    )


async def test_a_pr_final_at_opening_is_merged_without_a_round(client: Client) -> None:
    world = World(auto_merge=True)
    async with worker_for(client, world) as queue:
        handle = await start_phase(client, world, queue, known=OPEN_PASSING)
        outcome = await asyncio.wait_for(handle.result(), 20)
    assert outcome.end == "done" and outcome.carried.state == "completed"
    assert world.triggers() == [("completed", "auto_merged")]
    assert world.called("watch_pull_request") == []
    # The carried state names the row's sequence: the task's run records after it.
    assert outcome.carried.seq == world.seq


async def test_failing_checks_with_auto_resume_end_in_a_rerun_with_the_feedback(
    client: Client,
) -> None:
    world = World(auto_resume=True)
    async with worker_for(client, world) as queue:
        handle = await start_phase(client, world, queue)
        await world.watch_results.put(OPEN_FAILING)
        outcome = await asyncio.wait_for(handle.result(), 20)
    assert outcome.end == "rerun" and outcome.carried.state == "queued"
    assert outcome.resume_prompt and outcome.carried.auto_resumes == 1
    assert [t for _, t in world.triggers()][-2:] == ["ci_failing", "auto_resume_ci-fix"]


async def test_a_closed_pr_fails_the_task(client: Client) -> None:
    world = World()
    async with worker_for(client, world) as queue:
        handle = await start_phase(client, world, queue)
        await world.watch_results.put(PrSnapshotData("closed", None, "none", "none", "sha1"))
        outcome = await asyncio.wait_for(handle.result(), 20)
    assert outcome.end == "done" and outcome.carried.state == "failed"


async def test_it_continues_as_new_with_its_memory_and_a_pending_command(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After MAX_WATCH_ROUNDS rounds the phase continues as new: what it remembered of
    the PR and a webhook that came meanwhile reach the next run, which merges on the
    command its parent passed on."""
    monkeypatch.setattr("workflows.pr_phase.MAX_WATCH_ROUNDS", 1)
    world = World(review_enabled=True)
    async with worker_for(client, world) as queue:
        handle = await start_phase(client, world, queue)
        first_run = (await handle.describe()).run_id
        world.hold("launch_review")  # checks pass: the on_ci_pass review starts
        await world.watch_results.put(OPEN_PASSING)
        await world.wait_reached("launch_review")
        await handle.signal(Signals.PR_EVENT, PrEvent(kind="check_run", delivery_id="d1"))
        world.release("launch_review")
        await world.wait_for(lambda: len(world.called("watch_pull_request")) == 2)
        assert (await handle.describe()).run_id != first_run
        # The next run's first round fetches what the webhook touched.
        assert [e.delivery_id for e in world.called("watch_pull_request")[1].events] == ["d1"]
        await handle.signal(
            Signals.PR_COMMAND, PrCommand(command_id="c1", kind="merge", user_id="u1")
        )
        outcome = await asyncio.wait_for(handle.result(), 20)
    assert outcome.end == "done" and outcome.command_id == "c1"
    assert outcome.command_result is not None and outcome.command_result.accepted
    # What the first run learnt of the PR: checks seen passing, the review launched once.
    assert outcome.carried.previous_checks_status == "passing"
    assert outcome.carried.review_launched and len(world.called("launch_review")) == 1
    assert world.triggers()[-1] == ("completed", "pr_merged")
    assert world.events[-1].user_id == "u1"


async def test_a_restart_is_handed_back_and_a_resume_in_pr_opened_is_refused(
    client: Client,
) -> None:
    world = World()
    async with worker_for(client, world) as queue:
        handle = await start_phase(client, world, queue)
        await world.wait_for(lambda: len(world.called("watch_pull_request")) == 1)
        await handle.signal(Signals.PR_COMMAND, PrCommand(command_id="r1", kind="resume"))
        outcome = await asyncio.wait_for(handle.result(), 20)
        assert outcome.end == "answered" and outcome.command_id == "r1"
        assert outcome.command_result is not None and not outcome.command_result.accepted

        handle = await start_phase(client, world, queue)
        await handle.signal(Signals.PR_COMMAND, PrCommand(command_id="f1", kind="force_restart"))
        outcome = await asyncio.wait_for(handle.result(), 20)
        # Not answered: the task's run records the restart and starts the agent.
        assert outcome.end == "command" and outcome.command_result is None
        assert outcome.carried.state == "pr_opened"
