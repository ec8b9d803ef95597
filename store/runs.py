"""Agent runs and the log entries their runners send."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.tokens import hash_token
from schemas.runner import LogEvent, RunResult
from store import live
from store.costs import track_events, track_result
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
    # Stored and published without NUL characters (PostgreSQL refuses them).
    events = [
        e.model_copy(
            update={"content": without_nul(e.content), "metadata": without_nul(e.metadata)}
        )
        for e in events
    ]
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
    await track_events(session, run=run, events=events)
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
# PostgreSQL stores no NUL in text or jsonb; an agent's binary output may hold some.
_NUL, _REPLACEMENT = "\x00", "\ufffd"


def without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(_NUL, _REPLACEMENT) if _NUL in value else value
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


LIVE_RUN_STATES = ("starting", "running")


def _moved_on(recorded: datetime | None, latest: datetime) -> bool:
    if recorded is None or recorded.tzinfo is None or latest.tzinfo is None:
        return True
    return latest - recorded >= ACTIVITY_RESOLUTION


async def finish_run(
    session: AsyncSession,
    *,
    run_id: str,
    state: str,
    exit_code: int | None,
    error: str | None,
    result: RunResult | None = None,
) -> None:
    # The first final state stays: a run cancelled (or failed) by its task is not
    # re-labelled by the agent's exit that the stop caused.
    await session.execute(
        update(AgentRun)
        .where(AgentRun.id == run_id, AgentRun.state.in_(LIVE_RUN_STATES))
        .values(state=state, exit_code=exit_code, error_message=error, finished_at=utcnow())
    )
    if result is not None:
        # The run's final word on its cost, whether it succeeded or not.
        await track_result(session, run_id=run_id, result=result)
