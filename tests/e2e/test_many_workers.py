"""Two `optio worker` processes with data dirs of their own: two hosts on one machine.

Each run's worktree activities go to the worker holding it; the concurrency limits hold
across both; and a host lost mid-run (its worker and its runs killed with SIGKILL, never
restarted) costs no task and doubles none: its runs fail over to the other worker after
OPTIO_WORKER_FAILOVER_SECONDS.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from store.db import create_engine, session_factory
from store.models import AgentRun, PullRequest, Task
from tests.conftest import Optio, cancel_open_workflows, free_port, stop_sandboxes
from tests.e2e.test_crash_safety import PROJECT, WorkerProcess, worker_env
from tests.lifecycle_helpers import create_task, triggers

MakeRepo = Callable[..., Path]
TASKS = 40
GLOBAL_LIMIT = 4
REPO_LIMIT = 2  # the first repository's own limit
FAILOVER_SECONDS = 5
METRICS_TOKEN = "scrape-me-" + "x" * 20


class Host(WorkerProcess):
    """A worker with a data dir (worktrees, runs, mirrors) of its own."""

    def __init__(self, optio: Optio, root: Path, name: str) -> None:
        super().__init__(
            optio.settings.model_copy(update={"data_dir": root / name}), root / f"{name}.log"
        )
        self.name = name
        self.metrics_port = free_port()

    def start(self) -> None:
        env = worker_env(self.settings)
        env.update(
            OPTIO_WORKER_ID=self.name,
            OPTIO_WORKER_FAILOVER_SECONDS=str(FAILOVER_SECONDS),
            OPTIO_MAX_CONCURRENT=str(GLOBAL_LIMIT),
            OPTIO_WORKER_METRICS_ADDRESS=f"127.0.0.1:{self.metrics_port}",
            OPTIO_METRICS_TOKEN=METRICS_TOKEN,
        )
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", "worker", "--no-migrate"],
                cwd=PROJECT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def live_runs(self) -> list[int]:
        """The pids of this host's runners that are still going (no result yet)."""
        pids = []
        for run_dir in (self.settings.data_dir / "runs").glob("*"):
            pid_file = run_dir / "pid"
            if not pid_file.exists() or (run_dir / "result.json").exists():
                continue
            pid = int(pid_file.read_text().split()[0])
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            pids.append(pid)
        return pids

    def lose(self) -> None:
        """The machine is gone: the worker and every run it holds, at once."""
        runs = self.live_runs()
        self.kill()
        for pid in runs:
            try:
                os.killpg(pid, signal.SIGKILL)  # a runner leads its own session
            except ProcessLookupError:
                pass


@pytest.fixture
async def hosts(api_only: Optio, tmp_path: Path) -> AsyncIterator[tuple[Host, Host]]:
    a, b = Host(api_only, tmp_path, "host-a"), Host(api_only, tmp_path, "host-b")
    async with AsyncExitStack() as stack:
        for host in (a, b):
            host.start()
            stack.callback(host.stop)
            stack.callback(stop_sandboxes, host.settings)
        yield a, b
        await cancel_open_workflows(api_only)


