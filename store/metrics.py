"""The database reads behind /metrics: tasks by state, the queue per limiter, and the
timestamps a histogram needs (docs/deployment.md#metrics). Across all workspaces: the
metrics are the operator's, and carry counts, never a task's content."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import AgentRun, Task, TaskEvent


@dataclass
class QueuedRepo:
    repo_url: str
    depth: int
    # When the longest-waiting queued task of this repository entered the queue.
    oldest: datetime | None


def as_utc(stamp: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything is stored in UTC."""
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


async def tasks_by_state(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Task.state, func.count()).group_by(Task.state))
    return {state: count for state, count in rows.all()}  # noqa: C416 (rows, not pairs)


async def queued_by_repo(session: AsyncSession) -> list[QueuedRepo]:
    """Queued tasks per repository, with when the oldest of them was queued (the event of
    its latest transition, the one into `queued`)."""
    rows = await session.execute(
        select(Task.repo_url, func.count(), func.min(TaskEvent.created_at))
        .join(
            TaskEvent,
            (TaskEvent.task_id == Task.id) & (TaskEvent.seq == Task.transition_seq),
            isouter=True,
        )
        .where(Task.state == "queued")
        .group_by(Task.repo_url)
    )
    return [
        QueuedRepo(repo_url=url, depth=count, oldest=as_utc(oldest) if oldest else None)
        for url, count, oldest in rows.all()
    ]


async def queued_at(session: AsyncSession, *, task_id: str, seq: int) -> datetime | None:
    """When transition `seq` of the task (its entry into the queue) was recorded."""
    stamp = await session.scalar(
        select(TaskEvent.created_at).where(
            TaskEvent.task_id == task_id, TaskEvent.seq == seq, TaskEvent.to_state == "queued"
        )
    )
    return as_utc(stamp) if stamp else None


async def run_started(session: AsyncSession, *, run_id: str) -> tuple[str, datetime] | None:
    row = (
        await session.execute(
            select(AgentRun.agent_type, AgentRun.started_at).where(AgentRun.id == run_id)
        )
    ).first()
    return (row[0], as_utc(row[1])) if row else None
