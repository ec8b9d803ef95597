"""The facts of a window's tasks for core/task_analytics.py: two queries, no ORM objects."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.budget import parse_usd
from core.task_analytics import STALL_TRIGGERS, TaskFacts
from store.models import Task, TaskEvent

# The triggers the reports look for; other transitions are not read.
_TRIGGERS = STALL_TRIGGERS | {"auto_merged"}


def _in_window(
    *,
    workspace_id: str,
    since: datetime,
    until: datetime,
    repo_url: str | None,
    agent_type: str | None,
) -> list[ColumnElement[bool]]:
    where = [Task.workspace_id == workspace_id, Task.created_at >= since, Task.created_at < until]
    if repo_url:
        where.append(Task.repo_url == repo_url)
    if agent_type:
        where.append(Task.agent_type == agent_type)
    return where


async def task_facts(
    session: AsyncSession,
    *,
    workspace_id: str,
    since: datetime,
    until: datetime,
    repo_url: str | None = None,
    agent_type: str | None = None,
) -> list[TaskFacts]:
    scope = _in_window(
        workspace_id=workspace_id,
        since=since,
        until=until,
        repo_url=repo_url,
        agent_type=agent_type,
    )
    events = (
        select(TaskEvent.task_id, TaskEvent.trigger, TaskEvent.to_state, TaskEvent.created_at)
        .join(Task, Task.id == TaskEvent.task_id)
        .where(
            TaskEvent.workspace_id == workspace_id,
            (TaskEvent.trigger.in_(_TRIGGERS)) | (TaskEvent.to_state == "pr_opened"),
            *scope,
        )
    )
    triggers: dict[str, set[str]] = defaultdict(set)
    pr_opened: dict[str, datetime] = {}
    for task_id, trigger, to_state, at in (await session.execute(events)).all():
        if trigger in _TRIGGERS:
            triggers[task_id].add(trigger)
        if to_state == "pr_opened" and (task_id not in pr_opened or at < pr_opened[task_id]):
            pr_opened[task_id] = at
    rows = (
        select(
            Task.id,
            Task.repo_url,
            Task.agent_type,
            Task.state,
            Task.model_used,
            Task.error_message,
            Task.retry_count,
            Task.cost_usd,
            Task.created_at,
            Task.started_at,
            Task.completed_at,
            Task.pr_url.is_not(None) | Task.pr_number.is_not(None),
            Task.pr_state,
            Task.pr_checks_status,
            Task.pr_review_status,
        )
        .where(*scope)
        .order_by(Task.created_at)
    )
    return [
        TaskFacts(
            id=row[0],
            repo_url=row[1],
            agent_type=row[2],
            state=row[3],
            model=row[4],
            error=row[5],
            retry_count=row[6] or 0,
            cost=parse_usd(row[7]) or Decimal(0),
            created_at=row[8],
            started_at=row[9],
            completed_at=row[10],
            has_pr=bool(row[11]),
            pr_state=row[12],
            checks_status=row[13],
            review_status=row[14],
            pr_opened_at=pr_opened.get(row[0]),
            triggers=frozenset(triggers.get(row[0], ())),
        )
        for row in (await session.execute(rows)).all()
    ]
