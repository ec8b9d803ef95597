"""What the API does to a task's workflow: start, update, signal, query, cancel.

The API never writes task state: it refuses what the state machine refuses (409)
and leaves every transition to the workflow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from core.errors import ConflictError, InvalidTransitionError, ServiceUnavailableError
from core.names import NEXT_RUN_REFUSAL as NEXT_RUN
from core.names import (
    PIPELINE_WORKFLOW,
    Queries,
    Signals,
    Updates,
    task_workflow_id,
    workflow_id_for,
)
from core.states import LIVE_STATES, TaskState
from schemas.workflow import (
    CommandResult,
    LimiterStatus,
    MergeCommand,
    PipelineInput,
    PriorityChange,
    ResumeCommand,
    RetryCommand,
    StartMode,
    TaskStatus,
)
from store.models import Task
from temporal.starts import pipeline_workflow_id, start_task_workflow

log = logging.getLogger(__name__)

WORKFLOW_NAME = "RepoTaskWorkflow"
SETTLE_SECONDS = 10.0
QUERY_TIMEOUT = timedelta(seconds=2)
UPDATE_ATTEMPTS = 5


def workflow_id(task_id: str) -> str:
    return task_workflow_id(task_id)


def workflow_id_of(task: Task) -> str:
    """The workflow carrying this task: reviews run as `review-<id>`, others `task-<id>`."""
    return workflow_id_for(task_id=task.id, task_type=task.task_type)


async def start_run(
    client: Client,
    *,
    task: Task,
    task_queue: str,
    mode: StartMode,
    prompt: str | None = None,
    user_id: str | None = None,
) -> None:
    await start_task_workflow(
        client,
        task,
        task_queue=task_queue,
        mode=mode,
        prompt=prompt,
        user_id=user_id,
    )


async def is_running(client: Client, task_id: str, *, workflow: str | None = None) -> bool:
    try:
        handle = client.get_workflow_handle(workflow or workflow_id(task_id))
        described = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return described.status == WorkflowExecutionStatus.RUNNING


async def run_update(
    client: Client, *, task_id: str, update: str, arg: Any | None = None
) -> CommandResult:
    """Send an update; a refusal is a ConflictError (409) with the workflow's words."""
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id(task_id))
    args = [] if arg is None else [arg]
    for attempt in range(UPDATE_ATTEMPTS):
        try:
            result = await handle.execute_update(update, args=args, result_type=CommandResult)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type == NEXT_RUN:
                # The run is continuing as new: the next one takes the command.
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            if isinstance(cause, ApplicationError):
                raise ConflictError(cause.message) from exc
            raise
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise ConflictError("The task's workflow is not running") from exc
            if not _workflow_not_ready(exc):
                raise
            # The workflow task that carried the update failed and is being retried (say,
            # the run ended while a cancelled activity reported back): the update was
            # dropped with it. What its handler did is idempotent (merging twice is a
            # no-op, transitions are keyed by sequence), so sending it again is safe.
            log.info("update %s of task %s: workflow not ready, sending it again", update, task_id)
            await asyncio.sleep(0.2 * (attempt + 1))
            continue
        if result.accepted:
            return result
        if not result.next_run:
            raise ConflictError(result.message or "The task's workflow refused the command")
        await asyncio.sleep(0.2 * (attempt + 1))
    raise ServiceUnavailableError("The task's workflow is busy; try again")


def _workflow_not_ready(exc: RPCError) -> bool:
    return exc.status == RPCStatusCode.FAILED_PRECONDITION and any(
        detail.type_url.endswith("WorkflowNotReadyFailure") for detail in exc.grpc_status.details
    )


async def cancel(client: Client, *, task: Task) -> None:
    if task.state not in LIVE_STATES:
        raise InvalidTransitionError(task.state, TaskState.CANCELLED)
    try:
        await client.get_workflow_handle(workflow_id_of(task)).cancel()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise


