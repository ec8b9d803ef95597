"""Tasks through the whole stack (API, Temporal, worker) on the kubernetes launcher: every
run is a pod on the API server double, played by the test kubelet."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import Optio
from tests.k8s.apiserver import ApiServerDouble
from tests.k8s.conftest import NAMESPACE
from tests.k8s.kubelet import Kubelet
from tests.lifecycle_helpers import create_task, file_on_branch, wait_for_logs, wait_for_state

MakeRepo = Callable[..., Path]
pytestmark = pytest.mark.timeout(300)


def run_pods(apiserver: ApiServerDouble) -> list[dict]:
    return [
        o for (k, ns, _), o in list(apiserver.objects.items()) if k == "pods" and ns == NAMESPACE
    ]


async def test_a_task_runs_through_a_pod_and_the_cluster_endpoints_show_it(
    optio: Optio, node: Kubelet, apiserver: ApiServerDouble, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    script = "echo hello from the pod\necho 'print(1)' > hello.py\necho done"
    task = await create_task(optio.client, repo, script)
    await wait_for_state(optio.client, task["id"], "pr_opened", timeout=120)
    await wait_for_logs(optio.client, task["id"], ["hello from the pod", "done"])
    assert file_on_branch(repo, f"optio/task-{task['id']}", "hello.py") == "print(1)"
    (pod,) = run_pods(apiserver)
    assert pod["metadata"]["labels"]["optio.dev/task-id"] == task["id"]
    assert pod["metadata"]["labels"]["optio.dev/workspace-id"] == optio.workspace_id

    nodes = (await optio.client.get("/api/cluster/nodes")).json()
    assert nodes["launcher"] == "kubernetes"
    assert [n["name"] for n in nodes["nodes"]] == ["node-1"]
    assert nodes["nodes"][0]["ready"] is True
    assert nodes["nodes"][0]["usage"] is None  # no metrics.k8s.io on this cluster

    pods = (await optio.client.get("/api/cluster/pods")).json()["pods"]
    assert [(p["taskId"], p["phase"]) for p in pods] == [(task["id"], "Succeeded")]
    name = pods[0]["name"]
    logs = await optio.client.get(f"/api/cluster/pods/{name}/logs", params={"tailLines": 50})
    assert logs.status_code == 200, logs.text
    assert "hello from the pod" in logs.json()["logs"]
    async with optio.client.stream(
        "GET", f"/api/cluster/pods/{name}/logs", params={"follow": "true"}
    ) as response:
        body = (await response.aread()).decode()
    assert "event: log" in body and "data: hello from the pod" in body and "event: end" in body

    missing = await optio.client.get("/api/cluster/pods/optio-run-nope/logs")
    assert missing.status_code == 404
    viewer = httpx.AsyncClient(base_url=str(optio.anon.base_url))
    async with viewer:
        assert (await viewer.get("/api/cluster/pods")).status_code == 401


async def test_cancel_deletes_the_pod(
    optio: Optio, node: Kubelet, apiserver: ApiServerDouble, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    task = await create_task(optio.client, repo, "echo started\nsleep 600")
    await wait_for_logs(optio.client, task["id"], ["started"], timeout=120)
    response = await optio.client.post(f"/api/tasks/{task['id']}/cancel")
    assert response.status_code == 200, response.text
    await wait_for_state(optio.client, task["id"], "cancelled", timeout=60)
    deadline = 30.0
    while run_pods(apiserver) and deadline > 0:
        await asyncio.sleep(0.1)
        deadline -= 0.1
    assert run_pods(apiserver) == []


def pod_creates(apiserver: ApiServerDouble) -> int:
    return sum(
        n
        for (_, method, path), n in list(apiserver.requests.items())
        if method == "POST" and path.endswith("/pods")
    )


async def test_an_image_that_cannot_be_pulled_fails_the_task_with_the_reason(
    optio: Optio, node: Kubelet, apiserver: ApiServerDouble, make_repo: MakeRepo
) -> None:
    node.unpullable.add(optio.settings.k8s_image)
    repo = make_repo()
    task = await create_task(optio.client, repo, "echo never", maxRetries=3)
    failed = await wait_for_state(optio.client, task["id"], "failed", timeout=120)
    error = failed["task"]["errorMessage"]
    assert f"image {optio.settings.k8s_image} could not be pulled: " in error
    assert "OPTIO_K8S_IMAGE_PULL_SECRETS" in error
    # No tight loop of new pods: a provisioning failure waits for a person (or the
    # workflow's backoff), and the broken pod is deleted.
    created = pod_creates(apiserver)
    await asyncio.sleep(3)
    assert pod_creates(apiserver) == created <= 2
    deadline = 30.0
    while run_pods(apiserver) and deadline > 0:
        await asyncio.sleep(0.1)
        deadline -= 0.1
    assert run_pods(apiserver) == []


async def test_an_evicted_pod_fails_the_run_and_the_task_retries_after_a_backoff(
    optio: Optio, node: Kubelet, apiserver: ApiServerDouble, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    task = await create_task(optio.client, repo, "echo started\nsleep 600", maxRetries=1)
    await wait_for_logs(optio.client, task["id"], ["started"], timeout=120)
    (pod,) = run_pods(apiserver)
    await asyncio.to_thread(node.evict, pod["metadata"]["name"])
    events = []
    deadline = 60.0
    while deadline > 0:
        events = (await optio.client.get(f"/api/tasks/{task['id']}/events")).json()["events"]
        if any(e["toState"] == "failed" for e in events):
            break
        await asyncio.sleep(0.2)
        deadline -= 0.2
    failed = next(e for e in events if e["toState"] == "failed")
    assert "was evicted from node node-1" in (failed.get("message") or "")
    # The retry waits out the backoff instead of creating pods in a loop.
    assert pod_creates(apiserver) == 1
