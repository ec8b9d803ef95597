"""The local forge's PR watch: heartbeats whatever the poll interval, quiet cancels, and
no checks checkout left behind."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.pull_requests import PullRequestActivities
from schemas.workflow import WatchPrInput
from store.db import create_engine, session_factory
from tests.conftest import Optio
from tests.lifecycle_helpers import create_task, wait_for_state

MakeRepo = Callable[..., Path]


async def test_the_watch_beats_while_it_waits_and_takes_a_cancel_quietly(
    optio: Optio, make_repo: MakeRepo, caplog: pytest.LogCaptureFixture
) -> None:
    repo = make_repo()
    task = await create_task(optio.client, repo, "echo change > feature.txt")
    await wait_for_state(optio.client, task["id"], "pr_opened")
    # A poll interval far longer than the heartbeat timeout, as with the defaults (30 s).
    settings = optio.settings.model_copy(update={"pr_watch_interval_ms": 600_000})
    engine = create_engine(settings.database_url_resolved)
    prs = PullRequestActivities(settings=settings, sessions=session_factory(engine))
    beats: list[float] = []
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=timedelta(seconds=0.6))
    env.on_heartbeat = lambda *details: beats.append(time.monotonic())
    try:
        known = await env.run(
            prs.watch_pull_request, WatchPrInput(task_id=task["id"], known=None, max_wait_seconds=0)
        )
        beats.clear()
        watch = asyncio.ensure_future(
            env.run(
                prs.watch_pull_request,
                WatchPrInput(task_id=task["id"], known=known, max_wait_seconds=3600),
            )
        )
        async with asyncio.timeout(10):
            while len(beats) < 4:  # one per 0.2 s (a third of the timeout), not per poll
                await asyncio.sleep(0.05)
        assert max(b - a for a, b in zip(beats, beats[1:], strict=False)) < 0.6
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            env.cancel()
            with pytest.raises(asyncio.CancelledError):
                await watch
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        await engine.dispose()


async def test_a_checks_checkout_left_by_a_killed_worker_is_removed(
    optio: Optio, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    body = {"repoUrl": str(repo), "autoMerge": True, "testCommand": "test -f f"}
    assert (await optio.client.post("/api/repos", json=body)).status_code == 201
    task = await create_task(optio.client, repo, "sleep 1\necho ok > f")
    # What a worker killed while running the checks leaves behind.
    leftover = optio.settings.data_dir / "checks" / f"task-{task['id']}" / "optio-checks-x"
    (leftover / "src").mkdir(parents=True)
    await wait_for_state(optio.client, task["id"], "completed")
    handle = optio.temporal.get_workflow_handle(f"task-{task['id']}")
    await asyncio.wait_for(handle.result(), 30)
    assert not leftover.parent.exists()


def beats_into(beats: list[float]) -> Callable[..., None]:
    return lambda *details: beats.append(time.monotonic())


async def test_a_long_step_beats_as_an_activity_and_not_as_a_local_one() -> None:
    """The merge runs as a local activity: heartbeats there only fail ("UnknownActivity")."""
    from activities.pull_requests import _heartbeat_while

    for is_local in (False, True):
        beats: list[float] = []
        env = ActivityEnvironment()
        env.info = dataclasses.replace(
            env.info, is_local=is_local, heartbeat_timeout=timedelta(seconds=0.3)
        )
        env.on_heartbeat = beats_into(beats)
        step: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        waiting = asyncio.ensure_future(env.run(_heartbeat_while, step))
        started = time.monotonic()
        async with asyncio.timeout(5):
            # Two beats' time of a regular activity: one beat per 0.1 s (a third of 0.3 s).
            while len(beats) < 2 and time.monotonic() - started < (1.0 if is_local else 5):
                await asyncio.sleep(0.02)
        step.set_result("merged")
        assert await waiting == "merged"
        assert (len(beats) == 0) if is_local else (len(beats) >= 2), (is_local, beats)
