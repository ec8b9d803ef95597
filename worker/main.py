"""The worker process: one client, all workflows and activities on Optio's task queue, and
the activities of the runs it holds on a queue of its own (workflows/run_placement.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from activities import build_activities
from core.settings import Settings
from core.worker_identity import host_queue
from integrations.launchers.local import LocalLauncher
from integrations.sandbox import check_sandbox
from store.db import create_engine, session_factory
from temporal.client import connect_client
from temporal.setup import ensure_search_attributes
from worker.failed_over import stop_ended_runs
from worker.metrics import serve_metrics, worker_metrics
from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS

log = logging.getLogger(__name__)


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    return await connect_client(settings, runtime)


def build_worker(
    *,
    client: Client,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    executor: ThreadPoolExecutor,
    task_queue: str,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        workflow_runner=WORKFLOW_RUNNER,
        activities=build_activities(settings=settings, sessions=sessions),
        activity_executor=executor,
        max_concurrent_activities=400,
    )


def build_host_worker(
    *,
    client: Client,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    executor: ThreadPoolExecutor,
) -> Worker:
    """Activities only, on this worker's own queue: the runs whose worktree is here."""
    return Worker(
        client,
        task_queue=host_queue(settings),
        activities=build_activities(settings=settings, sessions=sessions),
        activity_executor=executor,
        max_concurrent_activities=400,
    )


# The worker orchestrates in the background; the API answers people. Under full load
# the API goes first in the CPU queue (agents and checks sit lower still, at 10 more).
WORKER_NICENESS = 5


async def run_worker(settings: Settings) -> None:
    os.nice(WORKER_NICENESS)
    metrics = worker_metrics(settings)
    client = await connect(settings, metrics.runtime if metrics else None)
    await ensure_search_attributes(client, namespace=settings.temporal_namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Activities are async and push git and file work to threads: give them enough.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=64))
    engine = create_engine(settings.database_url_resolved)
    # Agents and checks run only inside the sandbox: refuse to start without one.
    await asyncio.to_thread(check_sandbox)
    launcher = LocalLauncher(runs_root=settings.runs_dir)
    # The first agent run should not wait for the runner's imports.
    await asyncio.to_thread(launcher.warm)
    sessions = session_factory(engine)
    # Runs that failed over while this worker was away must not go on here.
    await stop_ended_runs(launcher, sessions)
    sweeper = asyncio.create_task(sweep_runs(launcher, settings, sessions))
    scraped = asyncio.create_task(serve_metrics(metrics)) if metrics else None
    try:
        # Every activity is async; this pool only satisfies the SDK's check that a sync
        # activity could run, and threads are created on demand.
        with ThreadPoolExecutor(max_workers=400) as executor:
            worker = build_worker(
                client=client,
                settings=settings,
                sessions=sessions,
                executor=executor,
                task_queue=settings.task_queue,
            )
            own = build_host_worker(
                client=client, settings=settings, sessions=sessions, executor=executor
            )
            async with worker, own:
                log.info(
                    "worker polling task queues %s and %s", settings.task_queue, own.task_queue
                )
                await stop.wait()
    finally:
        sweeper.cancel()
        if scraped is not None:
            scraped.cancel()
        await engine.dispose()


async def sweep_runs(
    launcher: LocalLauncher, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Clear what runs left behind, now (runs that ended while no worker was up) and then
    every SWEEP_INTERVAL_S."""
    while True:
        try:
            removed = await asyncio.to_thread(
                launcher.sweep, older_than_seconds=settings.run_retention_seconds
            )
            if removed:
                log.info("removed %d finished run directories", removed)
            await stop_ended_runs(launcher, sessions)
        except Exception:
            # The next round tries again; a sweep must not end the worker.
            log.exception("sweeping run directories failed")
        await asyncio.sleep(SWEEP_INTERVAL_S)


SWEEP_INTERVAL_S = 600
