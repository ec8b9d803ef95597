"""The smaller workflow kinds as workflows, on the time-skipping server: their activities
replaced by name, so retries with backoff and rechecks take no wall time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.blueprint_runs import (
    AwaitTaskInput,
    AwaitTaskResult,
    BlueprintRunInput,
    FinishStandaloneInput,
    InstantiateInput,
    InstantiateResult,
    OpenStandaloneInput,
    StandaloneAttemptInput,
    StandaloneAttemptResult,
    StandalonePlan,
    StandaloneRunInput,
)
from schemas.notify import DeliveryInput, DeliveryResult
from schemas.tickets import TicketDoneInput, TicketSyncInput, TicketSyncResult
from schemas.workflow import (
    AcquireSlotInput,
    PipelineInput,
    PipelineStep,
    PipelineSteps,
    StartTaskInput,
)
from tests.conftest import BIN
from tests.workflows.harness import grant_slot, keep_history, time_skipping_client
from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS


@pytest.fixture(scope="module")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A test server of this module's own: a workflow another module left open (a cancel
    no worker is left to carry out) keeps the shared one from skipping time."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server")
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def client(time_skipping_env: WorkflowEnvironment) -> Client:
    return await time_skipping_client(time_skipping_env)


@asynccontextmanager
async def worker(client: Client, *activities: Callable[..., Any]) -> AsyncIterator[str]:
    queue = f"kinds-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=list(activities),
        workflow_runner=WORKFLOW_RUNNER,
    ):
        yield queue


def delivery(max_attempts: int = 10) -> DeliveryInput:
    return DeliveryInput(
        delivery_id=str(uuid.uuid4()),
        workspace_id="w",
        target="webhook",
        event="task.completed",
        timestamp="2026-01-01T00:00:00Z",
        max_attempts=max_attempts,
        initial_interval_seconds=60,
    )


async def test_a_delivery_is_retried_with_backoff_until_it_lands(client: Client) -> None:
    attempts: list[int] = []

    @activity.defn(name="deliver_notification")
    async def deliver(input: DeliveryInput) -> DeliveryResult:
        attempts.append(activity.info().attempt)
        if len(attempts) < 3:
            raise ApplicationError("503 from the receiver")
        return DeliveryResult(delivered=True, status_code=200)

    async with worker(client, deliver) as queue:
        workflow_id = f"delivery-{uuid.uuid4()}"
        result = await client.execute_workflow(
            "DeliveryWorkflow",
            delivery(),
            id=workflow_id,
            task_queue=queue,
            result_type=DeliveryResult,
        )
        await keep_history(client, workflow_id, "retried")
    # Two backoffs (60 s, then 120 s) skipped by the test server: no wall time spent.
    assert result.delivered and attempts == [1, 2, 3]


async def test_a_refused_delivery_is_not_retried_and_is_the_result(client: Client) -> None:
    attempts: list[int] = []

    @activity.defn(name="deliver_notification")
    async def deliver(input: DeliveryInput) -> DeliveryResult:
        attempts.append(activity.info().attempt)
        raise ApplicationError("the webhook was deleted", type="DeliveryRefused")

    async with worker(client, deliver) as queue:
        result = await client.execute_workflow(
            "DeliveryWorkflow",
            delivery(),
            id=f"delivery-{uuid.uuid4()}",
            task_queue=queue,
            result_type=DeliveryResult,
        )
    assert not result.delivered and "deleted" in (result.error or "")
    assert attempts == [1]


async def test_a_ticket_sync_returns_what_the_activity_found(client: Client) -> None:
    @activity.defn(name="sync_ticket_provider")
    async def sync(input: TicketSyncInput) -> TicketSyncResult:
        return TicketSyncResult(provider_id=input.provider_id, fetched=4, already_linked=4)

    async with worker(client, sync) as queue:
        workflow_id = f"ticket-sync-p1-{uuid.uuid4()}"
        result = await client.execute_workflow(
            "TicketSyncWorkflow",
            TicketSyncInput(provider_id="p1"),
            id=workflow_id,
            task_queue=queue,
            result_type=TicketSyncResult,
        )
        await keep_history(client, workflow_id, "synced")
    assert result.fetched == 4 and result.provider_id == "p1"


async def test_a_ticket_write_back_keeps_trying_through_an_outage(client: Client) -> None:
    attempts: list[int] = []

    @activity.defn(name="finish_ticket")
    async def finish(input: TicketDoneInput) -> None:
        attempts.append(activity.info().attempt)
        if len(attempts) < 6:
            raise ApplicationError("provider down")

    async with worker(client, finish) as queue:
        workflow_id = f"ticket-done-{uuid.uuid4()}"
        await client.execute_workflow(
            "TicketDoneWorkflow", TicketDoneInput(task_id="t1"), id=workflow_id, task_queue=queue
        )
        await keep_history(client, workflow_id, "outage")
    assert attempts == [1, 2, 3, 4, 5, 6]  # 10 s doubling: over 5 minutes, skipped


async def test_a_blueprint_run_stays_open_while_its_task_is_live(client: Client) -> None:
    settled: list[str] = []

    @activity.defn(name="instantiate_blueprint")
    async def instantiate(input: InstantiateInput) -> InstantiateResult:
        return InstantiateResult(task_id=input.task_id, created=True)

    @activity.defn(name="await_task_settled")
    async def await_settled(input: AwaitTaskInput) -> AwaitTaskResult:
        settled.append(input.task_id)
        return AwaitTaskResult(state="completed")

    async with worker(client, instantiate, await_settled) as queue:
        workflow_id = f"blueprint-c1-{uuid.uuid4()}"
        result = await client.execute_workflow(
            "BlueprintRunWorkflow",
            BlueprintRunInput(config_id="c1", task_id="t1"),
            id=workflow_id,
            task_queue=queue,
            result_type=InstantiateResult,
        )
        await keep_history(client, workflow_id, "created")
    assert result.created and settled == ["t1"]


async def test_a_skipped_blueprint_run_does_not_wait(client: Client) -> None:
    @activity.defn(name="instantiate_blueprint")
    async def instantiate(input: InstantiateInput) -> InstantiateResult:
        return InstantiateResult(task_id=input.task_id, created=False, skipped="paused")

    @activity.defn(name="await_task_settled")
    async def await_settled(input: AwaitTaskInput) -> AwaitTaskResult:
        raise AssertionError("a skipped run has no task to wait for")

    async with worker(client, instantiate, await_settled) as queue:
        result = await client.execute_workflow(
            "BlueprintRunWorkflow",
            BlueprintRunInput(config_id="c1"),
            id=f"blueprint-c1-{uuid.uuid4()}",
            task_queue=queue,
            result_type=InstantiateResult,
        )
    assert result.skipped == "paused" and result.task_id  # a deterministic id of its own


async def test_a_pipeline_starts_its_steps_one_after_another(client: Client) -> None:
    """Each step starts when the previous completed; a step's end reaches the pipeline
    as `steps_changed` (and the ten-minute recheck, skipped here, is only a net)."""
    states = {"s1": "pending", "s2": "pending"}
    started: list[str] = []

    @activity.defn(name="load_steps")
    async def load_steps(input: PipelineInput) -> PipelineSteps:
        return PipelineSteps(
            steps=[
                PipelineStep(task_id=t, state=s, started=t in started) for t, s in states.items()
            ]
        )

    @activity.defn(name="start_task")
    async def start_task(input: StartTaskInput) -> None:
        started.append(input.task_id)

    async with worker(client, load_steps, start_task) as queue:
        handle = await client.start_workflow(
            "PipelineWorkflow",
            PipelineInput(parent_task_id="p1"),
            id=f"pipeline-{uuid.uuid4()}",
            task_queue=queue,
        )
        async with asyncio.timeout(20):
            while started != ["s1"]:
                await asyncio.sleep(0.02)
        states["s1"] = "completed"
        await handle.signal("steps_changed")
        async with asyncio.timeout(20):
            while started != ["s1", "s2"]:
                await asyncio.sleep(0.02)
        states["s2"] = "completed"
        await handle.signal("steps_changed")
        assert await asyncio.wait_for(handle.result(), 20) == "all_steps_complete"


@activity.defn(name="acquire_slot")
async def acquire_slot(input: AcquireSlotInput) -> None:
    """The limiter, granting every request at once."""
    await grant_slot(input)


async def test_a_standalone_run_retries_with_backoff_then_completes(client: Client) -> None:
    states: list[str] = []
    attempts: list[int] = []

    @activity.defn(name="open_run")
    async def open_run(input: OpenStandaloneInput) -> StandalonePlan:
        return StandalonePlan(run_id=input.run_id, max_concurrent=1, max_retries=2)

    @activity.defn(name="run_attempt")
    async def run_attempt(input: StandaloneAttemptInput) -> StandaloneAttemptResult:
        attempts.append(input.attempt)
        if input.attempt == 0:
            return StandaloneAttemptResult(success=False, error="agent exited 1")
        return StandaloneAttemptResult(success=True, summary="done")

    @activity.defn(name="record_run_state")
    async def record_run_state(input: FinishStandaloneInput) -> None:
        states.append(input.state)

    async with worker(client, open_run, acquire_slot, run_attempt, record_run_state) as queue:
        workflow_id = f"run-{uuid.uuid4()}"
        result = await client.execute_workflow(
            "StandaloneRunWorkflow",
            StandaloneRunInput(standalone_id="s1"),
            id=workflow_id,
            task_queue=queue,
        )
        await keep_history(client, workflow_id, "retried")
    assert result == "completed" and attempts == [0, 1]
    # The backoff between them (5 s) is a timer the test server skipped.
    assert states == ["running", "failed", "queued", "running", "completed"]


async def test_a_standalone_run_whose_task_is_deleted_mid_attempt_ends_cancelled(
    client: Client,
) -> None:
    """Deleting the task requests the run's cancel, then deletes the rows: an attempt that
    reads its row between the two (it does not heartbeat yet) finds it gone."""
    states: list[str] = []
    attempt_started, cancel_requested = asyncio.Event(), asyncio.Event()

    @activity.defn(name="open_run")
    async def open_run(input: OpenStandaloneInput) -> StandalonePlan:
        return StandalonePlan(run_id=input.run_id, max_concurrent=1, max_retries=2)

    @activity.defn(name="run_attempt")
    async def run_attempt(input: StandaloneAttemptInput) -> StandaloneAttemptResult:
        attempt_started.set()
        await cancel_requested.wait()
        raise ApplicationError("The run was deleted", type="StandaloneMissing", non_retryable=True)

    @activity.defn(name="record_run_state")
    async def record_run_state(input: FinishStandaloneInput) -> None:
        states.append(input.state)

    async with worker(client, open_run, acquire_slot, run_attempt, record_run_state) as queue:
        handle = await client.start_workflow(
            "StandaloneRunWorkflow",
            StandaloneRunInput(standalone_id="s1"),
            id=f"run-{uuid.uuid4()}",
            task_queue=queue,
        )
        await asyncio.wait_for(attempt_started.wait(), 20)
        await handle.cancel()

        async def activity_cancel_requested() -> bool:
            history = await handle.fetch_history()
            return any(
                e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED
                for e in history.events
            )

        async with asyncio.timeout(20):
            while not await activity_cancel_requested():
                await asyncio.sleep(0.05)
        cancel_requested.set()
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(handle.result(), 20)
    assert isinstance(failure.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    # No retry of a deleted run, and no row to write for it.
    assert states == ["running"]
