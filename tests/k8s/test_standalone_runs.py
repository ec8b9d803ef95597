"""Standalone runs (a standalone task's runs, no repository) on the kubernetes launcher: a
pod per attempt, like a repo task's run, its scratch repository made inside the pod."""

from __future__ import annotations

import pytest

from tests.blueprints.conftest import create_standalone, eventually
from tests.blueprints.test_standalone import run_state, start
from tests.conftest import Optio
from tests.k8s.apiserver import ApiServerDouble
from tests.k8s.kubelet import Kubelet
from tests.k8s.test_end_to_end import run_pods
from tests.k8s.workers import PodWorker

pytestmark = pytest.mark.timeout(300)


async def test_a_standalone_run_is_a_pod(
    optio: Optio, node: Kubelet, apiserver: ApiServerDouble
) -> None:
    job = await create_standalone(
        optio.client,
        prompt='echo "in $(basename $PWD) at $(git rev-parse --abbrev-ref HEAD)"\n'
        "echo report > report.txt\necho hello {{who}}",
        paramsSchema={"type": "object", "properties": {"who": {"type": "string"}}},
    )
    run_id = await start(optio, job["id"], who="pods")
    run = await run_state(optio, job["id"], run_id, "completed", "failed")
    assert run["state"] == "completed", run
    assert run["output"] == {"summary": "hello pods"}

    async def logs() -> list[str]:
        response = await optio.client.get(f"/api/tasks/{job['id']}/runs/{run_id}/logs")
        contents = [entry["content"] for entry in response.json()["logs"]]
        return contents if "hello pods" in contents else []

    contents = await eventually(logs)
    assert f"in worktree at optio/run-{run_id}.0" in contents

    (pod,) = run_pods(apiserver)
    labels = pod["metadata"]["labels"]
    assert labels["optio.dev/run-id"] == f"{run_id}.0"
    assert labels["optio.dev/task-id"] == run_id
    assert labels["optio.dev/workspace-id"] == optio.workspace_id
    assert pod["spec"]["automountServiceAccountToken"] is False
    # Nothing of the run on the worker's disk: its scratch origin lived in the pod.
    assert not (optio.settings.data_dir / "scratch").exists()
    assert not (optio.settings.runs_dir / f"{run_id}.0").exists()
    pods = (await optio.client.get("/api/cluster/pods")).json()["pods"]
    assert [(p["taskId"], p["phase"]) for p in pods] == [(job["id"], "Succeeded")]
    name = pods[0]["name"]
    logs = await optio.client.get(f"/api/cluster/pods/{name}/logs", params={"tailLines": 50})
    assert logs.status_code == 200, logs.text
    assert "hello pods" in logs.json()["logs"]
    missing = await optio.client.get(f"/api/cluster/pods/optio-run-{run_id}.9x/logs")
    assert missing.status_code == 404


async def test_a_worker_killed_mid_run_reattaches_to_the_standalone_runs_pod(
    api_only: Optio, pod_worker: PodWorker, apiserver: ApiServerDouble
) -> None:
    job = await create_standalone(
        api_only.client, prompt="echo started\nsleep 4\necho finished", maxRetries=0
    )
    run_id = await start(api_only, job["id"])

    async def started() -> bool:
        response = await api_only.client.get(f"/api/tasks/{job['id']}/runs/{run_id}/logs")
        return "started" in [entry["content"] for entry in response.json()["logs"]]

    await eventually(started, timeout=120)
    pod_worker.kill()  # SIGKILL while the agent runs in its pod
    pod_worker.start()

    run = await run_state(api_only, job["id"], run_id, "completed", "failed")
    assert run["state"] == "completed", run
    assert run["output"] == {"summary": "finished"} and run["retryCount"] == 0
    created = sum(
        n
        for (_, method, path), n in apiserver.requests.items()
        if method == "POST" and path.endswith("/pods")
    )
    assert created == 1  # the next worker re-attached: one pod, never a second
