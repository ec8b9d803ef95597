"""The kubernetes launcher's own cost (issue: Kubernetes).

`python -m bench.k8s [--tasks N] [--db sqlite|postgres]` starts `optio up` twice, once per
launcher, and drives N script tasks one at a time through the API. On the kubernetes
launcher the pods run on the Kubernetes API server double and the test kubelet of
tests/k8s (in this process), so the difference between the two is our pod overhead
(create, watch, init container, hand-over to the agent container) plus the test
kubelet's own: its sandbox per container stands for a container start.

Printed: POST -> agent start p50 for each launcher (the agent's first command writes to a
loopback port this process listens on), and the API server requests Optio made per run (the
kubelet's are counted apart, by User-Agent), split into watches and the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.postgres import scratch_database
from bench.repo import make_bare_repo
from bench.stats import percentile
from bench.system import OptioUp

NAMESPACE = "optio-runs"
KUBELET_AGENT = "test-kubelet"


@dataclass
class LauncherUp(OptioUp):
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra_env}


async def _settled(client: httpx.AsyncClient, task_id: str, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = str((await client.get(f"/api/tasks/{task_id}")).json()["task"]["state"])
        if state in ("pr_opened", "completed", "failed", "needs_attention", "cancelled"):
            return state
        await asyncio.sleep(0.1)
    raise TimeoutError(task_id)


class StartProbe:
    """A loopback port the agent's first command writes its tag to (both launchers' runs
    share the network; neither sees the other's files)."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            tag = (await reader.readline()).decode().strip()
            self.seen.setdefault(tag, time.monotonic())
            writer.close()

        self._server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


async def drive(system: OptioUp, repo: Path, tasks: int) -> list[float]:
    """POST -> agent start, ms, one task at a time."""
    headers = {"Authorization": f"Bearer {system.token}"}
    probe = StartProbe()
    await probe.start()
    starts: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=system.base_url, headers=headers, timeout=60) as c:
            for n in range(tasks):
                tag = f"start-{n}"
                body = {
                    "title": f"k8s bench {n}",
                    "prompt": f"echo {tag} > /dev/tcp/127.0.0.1/{probe.port}\necho {n} > f{n}.txt",
                    "repoUrl": str(repo),
                    "agentType": "script",
                }
                sent = time.monotonic()
                response = await c.post("/api/tasks", json=body)
                if response.status_code != 201:
                    raise RuntimeError(f"POST /api/tasks: {response.status_code} {response.text}")
                while tag not in probe.seen:
                    if time.monotonic() - sent > 300:
                        raise TimeoutError(f"task {n}: the agent never started")
                    await asyncio.sleep(0.01)
                starts.append((probe.seen[tag] - sent) * 1000)
                state = await _settled(c, response.json()["task"]["id"])
                if state not in ("pr_opened", "completed"):
                    raise RuntimeError(f"task {n} ended {state}")
    finally:
        probe.close()
    return starts


async def run_local(root: Path, db_url: str | None, tasks: int) -> list[float]:
    system = LauncherUp(data_dir=root / "data", log_path=root / "up.log", database_url=db_url)
    try:
        await asyncio.to_thread(system.start)
        return await drive(system, make_bare_repo(root), tasks)
    finally:
        system.stop()


async def run_kubernetes(
    root: Path, db_url: str | None, tasks: int
) -> tuple[list[float], Counter[str]]:
    from core.settings import Settings
    from integrations.launchers.kubernetes import api_client
    from tests.k8s.apiserver import ApiServerDouble
    from tests.k8s.kubelet import Kubelet

    apiserver = ApiServerDouble()
    apiserver.start()
    kubeconfig = apiserver.kubeconfig(root / "kubeconfig")
    settings = Settings(k8s_kubeconfig=kubeconfig, data_dir=root / "kubelet-settings")
    node = Kubelet(
        api=api_client(settings), root=root / "kubelet", namespace=NAMESPACE, network_paths=[root]
    )
    apiserver.log_source = node.log_path
    node.start()
    system = LauncherUp(
        data_dir=root / "data",
        log_path=root / "up.log",
        database_url=db_url,
        extra_env={
            "OPTIO_LAUNCHER": "kubernetes",
            "OPTIO_K8S_KUBECONFIG": str(kubeconfig),
            "OPTIO_K8S_NAMESPACE": NAMESPACE,
            "OPTIO_K8S_RUNNER_COMMAND": json.dumps([sys.executable, "-m", "runner.pod"]),
        },
    )
    try:
        await asyncio.to_thread(system.start)
        repo = make_bare_repo(root)
        before = Counter(_requests(apiserver))
        starts = await drive(system, repo, tasks)
        # Let the last run's deletes and finished-pod updates land before counting.
        await asyncio.sleep(2)
        made = Counter(_requests(apiserver)) - before
        return starts, made
    finally:
        system.stop()
        node.stop()
        apiserver.stop()


def _requests(apiserver: object) -> Counter[str]:
    """Optio's requests by kind: `GET pods?watch`, `POST pods`, `DELETE pods/<name>`..."""
    counts: Counter[str] = Counter()
    for (agent, method, path), n in list(getattr(apiserver, "requests").items()):  # noqa: B009
        if KUBELET_AGENT in agent:
            continue
        watching = path.endswith("?watch")
        parts = path.removesuffix("?watch").split("/")
        resource = "/".join([parts[5], *(["<name>"] if len(parts) > 6 else []), *parts[7:]])
        counts[f"{method} {resource}{'?watch' if watching else ''}"] += n
    return counts


async def run(db: str, tasks: int) -> None:
    with ExitStack() as stack:
        local_root = Path(tempfile.mkdtemp(prefix="optio-bench-k8s-local-"))
        k8s_root = Path(tempfile.mkdtemp(prefix="optio-bench-k8s-"))
        stack.callback(shutil.rmtree, local_root, True)
        stack.callback(shutil.rmtree, k8s_root, True)
        url = stack.enter_context(scratch_database()) if db == "postgres" else None
        local = await run_local(local_root, url, tasks)
        url2 = stack.enter_context(scratch_database()) if db == "postgres" else None
        pods, requests = await run_kubernetes(k8s_root, url2, tasks)
    total = sum(requests.values())
    print(f"\n{tasks} script tasks one at a time, {db}; wall-clock ms on a shared machine\n")
    print("| launcher | POST -> agent start p50 (ms) | max (ms) |")
    print("|---|---:|---:|")
    print(f"| local | {percentile(local, 50):.0f} | {max(local):.0f} |")
    print(f"| kubernetes (test kubelet) | {percentile(pods, 50):.0f} | {max(pods):.0f} |")
    print(f"\nAPI server requests by Optio: {total} for {tasks} runs = {total / tasks:.1f} per run")
    for kind, n in sorted(requests.items()):
        print(f"  {kind}: {n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    asyncio.run(run(args.db, args.tasks))


if __name__ == "__main__":
    main()
