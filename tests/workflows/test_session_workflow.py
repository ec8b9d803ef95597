"""SessionWorkflow on the time-skipping server, its activities replaced by name: it ends
when told or when idle, survives a change of worker, continues as new, and replays."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from core.names import SESSION_WORKFLOW, session_workflow_id
from schemas.sessions import SessionEndInput, SessionInput, SessionPrepared, SessionRef
from tests.workflows.harness import keep_history
from workflows import session as session_module
from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS

IDLE = 600.0
BIN = Path(sys.executable).parent


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this test's own: skipping an hour leaves no trace."""
    server = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server")
    )
    try:
        yield server
    finally:
        await server.shutdown()


class Fakes:
    def __init__(self, *, ready: bool = True) -> None:
        self.ready = ready
        self.prepared: list[str] = []
        self.ended: list[tuple[str, str]] = []

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="prepare_session")
        async def prepare_session(input: SessionRef) -> SessionPrepared:
            self.prepared.append(input.session_id)
            return SessionPrepared(ready=self.ready, error=None if self.ready else "no git")

        @activity.defn(name="end_session")
        async def end_session(input: SessionEndInput) -> None:
            self.ended.append((input.session_id, input.reason))

        return [prepare_session, end_session]


@asynccontextmanager
async def worker(
    client: Client, queue: str, fakes: Fakes, *, cached: bool = True
) -> AsyncIterator[Worker]:
    async with Worker(
        client, task_queue=queue, workflows=WORKFLOWS, activities=fakes.activities(),
        workflow_runner=WORKFLOW_RUNNER, max_cached_workflows=100 if cached else 0,
    ) as running:  # fmt: skip
        yield running


async def start(client: Client, queue: str, idle: float = IDLE) -> WorkflowHandle[object, str]:
    session_id = str(uuid.uuid4())
    return await client.start_workflow(
        SESSION_WORKFLOW, SessionInput(session_id, idle), id=session_workflow_id(session_id),
        task_queue=queue, result_type=str,
    )  # fmt: skip


async def test_end_signal_ends_and_cleans_up(env: WorkflowEnvironment) -> None:
    client, queue, fakes = env.client, str(uuid.uuid4()), Fakes()
    async with worker(client, queue, fakes):
        handle = await start(client, queue)
        await handle.signal("touch")
        await handle.signal("end")
        assert await handle.result() == "ended"
    assert fakes.ended == [(fakes.prepared[0], "ended")]
    await keep_history(client, handle.id, "ended")
    history = await handle.fetch_history()
    await Replayer(workflows=WORKFLOWS, workflow_runner=WORKFLOW_RUNNER).replay_workflow(history)


async def test_an_untouched_session_ends_after_the_idle_timeout(
    env: WorkflowEnvironment,
) -> None:
    client, queue, fakes = env.client, str(uuid.uuid4()), Fakes()
    async with worker(client, queue, fakes):
        handle = await start(client, queue, idle=3600)
        assert await handle.result() == "idle"  # time skips an hour ahead
        await keep_history(client, handle.id, "idle")
    assert [reason for _, reason in fakes.ended] == ["idle"]


async def test_a_failed_worktree_ends_the_session_as_failed(
    env: WorkflowEnvironment,
) -> None:
    client, queue, fakes = env.client, str(uuid.uuid4()), Fakes(ready=False)
    async with worker(client, queue, fakes):
        assert await (await start(client, queue)).result() == "failed"
    assert [reason for _, reason in fakes.ended] == ["failed"]


async def test_the_session_survives_a_change_of_worker(env: WorkflowEnvironment) -> None:
    client, queue = env.client, str(uuid.uuid4())
    first, second = Fakes(), Fakes()
    # No sticky cache: the test server may hold the next workflow task for a stopped
    # worker's sticky queue; what is tested is the session's durable state, not stickiness.
    async with worker(client, queue, first, cached=False):
        handle = await start(client, queue)
        await until(lambda: first.prepared)  # the worktree is made on the first worker
    # The first worker is gone; the session waits in Temporal for the next one.
    async with worker(client, queue, second, cached=False):
        await handle.signal("end")
        assert await handle.result() == "ended"
    assert len(first.prepared) == 1 and second.prepared == []  # prepared once only
    assert second.ended == [(first.prepared[0], "ended")]


async def test_a_long_session_continues_as_new(env: WorkflowEnvironment) -> None:
    client, queue, fakes = env.client, str(uuid.uuid4()), Fakes()
    session_module.MAX_EVENTS_BEFORE_CONTINUE = 5  # a touch is a long history here
    try:
        async with worker(client, queue, fakes):
            handle = await start(client, queue)
            await until(lambda: fakes.prepared)
            await handle.signal("touch")
            latest = client.get_workflow_handle(handle.id)
            await until_async(lambda: _continued(latest))
            await handle.signal("end")
            assert await latest.result() == "ended"
            await keep_history(client, handle.id, "continued_as_new")
    finally:
        session_module.MAX_EVENTS_BEFORE_CONTINUE = 2_000
    assert len(fakes.prepared) == 1 and [r for _, r in fakes.ended] == ["ended"]


async def _continued(handle: WorkflowHandle[object, object]) -> bool:
    """The latest run started with the worktree made already: a continuation."""
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    return b'"prepared":true' in started.input.payloads[0].data


# A bound for a failure, not a wait: generous, as a loaded 2-core machine needs.
UNTIL_S = 90


async def until(check: Callable[[], object]) -> None:
    async with asyncio.timeout(UNTIL_S):
        while not check():
            await asyncio.sleep(0.01)


async def until_async(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(UNTIL_S):
        while not await check():
            await asyncio.sleep(0.05)
