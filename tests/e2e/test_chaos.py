"""Chaos: the worker, the API and the Temporal server killed together at each step of one
task (queued, provisioning, running, CI running); the task still ends with one agent
start, one PR and one merge. Its own Temporal dev server (a SQLite file that survives a
SIGKILL), so the session's server is left alone; bounded by its waits (about 2 minutes).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from core.settings import Settings
from store.models import AgentRun, PullRequest
from temporal.devserver import dev_server_command
from tests.conftest import Optio, free_port
from tests.e2e.test_crash_safety import WorkerProcess, count_rows, running_worker
from tests.lifecycle_helpers import create_task, triggers, wait_for_logs, wait_for_state

MakeRepo = Callable[..., Path]


class TemporalProcess:
    """`temporal server start-dev` on a file of its own, killable with SIGKILL."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                dev_server_command(self.settings),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                await Client.connect(self.settings.temporal_target)
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
async def temporal_server(tmp_path: Path) -> AsyncIterator[TemporalProcess]:
    data = tmp_path / "temporal"
    data.mkdir()
    server_settings = Settings(
        data_dir=data,
        temporal_port=free_port(),
        temporal_ui_port=free_port(),
        temporal_metrics_port=free_port(),
        temporal_http_port=free_port(),
    )
    server = TemporalProcess(server_settings, tmp_path / "temporal.log")
    await server.start()
    yield server
    server.kill()


@pytest.fixture
def settings(settings: Settings, temporal_server: TemporalProcess) -> Settings:
    settings.temporal_address = temporal_server.settings.temporal_target
    return settings


@pytest.fixture
async def worker(api_only: Optio, tmp_path: Path) -> AsyncIterator[WorkerProcess]:
    async with running_worker(api_only, tmp_path / "worker.log") as process:
        yield process


async def wait_until(check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await check()
        if got:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError("the task never reached the step")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_everything_killed_at_each_step_still_merges_once(
    api_only: Optio,
    worker: WorkerProcess,
    temporal_server: TemporalProcess,
    make_repo: MakeRepo,
) -> None:
    repo = make_repo()
    body = {"repoUrl": str(repo), "autoMerge": True, "testCommand": "sleep 4; true"}
    assert (await api_only.client.post("/api/repos", json=body)).status_code == 201
    task = await create_task(api_only.client, repo, "echo started\nsleep 4\necho ok > f")
    task_id = task["id"]

    async def current() -> dict[str, Any]:
        return dict((await api_only.client.get(f"/api/tasks/{task_id}")).json()["task"])

    async def kill_everything() -> None:
        worker.kill()
        await api_only.server.stop()
        temporal_server.kill()
        await temporal_server.start()
        await api_only.server.start()
        worker.start()

    # queued: killed right behind the start
    await kill_everything()
    # provisioning: caught while the sandbox is being prepared, if the task is there
    # when looked at (it may pass in well under a second)
    reached = await wait_until(
        lambda: _state_in(current, {"provisioning", "running", "pr_opened", "completed"}), 90
    )
    if reached == "provisioning":
        await kill_everything()
    # running: the agent printed its first line
    await wait_for_logs(api_only.client, task_id, ["started"], timeout=90)
    await kill_everything()
    # CI running: the PR is open, and its first watch round runs the checks (sleep 4)
    await wait_until(lambda: _state_in(current, {"pr_opened"}), 90)
    await kill_everything()

    await wait_for_state(api_only.client, task_id, "completed", timeout=120)
    steps = await triggers(api_only.client, task_id)
    assert steps.count(("pr_opened", "pr_detected")) == 1
    assert steps.count(("completed", "auto_merged")) == 1
    assert await count_rows(api_only.settings, PullRequest, task_id) == 1
    assert await count_rows(api_only.settings, AgentRun, task_id) == 1
    await wait_for_logs(api_only.client, task_id, ["started"])  # one agent process
    merged = subprocess.run(
        ["git", "--git-dir", str(repo), "log", "--format=%s", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert len(merged) == 2, merged  # the initial commit and one merge


async def _state_in(current: Callable[[], Any], states: set[str]) -> str | None:
    state = str((await current())["state"])
    return state if state in states else None
