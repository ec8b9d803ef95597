"""Agent runs and the log entries their runners send."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.tokens import hash_token
from schemas.runner import LogEvent
from store import live
from store.models import AgentRun, Task, TaskLog
from store.types import utcnow


async def upsert_run(
    session: AsyncSession,
    *,
    run_id: str,
    task: Task,
    agent_type: str,
    sandbox_name: str,
    token: str,
) -> None:
    run = await session.get(AgentRun, run_id)
    if run is None:
        session.add(
            AgentRun(
                id=run_id,
                task_id=task.id,
                workspace_id=task.workspace_id,
                agent_type=agent_type,
                sandbox_name=sandbox_name,
                token_hash=hash_token(token),
            )
        )
    else:
        run.token_hash = hash_token(token)
    await session.flush()


async def authenticate_run(session: AsyncSession, *, run_id: str, token: str) -> AgentRun | None:
    run = await session.get(AgentRun, run_id)
    if run is None or run.state == "revoked":
        return None
    if not hmac.compare_digest(run.token_hash, hash_token(token)):
        return None
    return run


async def ingest_events(session: AsyncSession, *, run: AgentRun, events: list[LogEvent]) -> int:
    """Store events once per (run, seq): runners re-send after outages."""
    if not events:
        return 0
    rows = [
        {
            "task_id": run.task_id,
            "workspace_id": run.workspace_id,
            "agent_run_id": run.id,
            "seq": e.seq,
            "stream": e.stream,
            "content": e.content,
            "log_type": e.log_type,
            "metadata": e.metadata or None,
            "timestamp": e.timestamp,
        }
        for e in events
    ]
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(TaskLog)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["agent_run_id", "seq"])
        .returning(TaskLog.seq)
    )
    inserted = set((await session.execute(stmt)).scalars())
    # Only the entries stored now: a re-sent batch is no news to anyone watching.
    await live.publish_logs(
        session,
        workspace_id=run.workspace_id,
        topic=live.task_topic(run.task_id),
        type="task:log",
        owner={"taskId": run.task_id, "runId": run.id},
        entries=[e for e in events if e.seq in inserted],
    )
    latest: datetime = max(e.timestamp for e in events)
    if _moved_on(run.last_output_at, latest):
        # At most every ACTIVITY_RESOLUTION: each batch writing two more rows would keep
        # the database's writer busy for timestamps nobody reads to the second.
        await session.execute(
            update(AgentRun).where(AgentRun.id == run.id).values(last_output_at=latest)
        )
        await session.execute(
            update(Task).where(Task.id == run.task_id).values(last_activity_at=utcnow())
        )
    return len(inserted)


ACTIVITY_RESOLUTION = timedelta(seconds=5)


def _moved_on(recorded: datetime | None, latest: datetime) -> bool:
    if recorded is None or recorded.tzinfo is None or latest.tzinfo is None:
        return True
    return latest - recorded >= ACTIVITY_RESOLUTION


async def finish_run(
    session: AsyncSession, *, run_id: str, state: str, exit_code: int | None, error: str | None
) -> None:
    await session.execute(
        update(AgentRun)
        .where(AgentRun.id == run_id)
        .values(state=state, exit_code=exit_code, error_message=error, finished_at=utcnow())
    )
