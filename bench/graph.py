"""How soon a dependent starts after its dependency completes (issue: task graph).

`python -m bench.graph [--chains N] [--db sqlite|postgres]` starts `optio up`, runs N
chains A -> B of script tasks on an auto-merging local repository, and reads both
tasks' transition times back from the API: from A's `completed` event to B's
`dependencies_met` (B queued) and to B's `running`.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.postgres import scratch_database
from bench.repo import make_bare_repo
from bench.stats import percentile
from bench.system import OptioUp


async def _events(client: httpx.AsyncClient, task_id: str) -> dict[str, datetime]:
    events = (await client.get(f"/api/tasks/{task_id}/events")).json()["events"]
    return {e["toState"]: datetime.fromisoformat(e["createdAt"]) for e in events}


async def _settled(client: httpx.AsyncClient, task_id: str, timeout: float = 120) -> None:
    for _ in range(int(timeout * 10)):
        state = (await client.get(f"/api/tasks/{task_id}")).json()["task"]["state"]
        if state in ("completed", "failed", "needs_attention", "cancelled"):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(task_id)


async def measure(system: OptioUp, repo: Path, chains: int) -> dict[str, list[float]]:
    headers = {"Authorization": f"Bearer {system.token}"}
    async with httpx.AsyncClient(base_url=system.base_url, headers=headers, timeout=30) as c:
        await c.post("/api/repos", json={"repoUrl": str(repo), "autoMerge": True,
                                          "maxConcurrentTasks": 10})  # fmt: skip
        queued: list[float] = []
        running: list[float] = []
        for n in range(chains):
            body: dict[str, Any] = {"title": f"a{n}", "prompt": f"echo a > a{n}",
                                    "repoUrl": str(repo), "agentType": "script"}  # fmt: skip
            a = (await c.post("/api/tasks", json=body)).json()["task"]["id"]
            body = {**body, "title": f"b{n}", "prompt": f"echo b > b{n}", "dependsOn": [a]}
            b = (await c.post("/api/tasks", json=body)).json()["task"]["id"]
            await _settled(c, b)
            done, dependent = await _events(c, a), await _events(c, b)
            queued.append((dependent["queued"] - done["completed"]).total_seconds() * 1000)
            running.append((dependent["running"] - done["completed"]).total_seconds() * 1000)
    return {"completed -> dependent queued (ms)": queued,
            "completed -> dependent running (ms)": running}  # fmt: skip


async def run(db: str, chains: int) -> dict[str, list[float]]:
    root = Path(tempfile.mkdtemp(prefix=f"optio-bench-graph-{db}-"))
    with ExitStack() as stack:
        url = stack.enter_context(scratch_database()) if db == "postgres" else None
        system = OptioUp(data_dir=root / "data", log_path=root / "up.log", database_url=url)
        try:
            await asyncio.to_thread(system.start)
            return await measure(system, make_bare_repo(root), chains)
        finally:
            system.stop()
            shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chains", type=int, default=10)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results = {db: asyncio.run(run(db, args.chains)) for db in dbs}
    print(f"\n{args.chains} chains A -> B, script agent, auto-merge\n")
    print("| metric | " + " | ".join(f"{db} p50 | {db} p95" for db in dbs) + " |")
    print("|---|" + "---:|" * (2 * len(dbs)))
    for metric in results[dbs[0]]:
        cells = []
        for db in dbs:
            values = results[db][metric]
            cells += [f"{percentile(values, 50):.0f}", f"{percentile(values, 95):.0f}"]
        print(f"| {metric} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
