"""The worker process: one client, all workflows and activities on Optio's task queue, and
the activities of the runs it holds on a queue of its own (workflows/run_placement.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.runtime import Runtime
from temporalio.worker import Worker, WorkerDeploymentConfig

from activities import build_activities
from core.settings import Settings
from core.worker_identity import host_queue
from integrations.launchers.base import Launcher
from integrations.launchers.select import launcher_for
from integrations.sandbox import check_sandbox
from store.db import create_engine, session_factory
from temporal.client import connect_client
from temporal.setup import ensure_search_attributes
from temporal.tracing import client_interceptors, tracer_provider
from worker.failed_over import stop_ended_runs
from worker.metrics import serve_metrics, worker_metrics
from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS

log = logging.getLogger(__name__)


async def connect(
    settings: Settings, runtime: Runtime | None = None, tracing: TracerProvider | None = None
) -> Client:
    # The tracing interceptor on the client applies to the workers built on it too.
    return await connect_client(settings, runtime, client_interceptors(tracing))


def build_worker(
    *,
    client: Client,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    executor: ThreadPoolExecutor,
    task_queue: str,
    activities: Sequence[Callable[..., Any]] | None = None,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        workflow_runner=WORKFLOW_RUNNER,
        activities=activities or build_activities(settings=settings, sessions=sessions),
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
    activities: Sequence[Callable[..., Any]] | None = None,
) -> Worker:
    """Activities only, on this worker's own queue: the runs whose worktree is here."""
    return Worker(
        client,
        task_queue=host_queue(settings),
        activities=activities or build_activities(settings=settings, sessions=sessions),
        activity_executor=executor,
        max_concurrent_activities=400,
    )


# The worker orchestrates in the background; the API answers people. Under full load
# the API goes first in the CPU queue (agents and checks sit lower still, at 10 more).
WORKER_NICENESS = 5


async def run_worker(settings: Settings) -> None:
    os.nice(WORKER_NICENESS)
    metrics = worker_metrics(settings)
    tracing = tracer_provider(settings, service="optio-worker")
    client = await connect(settings, metrics.runtime if metrics else None, tracing)
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
    sessions = session_factory(engine)
    # Runs that failed over while this worker was away must not go on here.
    await stop_ended_runs(launcher, sessions)
    sweeper = asyncio.create_task(sweep_runs(launcher, settings, sessions))
    scraped = asyncio.create_task(serve_metrics(metrics)) if metrics else None
    try:
        # Every activity is async; this pool only satisfies the SDK's check that a sync
        # activity could run, and threads are created on demand.
        with ThreadPoolExecutor(max_workers=400) as executor:
            # One set of activities for both queues: one launcher (one pod watch) per process.
            activities = build_activities(settings=settings, sessions=sessions)
            worker = build_worker(
                client=client,
                settings=settings,
                sessions=sessions,
                executor=executor,
                task_queue=settings.task_queue,
                activities=activities,
            )
            own = build_host_worker(
                client=client,
                settings=settings,
                sessions=sessions,
                executor=executor,
                activities=activities,
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
        if tracing is not None:
            tracing.shutdown()  # what is still batched goes out


async def sweep_runs(
    launcher: Launcher, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Clear what runs left behind, now (runs that ended while no worker was up) and then
    every SWEEP_INTERVAL_S."""
    while True:
        try:
            removed = await asyncio.to_thread(
                launcher.sweep, older_than_seconds=_retention(settings)
            )
            if removed:
                log.info("removed %d finished runs' leftovers", removed)
            await stop_ended_runs(launcher, sessions)
        except Exception:
            # A sweep failing (disk, API server) must not end the worker: the next round
            # tries again.
            log.exception("sweeping run directories failed")
        await asyncio.sleep(SWEEP_INTERVAL_S)


SWEEP_INTERVAL_S = 600


def _retention(settings: Settings) -> float:
    # A finished pod keeps its result for a retried activity, like a run directory, but
    # also holds its node's disk (emptyDir): it goes sooner.
    if settings.launcher == "kubernetes":
        return min(settings.run_retention_seconds, settings.k8s_finished_pod_seconds)
    return settings.run_retention_seconds
