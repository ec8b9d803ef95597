"""Log ingest stores every entry; the run's activity timestamps move every few seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.runner import LogEvent
from store.auth import bootstrap_local_admin
from store.db import create_engine, session_factory, transaction
from store.models import AgentRun, Task, TaskLog
from store.runs import ACTIVITY_RESOLUTION, ingest_events

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


async def task_with_run(sessions: async_sessionmaker[AsyncSession], *, run_id: str) -> Task:
    async with transaction(sessions) as session:
        admin = await bootstrap_local_admin(session)
        task = Task(workspace_id=admin.workspace_id, title="t", prompt="p",
                    repo_url="/r.git", agent_type="script")  # fmt: skip
        session.add(task)
        await session.flush()
        session.add(AgentRun(id=run_id, task_id=task.id, workspace_id=task.workspace_id,
                             agent_type="script", sandbox_name="s", token_hash="h"))  # fmt: skip
    return task


async def test_activity_timestamps_move_at_their_resolution(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        task = await task_with_run(sessions, run_id="run-1")

        async def send(seq: int, at: datetime) -> tuple[datetime | None, datetime | None]:
            async with transaction(sessions) as session:
                run = await session.get(AgentRun, "run-1")
                assert run is not None
                event = LogEvent(seq=seq, timestamp=at, content=f"line {seq}")
                await ingest_events(session, run=run, events=[event])
            async with sessions() as session:
                run, row = await session.get(AgentRun, "run-1"), await session.get(Task, task.id)
                assert run is not None and row is not None
                return run.last_output_at, row.last_activity_at

        first = await send(1, T0)
        assert first[0] == T0 and first[1] is not None
        # Within the resolution: the entry is stored, the timestamps stay.
        assert await send(2, T0 + ACTIVITY_RESOLUTION / 2) == first
        later = T0 + ACTIVITY_RESOLUTION + timedelta(seconds=1)
        moved = await send(3, later)
        assert moved[0] == later and moved[1] is not None and moved[1] >= first[1]  # type: ignore[operator]
        async with sessions() as session:
            count = await session.scalar(select(func.count()).select_from(TaskLog))
        assert count == 3
    finally:
        await engine.dispose()


async def test_nul_characters_in_agent_output_are_stored_replaced(database_url: str) -> None:
    # An agent may print binary output; PostgreSQL refuses NUL in text and jsonb.
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        await task_with_run(sessions, run_id="run-nul")
        async with transaction(sessions) as session:
            run = await session.get(AgentRun, "run-nul")
            assert run is not None
            event = LogEvent(seq=0, timestamp=T0, content="a\x00b", metadata={"k\x00": ["\x00"]})
            await ingest_events(session, run=run, events=[event])
        async with sessions() as session:
            row = await session.scalar(select(TaskLog).where(TaskLog.agent_run_id == "run-nul"))
        assert row is not None and row.content == "a\ufffdb"
        assert row.metadata_ == {"k\ufffd": ["\ufffd"]}
    finally:
        await engine.dispose()
