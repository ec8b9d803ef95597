"""Messages a person sends to a task's agent: queued, delivered, acknowledged.

A message to a running agent that takes input mid-run (Claude Code) is handed to its
runner, which writes it to the agent's stdin (`delivered`) and sees the agent echo it
back (`acked`). Any other message waits for the task's next run and reaches the agent in
that run's prompt (`delivered` when the run's spec is built). Each step publishes its
event (`task:message_delivered`, `task:message_acked`) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store import live
from store.models import TaskMessage
from store.types import utcnow


def message_payload(m: TaskMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "taskId": m.task_id,
        "userId": m.user_id,
        "content": m.content,
        "mode": m.mode,
        "workspaceId": m.workspace_id,
        "createdAt": m.created_at.isoformat(),
        "deliveredAt": m.delivered_at.isoformat() if m.delivered_at else None,
        "ackedAt": m.acked_at.isoformat() if m.acked_at else None,
        "deliveryError": m.delivery_error,
    }


async def undelivered(session: AsyncSession, *, task_id: str) -> Sequence[TaskMessage]:
    stmt = (
        select(TaskMessage)
        .where(TaskMessage.task_id == task_id, TaskMessage.delivered_at.is_(None))
        .order_by(TaskMessage.created_at, TaskMessage.id)
    )
    return (await session.execute(stmt)).scalars().all()


async def _of_task(
    session: AsyncSession, *, task_id: str, ids: Sequence[str]
) -> Sequence[TaskMessage]:
    if not ids:
        return []
    stmt = select(TaskMessage).where(TaskMessage.task_id == task_id, TaskMessage.id.in_(ids))
    return (await session.execute(stmt)).scalars().all()


def _publish(session: AsyncSession, message: TaskMessage, type: str) -> None:
    live.publish(
        session,
        workspace_id=message.workspace_id,
        topic=live.task_topic(message.task_id),
        type=type,
        payload=message_payload(message),
    )


def mark_delivered(session: AsyncSession, messages: Sequence[TaskMessage]) -> None:
    """Delivered now, unless already (a runner re-reporting after a lost answer)."""
    for message in messages:
        if message.delivered_at is None:
            message.delivered_at = utcnow()
            _publish(session, message, "task:message_delivered")


async def report_delivery(
    session: AsyncSession, *, task_id: str, delivered: Sequence[str], acked: Sequence[str]
) -> None:
    """What a runner reports: written to the agent's stdin, echoed back by the agent."""
    mark_delivered(session, await _of_task(session, task_id=task_id, ids=delivered))
    for message in await _of_task(session, task_id=task_id, ids=acked):
        mark_delivered(session, [message])  # an echo proves the delivery too
        if message.acked_at is None:
            message.acked_at = utcnow()
            _publish(session, message, "task:message_acked")
