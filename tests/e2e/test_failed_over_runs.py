"""A worker that comes back stops its runners whose run failed over while it was away
(worker/failed_over.py): their task already runs the work on another worker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select, update

from integrations.launchers.local import LocalLauncher
from store.db import create_engine, session_factory
from store.models import AgentRun
from tests.conftest import Optio
from tests.lifecycle_helpers import create_task, wait_for_logs
from worker.failed_over import live_run_ids, stop_ended_runs

MakeRepo = Callable[..., Path]


async def test_a_runner_whose_run_ended_elsewhere_is_stopped(
    optio: Optio, make_repo: MakeRepo
) -> None:
    task = await create_task(optio.client, make_repo(), "echo started\nsleep 60")
    await wait_for_logs(optio.client, task["id"], ["started"])
    launcher = LocalLauncher(runs_root=optio.settings.runs_dir)
    engine = create_engine(optio.settings.database_url_resolved)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            run_id = (
                await session.scalars(select(AgentRun.id).where(AgentRun.task_id == task["id"]))
            ).one()
        assert live_run_ids(launcher) == [run_id]
        # Still live in the database: nothing to stop.
        assert await stop_ended_runs(launcher, sessions) == 0
        assert launcher.poll(run_id).state == "running"
        async with sessions() as session, session.begin():
            await session.execute(
                update(AgentRun).where(AgentRun.id == run_id).values(state="lost")
            )
        assert await stop_ended_runs(launcher, sessions) == 1
        assert launcher.poll(run_id).state != "running"
        assert live_run_ids(launcher) == []
    finally:
        await engine.dispose()
