"""The small workflow kinds as workflows, on the time-skipping server: their activities
replaced by name, so retries with backoff and rechecks take no wall time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.blueprint_runs import (
    AwaitTaskInput,
    AwaitTaskResult,
    BlueprintRunInput,
    InstantiateInput,
    InstantiateResult,
)
from schemas.notify import DeliveryInput, DeliveryResult
from schemas.tickets import TicketDoneInput, TicketSyncInput, TicketSyncResult
from schemas.workflow import PipelineInput, PipelineStep, PipelineSteps, StartTaskInput
from tests.workflows.harness import keep_history, time_skipping_client
from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS


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
