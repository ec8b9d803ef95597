"""A worker killed with SIGKILL mid-run on the kubernetes launcher: the next worker
re-attaches to the run's pod by its labels. One pod, one push, one PR."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from core.settings import Settings
from store.models import AgentRun, PullRequest
from tests.conftest import Optio, cancel_open_workflows
from tests.e2e.test_crash_safety import (
    PROJECT,
    WorkerProcess,
    count_pushes_hook,
    count_rows,
    worker_env,
)
from tests.k8s.apiserver import ApiServerDouble
from tests.k8s.kubelet import Kubelet
from tests.lifecycle_helpers import create_task, triggers, wait_for_logs, wait_for_state

MakeRepo = Callable[..., Path]
pytestmark = pytest.mark.timeout(300)


def k8s_env(settings: Settings) -> dict[str, str]:
    env = {"OPTIO_LAUNCHER": "kubernetes"}
    for name in Settings.model_fields:
        if name.startswith("k8s_"):
            value = getattr(settings, name)
            if value is None:
                continue
            text = value if isinstance(value, str | Path) else json.dumps(value)
            text = str(text)
            env[f"OPTIO_{name.upper()}"] = text
    return env


class PodWorker(WorkerProcess):
    """`optio worker` on the kubernetes launcher."""

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", "worker", "--no-migrate"],
                cwd=PROJECT,
                env=worker_env(self.settings) | k8s_env(self.settings),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


@pytest.fixture
async def worker(api_only: Optio, node: Kubelet, tmp_path: Path) -> AsyncIterator[PodWorker]:
    process = PodWorker(api_only.settings, tmp_path / "worker.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()
        await cancel_open_workflows(api_only)


async def test_worker_killed_mid_run_reattaches_to_the_pod(
    api_only: Optio,
    worker: PodWorker,
    apiserver: ApiServerDouble,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    repo = make_repo()
    pushes = tmp_path / "pushes.log"
    count_pushes_hook(repo, pushes)
    script = "echo started\nsleep 4\necho ok > f\necho finished"
    task = await create_task(api_only.client, repo, script)
    await wait_for_logs(api_only.client, task["id"], ["started"], timeout=120)

    worker.kill()  # SIGKILL while the agent runs in its pod
    worker.start()

    await wait_for_state(api_only.client, task["id"], "pr_opened", timeout=120)
    assert len(pushes.read_text().splitlines()) == 1  # exactly one push
    assert await count_rows(api_only.settings, PullRequest, task["id"]) == 1
    assert await count_rows(api_only.settings, AgentRun, task["id"]) == 1
    assert (await triggers(api_only.client, task["id"])).count(("pr_opened", "pr_detected")) == 1
    await wait_for_logs(api_only.client, task["id"], ["started", "finished"])
    created = sum(
        n
        for (_, method, path), n in apiserver.requests.items()
        if method == "POST" and path.endswith("/pods")
    )
    assert created == 1  # one pod, never a second
