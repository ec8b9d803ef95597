"""SlotLimiterWorkflow as a workflow, on the time-skipping server: grants in priority
order, a release hands the slot on, and a holder that closed without releasing is swept
after the sweep interval (a minute the test server skips)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.limiter import find_closed_workflows
from core.names import Signals
from schemas.workflow import LimiterState, LimiterStatus, SlotGranted, SlotRelease, SlotRequest
from tests.conftest import BIN
from tests.workflows.harness import time_skipping_client
from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS


@workflow.defn(name="LimiterClientForTests")
class Requester:
    """Stands for a task's workflow: it only takes grants."""

    def __init__(self) -> None:
        self._granted: list[str] = []

    @workflow.signal(name=Signals.SLOT_GRANTED)
    def slot_granted(self, grant: SlotGranted) -> None:
        self._granted.append(grant.request_id)

    @workflow.query
    def granted(self) -> list[str]:
        return self._granted

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


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


async def granted(handle: WorkflowHandle[Any, Any]) -> list[str]:
    result: list[str] = await handle.query("granted", result_type=list[str])
    return result


async def wait_granted(handle: WorkflowHandle[Any, Any], request_id: str) -> None:
    async with asyncio.timeout(20):
        while request_id not in await granted(handle):
            await asyncio.sleep(0.05)


async def test_grants_follow_priority_releases_and_the_sweep(
    client: Client, time_skipping_env: WorkflowEnvironment
) -> None:
    queue = f"limiter-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[*WORKFLOWS, Requester],
        activities=[find_closed_workflows],
        workflow_runner=WORKFLOW_RUNNER,
    ):
        limiter = await client.start_workflow(
            "SlotLimiterWorkflow",
            LimiterState(limiter_id="limiter-test", capacity=1),
            id=f"limiter-{uuid.uuid4()}",
            task_queue=queue,
        )
        a, b, c = [
            await client.start_workflow(
                Requester.run, id=f"req-{n}-{uuid.uuid4()}", task_queue=queue
            )
            for n in "abc"
        ]

        async def request(handle: WorkflowHandle[Any, Any], priority: int) -> str:
            request_id = str(uuid.uuid4())
            await limiter.signal(
                Signals.REQUEST,
                SlotRequest(
                    workflow_id=handle.id, request_id=request_id, priority=priority, capacity=1
                ),
            )
            return request_id

        first = await request(a, 100)
        await wait_granted(a, first)
        later = await request(b, 100)
        urgent = await request(c, 5)  # arrives after b, goes first
        status: LimiterStatus = await limiter.query("status", result_type=LimiterStatus)
        assert (status.holders, status.waiting) == (1, 2)

        await limiter.signal(Signals.RELEASE, SlotRelease(workflow_id=a.id, request_id=first))
        await wait_granted(c, urgent)
        assert later not in await granted(b)

        # c ends without releasing: the sweep (every minute, skipped) frees its slot.
        await c.terminate("gone without a release")
        await time_skipping_env.sleep(timedelta(minutes=2))  # the test server skips it
        await wait_granted(b, later)
        for handle in (a, b, limiter):
            await handle.terminate("test finished")
