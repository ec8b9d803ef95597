"""Reading and writing interactive sessions, scoped to a workspace, and their events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFoundError
from store import live
from store.sessions import ACTIVE_STATES, InteractiveSession, SessionChatEvent, SessionPr

MAX_CHAT_CONTENT = 100_000


def session_payload(row: InteractiveSession) -> dict[str, Any]:
    return {
        "id": row.id,
        "workspaceId": row.workspace_id,
        "userId": row.user_id,
        "repoUrl": row.repo_url,
        "baseBranch": row.base_branch,
        "branch": row.branch,
        "state": row.state,
        "agentType": row.agent_type,
        "agentSessionId": row.agent_session_id,
        "model": row.model,
        "costUsd": row.cost_usd,
        "error": row.error,
        "endReason": row.end_reason,
        "createdAt": row.created_at.isoformat(),
        "lastActivityAt": row.last_activity_at.isoformat(),
        "endedAt": row.ended_at.isoformat() if row.ended_at else None,
    }


def chat_payload(event: SessionChatEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "sessionId": event.session_id,
        "stream": event.stream,
        "content": event.content,
        "logType": event.log_type,
        "metadata": event.metadata_,
        "timestamp": event.timestamp.isoformat(),
    }


def pr_payload(pr: SessionPr) -> dict[str, Any]:
    return {
        "id": pr.id,
        "sessionId": pr.session_id,
        "prUrl": pr.pr_url,
        "prNumber": pr.pr_number,
        "createdAt": pr.created_at.isoformat(),
    }


def session_topic(session_id: str) -> str:
    return f"session:{session_id}"


def publish_session(session: AsyncSession, row: InteractiveSession, type: str) -> None:
    live.publish(
        session, workspace_id=row.workspace_id, topic=session_topic(row.id), type=type,
        payload={"sessionId": row.id, "session": session_payload(row)},
    )  # fmt: skip


async def get_session(
    session: AsyncSession, *, workspace_id: str, session_id: str
) -> InteractiveSession:
    row = await session.get(InteractiveSession, session_id)
    if row is None or row.workspace_id != workspace_id:
        raise NotFoundError("Session not found")
    return row


async def list_sessions(
    session: AsyncSession,
    *,
    workspace_id: str,
    repo_url: str | None,
    state: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[InteractiveSession], int]:
    """A page of the workspace's sessions, newest first, and how many are active."""
    base = select(InteractiveSession).where(InteractiveSession.workspace_id == workspace_id)
    if repo_url is not None:
        base = base.where(InteractiveSession.repo_url == repo_url)
    page = base
    if state is not None:
        page = page.where(InteractiveSession.state == state)
    page = page.order_by(InteractiveSession.created_at.desc(), InteractiveSession.id)
    rows = (await session.execute(page.limit(limit).offset(offset))).scalars().all()
    count = select(func.count()).select_from(
        base.where(InteractiveSession.state.in_(ACTIVE_STATES)).subquery()
    )
    return rows, int(await session.scalar(count) or 0)


def add_chat_event(
    session: AsyncSession,
    *,
    row: InteractiveSession,
    log_type: str,
    content: str,
    stream: str = "stdout",
    metadata: dict[str, Any] | None = None,
) -> SessionChatEvent:
    event = SessionChatEvent(
        session_id=row.id, stream=stream, content=content[:MAX_CHAT_CONTENT],
        log_type=log_type, metadata_=metadata or None,
    )  # fmt: skip
    session.add(event)
    return event


async def chat_history(
    session: AsyncSession, *, session_id: str, limit: int
) -> Sequence[SessionChatEvent]:
    """The last `limit` events, oldest first."""
    stmt = (
        select(SessionChatEvent)
        .where(SessionChatEvent.session_id == session_id)
        .order_by(SessionChatEvent.id.desc())
        .limit(limit)
    )
    return list(reversed((await session.execute(stmt)).scalars().all()))


async def session_prs(session: AsyncSession, *, session_id: str) -> Sequence[SessionPr]:
    stmt = select(SessionPr).where(SessionPr.session_id == session_id)
    return (await session.execute(stmt.order_by(SessionPr.created_at))).scalars().all()


async def add_session_pr(
    session: AsyncSession, *, session_id: str, pr_url: str, pr_number: int
) -> SessionPr:
    """Registered once per URL: a repeated registration answers the existing row."""
    stmt = select(SessionPr).where(SessionPr.session_id == session_id, SessionPr.pr_url == pr_url)
    existing = (await session.execute(stmt)).scalar_one_or_none()
    if existing is not None:
        return existing
    pr = SessionPr(session_id=session_id, pr_url=pr_url, pr_number=pr_number)
    session.add(pr)
    await session.flush()
    return pr
