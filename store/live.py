"""The live event log: every change a client may watch, one row each, ids ever increasing.

Writers add events in the transaction that makes the change, so an event exists exactly
when its change committed. API processes tail the table by id (api/live/bus.py); on
PostgreSQL a statement trigger NOTIFYs `optio_live` at commit to wake them at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base
from store.types import JSONType, utcnow

NOTIFY_CHANNEL = "optio_live"
# Log entries have their own streams (/ws/logs/...); /ws/events carries the rest.
LOG = "log"
EVENT = "event"


class LiveEvent(Base):
    __tablename__ = "live_events"
    __table_args__ = (
        Index("ix_live_events_topic_id", "topic", "id"),
        Index("ix_live_events_workspace_kind_id", "workspace_id", "kind", "id"),
        Index("ix_live_events_created_at", "created_at"),
        # Ids are never reused, not even after pruning empties the table: a client
        # resuming from an old id must never be handed a different event under it.
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    workspace_id: Mapped[str] = mapped_column(String(36))
    # What a per-object stream follows: "task:<id>" or "workflow_run:<id>".
    topic: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(10))
    type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def task_topic(task_id: str) -> str:
    return f"task:{task_id}"


def run_topic(run_id: str) -> str:
    return f"workflow_run:{run_id}"


def publish(
    session: AsyncSession, *, workspace_id: str, topic: str, type: str, payload: dict[str, Any]
) -> None:
    """Add one event to the caller's transaction."""
    kind = LOG if type.endswith(":log") else EVENT
    session.add(
        LiveEvent(workspace_id=workspace_id, topic=topic, kind=kind, type=type, payload=payload)
    )


async def latest_id(session: AsyncSession) -> int:
    return int((await session.execute(select(func.max(LiveEvent.id)))).scalar() or 0)


async def events_after(
    session: AsyncSession, *, after: int, through: int | None = None, limit: int
) -> Sequence[LiveEvent]:
    """Every workspace's events after an id, oldest first: what the bus fans out."""
    stmt = select(LiveEvent).where(LiveEvent.id > after)
    if through is not None:
        stmt = stmt.where(LiveEvent.id <= through)
    return (await session.execute(stmt.order_by(LiveEvent.id).limit(limit))).scalars().all()


async def stream_page(
    session: AsyncSession,
    *,
    workspace_id: str,
    topic: str | None,
    kind: str | None,
    after: int,
    through: int,
    limit: int,
) -> Sequence[LiveEvent]:
    """One stream's events in (after, through], oldest first."""
    stmt = _stream(workspace_id=workspace_id, topic=topic, kind=kind, types=None)
    stmt = stmt.where(LiveEvent.id > after, LiveEvent.id <= through)
    return (await session.execute(stmt.order_by(LiveEvent.id).limit(limit))).scalars().all()


async def stream_tail(
    session: AsyncSession,
    *,
    workspace_id: str,
    topic: str | None,
    kind: str | None,
    types: tuple[str, ...] | None,
    through: int,
    limit: int,
) -> list[LiveEvent]:
    """The last `limit` events of a stream up to an id, oldest first (the catch-up)."""
    stmt = _stream(workspace_id=workspace_id, topic=topic, kind=kind, types=types)
    stmt = stmt.where(LiveEvent.id <= through).order_by(LiveEvent.id.desc()).limit(limit)
    return list(reversed((await session.execute(stmt)).scalars().all()))


def _stream(
    *, workspace_id: str, topic: str | None, kind: str | None, types: tuple[str, ...] | None
) -> Any:
    stmt = select(LiveEvent).where(LiveEvent.workspace_id == workspace_id)
    if topic is not None:
        stmt = stmt.where(LiveEvent.topic == topic)
    if kind is not None:
        stmt = stmt.where(LiveEvent.kind == kind)
    if types is not None:
        stmt = stmt.where(LiveEvent.type.in_(types))
    return stmt


async def prune(session: AsyncSession, *, before: datetime) -> int:
    result = await session.execute(delete(LiveEvent).where(LiveEvent.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


# ---- what writers publish: one helper per kind of change, called where it is written ----

PR_FIELDS = ("pr_url", "pr_number", "pr_state", "pr_checks_status", "pr_review_status")


def pr_snapshot(task: Any) -> tuple[Any, ...]:
    return tuple(getattr(task, name) for name in PR_FIELDS)


def publish_transition(
    session: AsyncSession, *, task: Any, data: Any, before_pr: tuple[Any, ...]
) -> None:
    """A task's state change (a review subtask's too: its taskType says so), and the change
    of its PR or checks that the same transition carried."""
    publish(
        session,
        workspace_id=task.workspace_id,
        topic=task_topic(task.id),
        type="task:state_changed",
        payload={
            "taskId": task.id,
            "fromState": data.from_state,
            "toState": str(data.to_state),
            "trigger": data.trigger,
            "message": data.message,
            "userId": data.user_id,
            "taskType": task.task_type,
            "parentTaskId": task.parent_task_id,
            "timestamp": utcnow().isoformat(),
        },
    )
    publish_pr_change(session, task=task, before=before_pr)


def publish_pr_change(session: AsyncSession, *, task: Any, before: tuple[Any, ...]) -> None:
    if pr_snapshot(task) == before:
        return
    publish(
        session,
        workspace_id=task.workspace_id,
        topic=task_topic(task.id),
        type="task:pr_changed",
        payload={
            "taskId": task.id,
            "prUrl": task.pr_url,
            "prNumber": task.pr_number,
            "prState": task.pr_state,
            "prChecksStatus": task.pr_checks_status,
            "prReviewStatus": task.pr_review_status,
            "timestamp": utcnow().isoformat(),
        },
    )


def log_payload(*, owner: dict[str, Any], entry: Any) -> dict[str, Any]:
    """A runner's log entry (schemas.runner.LogEvent) as its stream shows it."""
    return {
        **owner,
        "content": entry.content,
        "stream": entry.stream,
        "timestamp": entry.timestamp.isoformat(),
        "logType": entry.log_type,
        "metadata": entry.metadata or None,
    }


async def publish_logs(
    session: AsyncSession,
    *,
    workspace_id: str,
    topic: str,
    type: str,
    owner: dict[str, Any],
    entries: Sequence[Any],
) -> None:
    """A batch of log entries as events, in one statement (runners send hundreds a second)."""
    seen: set[int] = set()
    rows = []
    for entry in entries:
        if entry.seq in seen:
            continue  # the same entry twice in one batch
        seen.add(entry.seq)
        rows.append(
            {
                "workspace_id": workspace_id,
                "topic": topic,
                "kind": LOG,
                "type": type,
                "payload": log_payload(owner=owner, entry=entry),
                "created_at": utcnow(),
            }
        )
    if rows:
        await session.execute(insert(LiveEvent), rows)
