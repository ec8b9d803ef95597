"""A worker killed with SIGKILL mid-run on the kubernetes launcher: the next worker
re-attaches to the run's pod by its labels. One pod, one push, one PR."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from store.models import AgentRun, PullRequest
from tests.conftest import Optio
from tests.e2e.test_crash_safety import (
    count_pushes_hook,
    count_rows,
)
from tests.k8s.apiserver import ApiServerDouble
from tests.k8s.workers import PodWorker
from tests.lifecycle_helpers import create_task, triggers, wait_for_logs, wait_for_state

MakeRepo = Callable[..., Path]
pytestmark = pytest.mark.timeout(300)


async def test_worker_killed_mid_run_reattaches_to_the_pod(
    api_only: Optio,
    pod_worker: PodWorker,
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

    pod_worker.kill()  # SIGKILL while the agent runs in its pod
    pod_worker.start()

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
