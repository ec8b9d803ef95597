"""Starting a new task's workflow just after the API has answered for it.

`POST /api/tasks` commits the row with `start_requested_at` set, hands the start to
`TaskStarts.request` and answers 201: the StartWorkflowExecution round trip (20-70 ms on
an idle machine, up to 350 ms measured while Temporal shares a full CPU with running
tasks) is no longer part of the POST. The row is the durable promise: the workflow's first
transition clears `start_requested_at`, and a sweep in every API process starts again,
idempotently, any task still marked after `SWEEP_SECONDS` (the API stopped between the
commit and the start, or Temporal was down). A command for a task whose start may still
be on its way (`ensure_started`) waits for it first, so a cancel cannot overtake it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from core.errors import ServiceUnavailableError
from store.models import Task
from store.tasks import awaiting_start, clear_start_request
from store.types import utcnow
from temporal.starts import start_task_workflow

log = logging.getLogger(__name__)

SWEEP_SECONDS = 30.0
RETRY_MAX_SECONDS = 10.0
# How long a command waits for a start still on its way before asking to be retried.
COMMAND_WAIT_SECONDS = 10.0
SWEEP_BATCH = 500


@dataclass(frozen=True)
class StartRequest:
    """The task's fields a start needs, copied off its row (`TaskToStart`)."""

    id: str
    state: str
    repo_url: str
    workspace_id: str
    agent_type: str

    @classmethod
    def of(cls, task: Task) -> StartRequest:
        return cls(task.id, task.state, task.repo_url, task.workspace_id, task.agent_type)


class TaskStarts:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        client: Callable[[], Awaitable[Client]],
        task_queue: str,
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._task_queue = task_queue
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def request(self, task: Task) -> None:
        """Start the task's workflow now, in the background, retrying until it is started."""
        request = StartRequest.of(task)
        if request.id in self._inflight:
            return
        starting = asyncio.get_running_loop().create_task(
            self._start_until_done(request), name=f"start task-{request.id}"
        )
        self._inflight[request.id] = starting
        starting.add_done_callback(lambda _: self._inflight.pop(request.id, None))

    async def ensure_started(self, task: Task) -> None:
        """Before a command goes to the task's workflow: the start it may be waiting for."""
        starting = self._inflight.get(task.id)
        if starting is not None:
            try:
                async with asyncio.timeout(COMMAND_WAIT_SECONDS):
                    await asyncio.shield(starting)
            except TimeoutError as exc:
                raise ServiceUnavailableError(
                    "The task's workflow is still being started (is Temporal up?); try again"
                ) from exc
        elif task.start_requested_at is not None:
            try:
                await self._start(StartRequest.of(task))
            except ServiceUnavailableError:
                raise
            except Exception as exc:
                raise ServiceUnavailableError(
                    f"Could not start the task's workflow: {exc}"
                ) from exc

    # -- the sweep --

    def run_sweeps(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def sweep(self, *, older_than: float = SWEEP_SECONDS) -> int:
        """Start the workflows of tasks still marked after `older_than` seconds."""
        cutoff = utcnow() - timedelta(seconds=older_than)
        async with self._sessions() as session:
            rows = await awaiting_start(session, requested_before=cutoff, limit=SWEEP_BATCH)
            requests = [StartRequest.of(t) for t in rows if t.id not in self._inflight]
        started = 0
        for request in requests:
            try:
                await self._start(request)
                started += 1
            except Exception as exc:
                log.warning("could not start task-%s, next sweep retries: %s", request.id, exc)
                break  # Temporal is down: the rest would fail the same way
        if started:
            log.info("started %d task workflow(s) whose start had been lost", started)
        return started

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("task start sweep failed")
            await asyncio.sleep(SWEEP_SECONDS)

    async def close(self, *, grace: float = 5.0) -> None:
        """API shutdown: let starts under way finish briefly; what does not, a sweep redoes."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        pending = list(self._inflight.values())
        if pending:
            _done, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    # -- one start --

    async def _start_until_done(self, request: StartRequest) -> None:
        delay = 0.2
        while True:
            try:
                await self._start(request)
                return
            except Exception as exc:
                log.warning("starting task-%s failed, retrying: %s", request.id, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def _start(self, request: StartRequest) -> None:
        client = await self._client()
        try:
            await start_task_workflow(
                client,
                request,
                task_queue=self._task_queue,
                mode="fresh",
                # The id was never used before this task: a closed run under it means
                # this start was made already and the workflow has come and gone.
                reuse=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            async with self._sessions() as session, session.begin():
                await clear_start_request(session, task_id=request.id)
