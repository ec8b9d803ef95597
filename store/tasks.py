"""Queries over tasks, their events and their logs."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFoundError
from core.states import TaskState
from schemas.workflow import TaskPatch, TransitionInput
from store.live import pr_snapshot, publish_transition
from store.models import AgentRun, Repo, Task, TaskEvent, TaskLog
from store.row_dicts import Reader, attribute_columns, fetch_dicts
from store.scoping import scoped_select
from store.types import utcnow

HAS_STEPS = "has_steps"
TERMINAL_FOR_TIMESTAMPS = {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED}


def repo_key(*, workspace_id: str, repo_url: str) -> str:
    return hashlib.sha256(f"{workspace_id}|{repo_url}".encode()).hexdigest()[:16]


async def get_task(session: AsyncSession, *, task_id: str, workspace_id: str) -> Task:
    # By primary key: a task this session has loaded already (GET /api/tasks/:id looks
    # among the other kinds first) costs no second query.
    task = await session.get(Task, task_id)
    if task is None or task.workspace_id != workspace_id:
        raise NotFoundError("Task not found")
    return task


async def find_repo(session: AsyncSession, *, workspace_id: str, repo_url: str) -> Repo | None:
    stmt = scoped_select(Repo, workspace_id=workspace_id).where(Repo.repo_url == repo_url)
    return (await session.execute(stmt)).scalar_one_or_none()


# Every column of a task, named as the model's attributes: pages and single tasks are
# read as dicts (TaskPublic validates them), see store/row_dicts.py.
_TASKS = Task.__table__
_PAGE = (
    select(*attribute_columns(Task))
    .where(_TASKS.c.workspace_id == bindparam("workspace_id"))
    .order_by(_TASKS.c.created_at.desc(), _TASKS.c.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
_PAGE_IN_STATE = _PAGE.where(_TASKS.c.state == bindparam("state"))
# One task by id, whatever its workspace (the caller tells "not yours" from "none"),
# with whether it has pipeline steps: GET /api/tasks/:id in one query.
_STEPS = Task.__table__.alias("steps")
_ONE = select(
    *attribute_columns(Task),
    exists()
    .where(_STEPS.c.parent_task_id == _TASKS.c.id, _STEPS.c.task_type == "step")
    .label(HAS_STEPS),
).where(_TASKS.c.id == bindparam("task_id"))


# The keys of list_tasks' dicts.
TASK_PAGE_KEYS = tuple(_PAGE.selected_columns.keys())


async def list_tasks(
    reader: Reader,
    *,
    workspace_id: str,
    state: str | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """A page of the workspace's tasks, newest first, as dicts keyed by Task attribute."""
    params: dict[str, Any] = {"workspace_id": workspace_id, "limit": limit, "offset": offset}
    if state:
        params["state"] = state
    return await fetch_dicts(reader, _PAGE_IN_STATE if state else _PAGE, params)


async def read_task_row(reader: Reader, *, task_id: str) -> dict[str, Any] | None:
    """The task as a dict keyed by Task attribute, plus `HAS_STEPS`; None if no task has
    this id (in any workspace: the caller checks `workspace_id`)."""
    rows = await fetch_dicts(reader, _ONE, {"task_id": task_id})
    return rows[0] if rows else None


_REPOS = Repo.__table__
_REPO_LIST = (
    select(*attribute_columns(Repo))
    .where(_REPOS.c.workspace_id == bindparam("workspace_id"))
    .order_by(_REPOS.c.created_at)
)


async def list_repos(reader: Reader, *, workspace_id: str) -> list[dict[str, Any]]:
    """The workspace's repositories, oldest first, as dicts keyed by Repo attribute."""
    return await fetch_dicts(reader, _REPO_LIST, {"workspace_id": workspace_id})


