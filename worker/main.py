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
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig

from activities import build_activities
from core.settings import Settings
from core.worker_identity import host_queue
from integrations.launchers.base import Launcher
from integrations.launchers.select import launcher_for
from integrations.sandbox import check_sandbox
from store.db import create_engine, session_factory
from temporal.setup import ensure_search_attributes
from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS

log = logging.getLogger(__name__)


async def connect(settings: Settings) -> Client:
    return await Client.connect(settings.temporal_target, namespace=settings.temporal_namespace)


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
        deployment_config=deployment_config(settings.worker_build_id, task_queue),
    )


def deployment_config(build_id: str | None, task_queue: str) -> WorkerDeploymentConfig | None:
    """Worker Versioning, when a build id is set: every run is pinned to the build it began
    on, so a change of workflow code needs no patch for runs in flight (docs/temporal.md).
    Unset, the worker is unversioned and replays every run on its own code."""
    if build_id is None:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(deployment_name=task_queue, build_id=build_id),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
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
    client = await connect(settings)
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
    launcher = launcher_for(settings)
    # The first agent run should not wait for the runner's imports (or the pod list).
    await asyncio.to_thread(launcher.warm)
    sweeper = asyncio.create_task(sweep_runs(launcher, settings))
    try:
        # Every activity is async; this pool only satisfies the SDK's check that a sync
        # activity could run, and threads are created on demand.
        with ThreadPoolExecutor(max_workers=400) as executor:
            sessions = session_factory(engine)
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
        await engine.dispose()


async def sweep_runs(launcher: Launcher, settings: Settings) -> None:
    """Clear what runs left behind, now (runs that ended while no worker was up) and then
    every SWEEP_INTERVAL_S."""
    while True:
        try:
            removed = await asyncio.to_thread(
                launcher.sweep, older_than_seconds=_retention(settings)
            )
            if removed:
                log.info("removed %d finished runs' leftovers", removed)
        except Exception:  # a sweep failing (disk, API server) must not end the worker
            log.exception("sweeping run directories failed")
        await asyncio.sleep(SWEEP_INTERVAL_S)


SWEEP_INTERVAL_S = 600


def _retention(settings: Settings) -> float:
    # A finished pod keeps its result for a retried activity, like a run directory, but
    # also holds its node's disk (emptyDir): it goes sooner.
    if settings.launcher == "kubernetes":
        return min(settings.run_retention_seconds, settings.k8s_finished_pod_seconds)
    return settings.run_retention_seconds
