"""RepoTaskWorkflow's messages at each point of its loop, on the time-skipping server.

Every update is answered and every signal is acted on, whichever step the workflow is
in when it arrives: none may hang a run or be lost over continue-as-new.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    Interceptor,
    StartChildWorkflowInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from schemas.workflow import (
    CommandResult,
    MergeCommand,
    MergePrResult,
    PrepareResult,
    PrEvent,
    RepoTaskInput,
    ResumeCommand,
    RetryCommand,
    RunAgentResult,
    TaskStatus,
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


async def start(client: Client, world: World, queue: str) -> str:
    workflow_id = f"task-{world.task_id}-{uuid.uuid4().hex[:6]}"
    await client.start_workflow(
        "RepoTaskWorkflow", RepoTaskInput(task_id=world.task_id), id=workflow_id, task_queue=queue
    )
    return workflow_id


async def test_auto_merge_without_checks_completes(client: Client) -> None:
    world = World(auto_merge=True, opened_snapshot=OPEN_PASSING)
    async with worker_for(client, world) as queue:
        workflow_id = await start(client, world, queue)
        assert await client.get_workflow_handle(workflow_id).result() == "completed"
    assert world.triggers()[-1] == ("completed", "auto_merged")


async def test_merge_accepted_during_the_last_rounds_reaction_is_carried_out(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last watch round's reaction runs a regular activity (launching a review); a
    merge accepted meanwhile is carried out before continue-as-new, not left waiting."""
    monkeypatch.setattr("workflows.pr_phase.MAX_WATCH_ROUNDS", 1)
    world = World(review_enabled=True)
    world.hold("launch_review")
    async with worker_for(client, world) as queue:
        workflow_id = await start(client, world, queue)
        handle = client.get_workflow_handle(workflow_id)
        await world.wait_for(lambda: world.state == "pr_opened")
        await world.watch_results.put(OPEN_PASSING)  # checks pass: on_ci_pass review
        await world.wait_reached("launch_review")
        update = await handle.start_update(
            "merge_pr",
            MergeCommand(method="merge", user_id="u1"),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            result_type=CommandResult,
        )
        world.release("launch_review")
        result = await asyncio.wait_for(update.result(), 20)
        assert result.accepted and result.state == "completed"
        assert world.triggers()[-1] == ("completed", "pr_merged")
        assert world.events[-1].user_id == "u1"
        assert await asyncio.wait_for(handle.result(), 20) == "completed"


