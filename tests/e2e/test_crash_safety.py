"""Crash safety: a killed worker or a stopped API loses nothing and doubles nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.settings import Settings
from store.db import create_engine, session_factory
from store.models import AgentRun, PullRequest
from tests.conftest import Optio, cancel_open_workflows, stop_sandboxes
from tests.lifecycle_helpers import create_task, triggers, wait_for_logs, wait_for_state

MakeRepo = Callable[..., Path]
PROJECT = Path(__file__).resolve().parents[2]


def worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTIO_")}
    env.update(
        OPTIO_DATA_DIR=str(settings.data_dir),
        OPTIO_DATABASE_URL=settings.database_url_resolved,
        OPTIO_TEMPORAL_ADDRESS=settings.temporal_target,
        OPTIO_TASK_QUEUE=settings.task_queue,
        OPTIO_API_PORT=str(settings.api_port),
        OPTIO_ENCRYPTION_KEY=settings.encryption_key or "",
        OPTIO_PR_WATCH_INTERVAL_MS=str(settings.pr_watch_interval_ms),
    )
    return env


class WorkerProcess:
    """`optio worker` as a real process, so it can be killed with SIGKILL."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", "worker", "--no-migrate"],
                cwd=PROJECT,
                env=worker_env(self.settings),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@asynccontextmanager
async def running_worker(optio: Optio, log: Path) -> AsyncIterator[WorkerProcess]:
    """An `optio worker` process; afterwards no workflow or sandbox of the test is left."""
    process = WorkerProcess(optio.settings, log)
    process.start()
    try:
        yield process
    finally:
        process.stop()
        await cancel_open_workflows(optio)
        stop_sandboxes(optio.settings)


@pytest.fixture
async def worker(api_only: Optio, tmp_path: Path) -> AsyncIterator[WorkerProcess]:
    async with running_worker(api_only, tmp_path / "worker.log") as process:
        yield process


def count_pushes_hook(repo: Path, log: Path) -> None:
    hook = repo / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\ncat >> {log}\n")
    hook.chmod(0o755)


async def count_rows(settings: Settings, model: type, task_id: str) -> int:
    engine = create_engine(settings.database_url_resolved)
    async with session_factory(engine)() as session:
        stmt = select(func.count()).select_from(model).where(model.task_id == task_id)  # type: ignore[attr-defined]
        n = int((await session.execute(stmt)).scalar_one())
    await engine.dispose()
    return n


async def test_worker_killed_mid_run_yields_one_agent_one_push_one_pr(
    api_only: Optio, worker: WorkerProcess, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    pushes = tmp_path / "pushes.log"
    count_pushes_hook(repo, pushes)
    # The agent sees nothing outside its sandbox: each start shows as a "started" line.
    script = "echo started\nsleep 4\necho ok > f\necho finished"
    task = await create_task(api_only.client, repo, script)
    await wait_for_logs(api_only.client, task["id"], ["started"])

    worker.kill()  # SIGKILL while the agent runs
    await asyncio.sleep(1)
    worker.start()

    await wait_for_state(api_only.client, task["id"], "pr_opened", timeout=90)
    assert len(pushes.read_text().splitlines()) == 1  # exactly one push
    assert await count_rows(api_only.settings, PullRequest, task["id"]) == 1
    assert await count_rows(api_only.settings, AgentRun, task["id"]) == 1
    steps = await triggers(api_only.client, task["id"])
    assert steps.count(("pr_opened", "pr_detected")) == 1
    # Exactly one agent process: one "started".
    await wait_for_logs(api_only.client, task["id"], ["started", "finished"])


async def test_logs_posted_while_the_api_is_down_arrive_later(
    api_only: Optio, worker: WorkerProcess, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    lines = [f"line {n}" for n in range(8)]
    script = "\n".join(f"echo '{line}'; sleep 0.5" for line in lines) + "\necho ok > f"
    task = await create_task(api_only.client, repo, script)
    await wait_for_logs(api_only.client, task["id"], lines[:1])

    await api_only.server.stop()  # the API goes away while the agent keeps writing
    await asyncio.sleep(3)
    await api_only.server.start()

    await wait_for_state(api_only.client, task["id"], "pr_opened", timeout=60)
    await wait_for_logs(api_only.client, task["id"], lines)