async def wait_until(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def states(optio: Optio, ids: list[str]) -> Counter[str]:
    engine = create_engine(optio.settings.database_url_resolved)
    async with session_factory(engine)() as session:
        rows = (await session.execute(select(Task.state).where(Task.id.in_(ids)))).scalars()
        found = Counter(rows)
    await engine.dispose()
    return found


def max_overlap(spans: list[tuple[datetime, datetime]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        running += step
        peak = max(peak, running)
    return peak


def utc(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


@pytest.mark.timeout(900)
async def test_forty_tasks_on_two_hosts_one_lost_mid_run(
    api_only: Optio, hosts: tuple[Host, Host], make_repo: MakeRepo
) -> None:
    a, b = hosts
    repos = [make_repo(), make_repo()]
    response = await api_only.client.post(
        "/api/repos", json={"repoUrl": str(repos[0]), "maxConcurrentTasks": REPO_LIMIT}
    )
    assert response.status_code in (200, 201), response.text
    script = "echo started\nsleep 1\necho ok > f\necho finished"
    ids = [
        (await create_task(api_only.client, repos[n % 2], script, title=f"t{n}"))["id"]
        for n in range(TASKS)
    ]

    # The first host seen holding a running agent is lost there, mid-run; the other
    # carries on. (Which one gets a run first is the placement's choice, not the test's.)
    holding: list[Host] = []

    def a_host_holds_a_run() -> bool:
        holding[:] = [host for host in (a, b) if host.live_runs()][:1]
        return bool(holding)

    await wait_until(a_host_holds_a_run, timeout=360, what="a host to hold a running run")
    lost_host = holding[0]
    survivor = b if lost_host is a else a
    lost_host.lose()

    async def all_done() -> bool:
        return (await states(api_only, ids)).get("pr_opened", 0) == TASKS

    deadline = time.monotonic() + 600
    while not await all_done():
        found = await states(api_only, ids)
        assert time.monotonic() < deadline, f"not all tasks opened a PR: {found}"
        await asyncio.sleep(0.5)

    engine = create_engine(api_only.settings.database_url_resolved)
    async with session_factory(engine)() as session:
        runs = (
            (await session.execute(select(AgentRun).where(AgentRun.task_id.in_(ids))))
            .scalars()
            .all()
        )
        prs = (
            (await session.execute(select(PullRequest).where(PullRequest.task_id.in_(ids))))
            .scalars()
            .all()
        )
        tasks = {
            t.id: t for t in (await session.execute(select(Task).where(Task.id.in_(ids)))).scalars()
        }
    await engine.dispose()

    # Nothing lost, nothing doubled: one PR and one succeeded run per task.
    assert Counter(pr.task_id for pr in prs) == Counter(dict.fromkeys(ids, 1))
    succeeded = Counter(run.task_id for run in runs if run.state == "succeeded")
    assert succeeded == Counter(dict.fromkeys(ids, 1))
    lost = [run for run in runs if run.state == "lost"]
    assert lost, f"{lost_host.name}'s run was not failed over"
    for run in lost:
        message = run.error_message or ""
        assert lost_host.name in message and "unreachable" in message
        assert ("failed", "worker_lost") in await triggers(api_only.client, run.task_id)
    # Both hosts ran agents. A runner may still be sending its last log batch after its
    # task moved on: the survivor's runners end on their own.
    await wait_until(
        lambda: survivor.live_runs() == [], timeout=60, what="the survivor's runners to end"
    )
    assert any((a.settings.data_dir / "runs").iterdir())
    assert any((b.settings.data_dir / "runs").iterdir())

    # The limits held across both hosts: runs' lifetimes never overlapped beyond them.
    spans = [(utc(r.started_at), utc(r.finished_at)) for r in runs if r.finished_at is not None]
    assert len(spans) == len(runs)
    assert max_overlap(spans) <= GLOBAL_LIMIT
    first_repo = [
        (utc(r.started_at), utc(r.finished_at))
        for r in runs
        if tasks[r.task_id].repo_url == str(repos[0]) and r.finished_at is not None
    ]
    assert max_overlap(first_repo) <= REPO_LIMIT

    # The surviving host's /metrics: ours and the Temporal SDK's, behind the token.
    url = f"http://127.0.0.1:{survivor.metrics_port}/metrics"
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(url)).status_code == 401
        scraped = await http.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
    assert "optio_run_duration_seconds" in families
    durations = [
        s.value
        for s in families["optio_run_duration_seconds"].samples
        if s.name.endswith("_count") and s.labels.get("outcome") == "succeeded"
    ]
    assert sum(durations) >= 1
    assert any(name.startswith("temporal_") for name in families)
    queue_wait = [
        s for s in families["optio_queue_wait_seconds"].samples if s.name.endswith("_count")
    ]
    assert queue_wait and queue_wait[0].value >= 1