async def wait_closed(
    client: Client, *, task_id: str, timeout: float = SETTLE_SECONDS, workflow: str | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while await is_running(client, task_id, workflow=workflow):
        if time.monotonic() > deadline:
            raise ServiceUnavailableError("The task's workflow did not stop in time; try again")
        await asyncio.sleep(0.1)


async def retry(client: Client, *, task: Task, task_queue: str, user_id: str) -> None:
    if task.state not in (TaskState.FAILED, TaskState.CANCELLED):
        raise InvalidTransitionError(task.state, TaskState.QUEUED)
    command = RetryCommand(user_id=user_id)
    if await _handled_by_live_run(client, task=task, update=Updates.RETRY, arg=command):
        return
    await start_run(client, task=task, task_queue=task_queue, mode="retry", user_id=user_id)


async def _handled_by_live_run(client: Client, *, task: Task, update: str, arg: Any | None) -> bool:
    """Give a command to the running workflow; False when a new run must take it.

    A failed run that is still backing off takes the command; one that is wrapping up
    refuses it, and then the API waits for it to close and starts a new run.
    """
    if not await is_running(client, task.id):
        return False
    try:
        await run_update(client, task_id=task.id, update=update, arg=arg)
        return True
    except ConflictError:
        if task.state not in (TaskState.FAILED, TaskState.CANCELLED):
            raise
    await wait_closed(client, task_id=task.id)
    return False


async def resume(
    client: Client,
    *,
    task: Task,
    task_queue: str,
    prompt: str | None,
    user_id: str,
    force_restart: bool,
) -> None:
    allowed = (
        {TaskState.NEEDS_ATTENTION, TaskState.FAILED, TaskState.PR_OPENED}
        if force_restart
        else {TaskState.NEEDS_ATTENTION, TaskState.FAILED}
    )
    if task.state not in allowed:
        raise InvalidTransitionError(task.state, TaskState.QUEUED)
    command = ResumeCommand(prompt=prompt, user_id=user_id)
    update = "force_restart" if force_restart else "resume"
    if await _handled_by_live_run(client, task=task, update=update, arg=command):
        return
    mode: StartMode = "force_restart" if force_restart else "resume"
    await start_run(
        client, task=task, task_queue=task_queue, mode=mode, prompt=prompt, user_id=user_id
    )


async def force_redo(client: Client, *, task: Task, task_queue: str, user_id: str) -> None:
    if await is_running(client, task.id):
        await client.get_workflow_handle(workflow_id(task.id)).cancel()
        await wait_closed(client, task_id=task.id)
    await start_run(client, task=task, task_queue=task_queue, mode="force_redo", user_id=user_id)


async def merge(client: Client, *, task: Task, method: str, user_id: str) -> CommandResult:
    if task.state != TaskState.PR_OPENED:
        raise InvalidTransitionError(task.state, TaskState.COMPLETED)
    result = await run_update(
        client, task_id=task.id, update="merge_pr", arg=MergeCommand(method=method, user_id=user_id)
    )
    if not result.accepted:
        raise ConflictError(result.message or "The pull request could not be merged")
    return result


async def change_priority(client: Client, *, task_id: str, priority: int) -> None:
    try:
        await client.get_workflow_handle(workflow_id(task_id)).signal(
            Signals.PRIORITY, PriorityChange(priority=priority)
        )
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise


async def pending_reason(client: Client, *, task_id: str) -> str | None:
    """Why a queued task waits, asked of its workflow and of the limiter it waits on."""
    try:
        # Bounded: a busy worker must not make GET /api/tasks/:id slow.
        status = await client.get_workflow_handle(workflow_id(task_id)).query(
            Queries.STATUS, result_type=TaskStatus, rpc_timeout=QUERY_TIMEOUT
        )
        if status.waiting_for == "retry":
            return "Waiting to retry automatically after a failed attempt"
        if not status.waiting_for or not status.limiter_id:
            return None
        limiter = await client.get_workflow_handle(status.limiter_id).query(
            Queries.STATUS, result_type=LimiterStatus, rpc_timeout=QUERY_TIMEOUT
        )
    except (RPCError, WorkflowQueryFailedError):
        return None
    if status.scope is not None:
        # One request for both limits: say which of them holds it back.
        in_repo = limiter.scope_holders.get(status.scope, 0)
        if in_repo >= limiter.scope_capacity.get(status.scope, in_repo + 1):
            return f"Waiting for repo slot ({in_repo} running in this repo)"
    if status.waiting_for == "global":
        return f"Concurrency limit ({limiter.holders}/{limiter.capacity} global)"
    return f"Waiting for repo slot ({limiter.holders} running in this repo)"


async def settle(
    sessions: async_sessionmaker[AsyncSession],
    *,
    task_id: str,
    changed: Callable[[Task], bool],
    timeout: float = 5.0,
) -> Task | None:
    """Re-read the task until the workflow has recorded the expected change (or time out)."""
    deadline = time.monotonic() + timeout
    while True:
        async with sessions() as session:
            task = await session.get(Task, task_id)
        if task is None or changed(task) or time.monotonic() > deadline:
            return task
        await asyncio.sleep(0.05)


async def kick_pipeline(client: Client, *, parent_task_id: str, task_queue: str) -> None:
    """Start the parent's pipeline, or tell the running one that its steps changed."""
    await client.start_workflow(
        PIPELINE_WORKFLOW,
        PipelineInput(parent_task_id=parent_task_id),
        id=pipeline_workflow_id(parent_task_id),
        task_queue=task_queue,
        start_signal=Signals.STEPS_CHANGED,
    )


async def signal_task(client: Client, *, task_id: str, signal: str) -> None:
    try:
        await client.get_workflow_handle(workflow_id(task_id)).signal(signal)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
