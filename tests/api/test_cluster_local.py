"""The cluster endpoints on the local launcher: this machine and its local runs, in the
same shapes as on Kubernetes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Optio
from tests.lifecycle_helpers import create_task, wait_for_state

MakeRepo = Callable[..., Path]


async def test_local_machine_and_runs_in_the_cluster_shapes(
    optio: Optio, make_repo: MakeRepo
) -> None:
    task = await create_task(optio.client, make_repo(), "echo local run\necho x > x.txt")
    await wait_for_state(optio.client, task["id"], "pr_opened", timeout=120)

    nodes = (await optio.client.get("/api/cluster/nodes")).json()
    assert nodes["launcher"] == "local"
    (node,) = nodes["nodes"]
    assert node["ready"] is True
    assert int(node["capacity"]["cpu"]) >= 1 and node["capacity"]["memory"].endswith("Ki")
    assert set(node["usage"]) == {"cpu", "memory"}

    # The task moves on when the agent's result is in; the runner process may still be
    # draining its last log batch, and the run shows Running until it exits.
    deadline = time.monotonic() + 30
    while True:
        pods = (await optio.client.get("/api/cluster/pods")).json()
        assert pods["launcher"] == "local"
        (pod,) = pods["pods"]
        if pod["phase"] != "Running" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert pod["taskId"] == task["id"] and pod["workspaceId"] == optio.workspace_id
    assert pod["phase"] == "Succeeded" and pod["name"] == f"optio-run-{pod['runId']}"

    logs = await optio.client.get(f"/api/cluster/pods/{pod['name']}/logs", params={"tailLines": 5})
    assert logs.status_code == 200, logs.text
    assert "run finished: success=True" in logs.json()["logs"]
    assert len(logs.json()["logs"].splitlines()) <= 5
    bad = await optio.client.get(f"/api/cluster/pods/{pod['name']}/logs", params={"tailLines": -1})
    assert bad.status_code == 400
    assert (await optio.client.get("/api/cluster/pods/optio-run-..%2Fx/logs")).status_code == 404