async def awaiting_start(
    session: AsyncSession, *, requested_before: datetime, limit: int
) -> list[Task]:
    """Tasks (of every workspace) whose workflow start was asked for before the cutoff and
    not yet confirmed by a first transition: api/task_starts.py makes those starts again."""
    stmt = (
        select(Task)
        .where(Task.start_requested_at.is_not(None), Task.start_requested_at < requested_before)
        .order_by(Task.start_requested_at)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def clear_start_request(session: AsyncSession, *, task_id: str) -> None:
    await session.execute(update(Task).where(Task.id == task_id).values(start_requested_at=None))


async def apply_transition(session: AsyncSession, *, data: TransitionInput) -> bool:
    """Record one transition once: a replayed (task, seq) changes nothing."""
    task = await session.get(Task, data.task_id, with_for_update=True)
    if task is None:
        return False  # deleted while its workflow was finishing
    seen = await session.execute(
        select(TaskEvent.id).where(TaskEvent.task_id == task.id, TaskEvent.seq == data.seq)
    )
    if seen.first() is not None:
        return False
    if not data.force and task.state != data.from_state:
        # Compare-and-set on the state, as the reference does: a transition whose start
        # the row has left was already recorded under another number. A workflow task
        # that fails after its local activities wrote can take another path when it is
        # retried (a signal that came in meanwhile is applied before the cancel), so one
        # step may reach this function again under a new sequence number.
        return False
    now = utcnow()
    before_pr = pr_snapshot(task)
    to_state = TaskState(data.to_state)
    task.state = to_state
    task.transition_seq = max(task.transition_seq, data.seq)
    task.start_requested_at = None  # the workflow runs: the API's start arrived
    if to_state == TaskState.RUNNING:
        task.started_at = task.started_at or now
        task.last_activity_at = now
    if to_state in TERMINAL_FOR_TIMESTAMPS:
        task.completed_at = now
    if to_state == TaskState.COMPLETED:
        task.error_message = None
    if to_state in (TaskState.NEEDS_ATTENTION, TaskState.FAILED):
        task.error_message = data.message or data.trigger
    if to_state == TaskState.QUEUED:
        task.error_message = None
        task.completed_at = None
    apply_patch(task, data.patch)
    session.add(
        TaskEvent(
            task_id=task.id,
            workspace_id=task.workspace_id,
            seq=data.seq,
            from_state=data.from_state,
            to_state=to_state,
            trigger=data.trigger,
            message=data.message,
            user_id=data.user_id,
            created_at=now,
        )
    )
    publish_transition(session, task=task, data=data, before_pr=before_pr)
    try:
        await session.flush()
    except IntegrityError:
        return False
    return True


# Sums over the task's agent runs, kept by store/costs.py: one run's figures never
# overwrite them.
RUN_TOTALS = frozenset({"cost_usd", "input_tokens", "output_tokens"})


def apply_patch(task: Task, patch: TaskPatch) -> None:
    for name, value in asdict(patch).items():
        if value is not None and name not in RUN_TOTALS:
            setattr(task, name, value)


async def list_events(session: AsyncSession, *, task_id: str) -> list[TaskEvent]:
    stmt = select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.seq)
    return list((await session.execute(stmt)).scalars())


async def list_logs(
    session: AsyncSession,
    *,
    task_id: str,
    limit: int,
    offset: int,
    search: str | None,
    log_type: str | None,
) -> list[TaskLog]:
    stmt = select(TaskLog).where(TaskLog.task_id == task_id)
    if search:
        stmt = stmt.where(TaskLog.content.ilike(f"%{_escape_like(search)}%", escape="\\"))
    if log_type:
        stmt = stmt.where(TaskLog.log_type == log_type)
    stmt = stmt.order_by(TaskLog.timestamp, TaskLog.id).limit(limit).offset(offset)
    return list((await session.execute(stmt)).scalars())


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def wipe_for_redo(session: AsyncSession, *, task_id: str) -> Task | None:
    task = await session.get(Task, task_id, with_for_update=True)
    if task is None:
        return None
    await session.execute(delete(TaskLog).where(TaskLog.task_id == task_id))
    # An earlier runner may still be delivering its last batch: its token stops working,
    # or that late batch would bring back the logs just wiped.
    await session.execute(
        update(AgentRun).where(AgentRun.task_id == task_id).values(state="revoked")
    )
    for name in (
        "pr_url",
        "pr_number",
        "pr_state",
        "pr_checks_status",
        "pr_review_status",
        "result_summary",
        "cost_usd",
        "input_tokens",
        "output_tokens",
        "model_used",
        "session_id",
        "error_message",
        "started_at",
        "completed_at",
    ):
        setattr(task, name, None)
    task.retry_count = 0
    return task


async def count_by_state(session: AsyncSession, *, workspace_id: str) -> dict[str, int]:
    stmt = (
        select(Task.state, func.count())
        .where(Task.workspace_id == workspace_id)
        .group_by(Task.state)
    )
    return {state: int(n) for state, n in (await session.execute(stmt)).all()}


def task_metadata(task: Task) -> dict[str, Any]:
    return dict(task.metadata_ or {})


async def find_by_idempotency_key(
    session: AsyncSession, *, workspace_id: str, key: str
) -> Task | None:
    """The task a POST with this Idempotency-Key created before, in this workspace."""
    stmt = select(Task).where(Task.workspace_id == workspace_id, Task.idempotency_key == key)
    return (await session.execute(stmt)).scalar_one_or_none()