class _PhaseStartsAfterACommand(Interceptor):
    """Holds the start of the PR phase until the task's run holds a command: a person's
    merge that arrives while the child is being started, as one did in CI."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _Inbound


class _Inbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_Outbound(outbound))


class _Outbound(WorkflowOutboundInterceptor):
    async def start_child_workflow(
        self, input: StartChildWorkflowInput
    ) -> workflow.ChildWorkflowHandle[Any, Any]:
        parent = workflow.instance()
        await workflow.wait_condition(lambda: getattr(parent, "_command", None) is not None)
        return await super().start_child_workflow(input)


@pytest.mark.parametrize("command", ["merge_pr", "force_restart"])
async def test_a_command_accepted_while_the_pr_phase_starts_reaches_it(
    client: Client, command: str
) -> None:
    world = World()
    async with worker_for(client, world, [_PhaseStartsAfterACommand()]) as queue:
        workflow_id = await start(client, world, queue)
        handle = client.get_workflow_handle(workflow_id)
        await world.wait_for(lambda: world.state == "pr_opened")
        world.hold("run_agent")  # a restart's agent run keeps running
        arg = MergeCommand(user_id="u1") if command == "merge_pr" else ResumeCommand(user_id="u1")
        result = await asyncio.wait_for(
            handle.execute_update(command, arg, result_type=CommandResult), 20
        )
        assert result.accepted
        if command == "merge_pr":
            assert world.triggers()[-1] == ("completed", "pr_merged")
            assert await asyncio.wait_for(handle.result(), 20) == "completed"
        else:
            await world.wait_for(lambda: ("queued", "force_restart") in world.triggers())
            await handle.cancel()


async def test_merge_accepted_while_the_watch_resumes_the_agent_is_answered(
    client: Client,
) -> None:
    """CI fails and auto-resume sends the task back to the agent while a person's merge
    is accepted: the merge is refused at once (the PR is no longer to be merged), not
    left to fire after the next agent run."""
    world = World(auto_resume=True)
    world.hold("pr_feedback")
    async with worker_for(client, world) as queue:
        workflow_id = await start(client, world, queue)
        handle = client.get_workflow_handle(workflow_id)
        await world.wait_for(lambda: world.state == "pr_opened")
        await world.watch_results.put(OPEN_FAILING)
        await world.wait_reached("pr_feedback")
        update = await handle.start_update(
            "merge_pr",
            MergeCommand(),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            result_type=CommandResult,
        )
        world.hold("run_agent")  # the resumed agent keeps running
        world.release("pr_feedback")
        result = await asyncio.wait_for(update.result(), 20)
        assert not result.accepted
        assert result.message == "Invalid state transition: needs_attention -> completed"
        await world.wait_reached("run_agent")
        assert not world.called("merge_pull_request")
        await handle.cancel()


async def test_a_webhook_during_the_last_round_reaches_the_next_run(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workflows.pr_phase.MAX_WATCH_ROUNDS", 1)
    world = World(review_enabled=True)
    world.hold("launch_review")
    async with worker_for(client, world) as queue:
        workflow_id = await start(client, world, queue)
        handle = client.get_workflow_handle(workflow_id)
        await world.wait_for(lambda: world.state == "pr_opened")
        await world.watch_results.put(OPEN_PASSING)
        await world.wait_reached("launch_review")
        await handle.signal("pr_event", PrEvent(kind="pull_request_review", delivery_id="d1"))
        world.release("launch_review")
        # The next run's first round looks at what the delivery touched.
        await world.wait_for(
            lambda: any(
                [e.delivery_id for e in w.events] == ["d1"]
                for w in world.called("watch_pull_request")
            )
        )
        await handle.cancel()


async def test_a_failed_attempt_backs_off_in_queued_and_a_cancel_stops_it(
    client: Client,
) -> None:
    world = World(max_retries=3, agent_results=[RunAgentResult(success=False, error="boom")])
    async with worker_for(client, world) as queue:
        workflow_id = await start(client, world, queue)
        handle = client.get_workflow_handle(workflow_id)
        # Time runs at its own pace until a result is awaited: the 5 s backoff holds.
        await world.wait_for(lambda: ("queued", "auto_retry") in world.triggers())
        status = await handle.query("status", result_type=TaskStatus)
        assert status.state == "queued" and status.waiting_for == "retry"
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert world.triggers()[-3:] == [
        ("failed", "agent_failure"),
        ("queued", "auto_retry"),
        ("cancelled", "user_cancel"),
    ]


async def test_a_persons_retry_while_failed_is_recorded_as_theirs(client: Client) -> None:
    world = World(max_retries=3, agent_results=[RunAgentResult(success=False, error="boom")])
    world.hold("record_transition:failed")
    async with worker_for(client, world) as queue:
        workflow_id = await start(client, world, queue)
        handle = client.get_workflow_handle(workflow_id)
        await world.wait_reached("record_transition:failed")
        world.hold("prepare_worktree")  # the second attempt waits here
        update = await handle.start_update(
            "retry",
            RetryCommand(user_id="u1"),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            result_type=CommandResult,
        )
        world.release("record_transition:failed")
        assert (await asyncio.wait_for(update.result(), 20)).accepted
        await world.wait_reached("prepare_worktree")
        retried = world.events[-2]
        assert (retried.to_state, retried.trigger, retried.user_id) == (
            "queued",
            "user_retry",
            "u1",
        )
        await handle.cancel()


async def test_a_failed_provisioning_is_not_retried(client: Client) -> None:
    world = World(
        max_retries=3,
        prepare_results=[PrepareResult(ready=False, error="The agent CLI is not installed")],
    )
    async with worker_for(client, world) as queue:
        workflow_id = await start(client, world, queue)
        assert await client.get_workflow_handle(workflow_id).result() == "failed"
    assert world.triggers()[-1] == ("failed", "provisioning_permanent_failure")
    assert len(world.called("prepare_worktree")) == 1


async def test_a_cancel_while_provisioning_stops_the_run_as_cancelled(client: Client) -> None:
    world = World()
    world.hold("prepare_worktree")
    async with worker_for(client, world) as queue:
        workflow_id = await start(client, world, queue)
        handle = client.get_workflow_handle(workflow_id)
        await world.wait_reached("prepare_worktree")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    stops = world.called("stop_agent_run")
    assert [s.state for s in stops] == ["cancelled"]
    assert world.triggers()[-2:] == [("queued", "user_cancel"), ("cancelled", "user_cancel")]


async def test_a_merge_while_the_watch_waits_merges(client: Client) -> None:
    world = World()
    async with worker_for(client, world) as queue:
        workflow_id = await start(client, world, queue)
        handle = client.get_workflow_handle(workflow_id)
        await world.wait_for(lambda: len(world.called("watch_pull_request")) == 1)
        result = await asyncio.wait_for(
            handle.execute_update("merge_pr", MergeCommand(), result_type=CommandResult), 20
        )
        assert result.accepted and result.state == "completed"
        assert await asyncio.wait_for(handle.result(), 20) == "completed"


async def test_a_webhook_while_the_watch_waits_starts_a_round_for_it(client: Client) -> None:
    world = World()
    async with worker_for(client, world) as queue:
        workflow_id = await start(client, world, queue)
        handle = client.get_workflow_handle(workflow_id)
        await world.wait_for(lambda: len(world.called("watch_pull_request")) == 1)
        await handle.signal("pr_event", PrEvent(kind="check_run", delivery_id="d2"))
        await world.wait_for(
            lambda: (
                [[e.delivery_id for e in w.events] for w in world.called("watch_pull_request")][-1:]
                == [["d2"]]
            )
        )
        await handle.cancel()


async def test_a_resume_refused_outside_its_states_leaves_no_command(client: Client) -> None:
    """A refused update leaves nothing pending: the next valid command is taken. While
    the PR phase runs, the task's run cannot know whether the PR still waits (the phase
    may have just recorded needs_attention): the phase answers, against the row."""
    world = World()
    async with worker_for(client, world) as queue:
        workflow_id = await start(client, world, queue)
        handle = client.get_workflow_handle(workflow_id)
        await world.wait_for(lambda: len(world.called("watch_pull_request")) == 1)
        refused = await asyncio.wait_for(
            handle.execute_update("resume", ResumeCommand(prompt="x"), result_type=CommandResult),
            20,
        )
        assert not refused.accepted
        assert refused.message == "Invalid state transition: pr_opened -> queued"
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update("retry", RetryCommand())
        result = await asyncio.wait_for(
            handle.execute_update("merge_pr", MergeCommand(), result_type=CommandResult), 20
        )
        assert result.accepted


async def test_a_manual_merge_that_meets_conflicts_is_answered_and_waits(client: Client) -> None:
    world = World(
        merge_result=MergePrResult(merged=False, conflict=True, message="Merge conflicts in: a")
    )
    async with worker_for(client, world) as queue:
        workflow_id = await start(client, world, queue)
        handle = client.get_workflow_handle(workflow_id)
        await world.wait_for(lambda: len(world.called("watch_pull_request")) == 1)
        result = await asyncio.wait_for(
            handle.execute_update("merge_pr", MergeCommand(), result_type=CommandResult), 20
        )
        assert not result.accepted and result.message == "Merge conflicts in: a"
        # It waits for a person; it did not take the merge for a restart.
        assert world.triggers()[-1] == ("needs_attention", "merge_conflicts")
        await handle.execute_update("resume", ResumeCommand(prompt="fix it"))
        assert world.triggers()[-1] == ("queued", "user_resume")
        await handle.cancel()


async def test_failing_checks_wait_for_a_person_whose_resume_reruns_the_agent(
    client: Client,
) -> None:
    """The PR phase ends in needs_attention; the task's run takes the resume and runs the
    agent again, then follows the same PR in a new phase to its merge."""
    world = World(auto_merge=True)
    async with worker_for(client, world) as queue:
        workflow_id = await start(client, world, queue)
        handle = client.get_workflow_handle(workflow_id)
        await world.wait_for(lambda: world.state == "pr_opened")
        await world.watch_results.put(OPEN_FAILING)
        await world.wait_for(lambda: world.state == "needs_attention")
        result = await asyncio.wait_for(
            handle.execute_update(
                "resume", ResumeCommand(prompt="fix it", user_id="u1"), result_type=CommandResult
            ),
            20,
        )
        assert result.accepted
        await world.wait_for(lambda: len(world.called("run_agent")) == 2)
        await world.wait_for(lambda: world.state == "pr_opened")
        await world.watch_results.put(OPEN_PASSING)
        assert await asyncio.wait_for(handle.result(), 20) == "completed"
    assert ("queued", "user_resume") in world.triggers()
    assert world.triggers()[-1] == ("completed", "auto_merged")
