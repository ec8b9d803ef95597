"""A worker that comes back after its runs failed over stops them: they were recorded
as ended, and the task runs its work again on another worker (docs/deployment.md#workers-
on-several-machines). Left going, such a runner would still push to the task's branch."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations.launchers.base import Launcher
from integrations.launchers.local import LocalLauncher
from store.models import AgentRun
from store.runs import LIVE_RUN_STATES

log = logging.getLogger(__name__)


def live_run_ids(launcher: LocalLauncher) -> list[str]:
    if not launcher.runs_root.is_dir():
        return []
    return [
        run_dir.name
        for run_dir in launcher.runs_root.iterdir()
        if run_dir.is_dir() and launcher.poll(run_dir.name).state == "running"
    ]


async def stop_ended_runs(launcher: Launcher, sessions: async_sessionmaker[AsyncSession]) -> int:
    """Stop this worker's runners whose run the database says has ended. Pods are not
    this worker's: a run's pod is stopped by whichever worker handles the run."""
    if not isinstance(launcher, LocalLauncher):
        return 0
    running = await asyncio.to_thread(live_run_ids, launcher)
    if not running:
        return 0
    async with sessions() as session:
        ended = (
            await session.scalars(
                select(AgentRun.id).where(
                    AgentRun.id.in_(running), AgentRun.state.not_in(LIVE_RUN_STATES)
                )
            )
        ).all()
    for run_id in ended:
        log.warning("stopping run %s: it ended (failed over) while this worker was away", run_id)
        await asyncio.to_thread(launcher.stop, run_id)
    return len(ended)
