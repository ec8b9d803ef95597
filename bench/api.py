"""`python -m bench.api`: the API's request path beside a plain baseline, in one run.

It starts `optio up` the way a user does (fresh data dir, SQLite by default), connects a
bare git repository, writes `--tasks` completed tasks straight into the database, and
then measures, for each request of the table in docs/benchmarks.md#api, our API and a
bare ASGI app answering the same bytes from memory on the same server stack
(bench/baseline_app.py):

- p50 / p99 of `--requests` sequential requests on one keep-alive connection;
- req/s of `--concurrent-requests` requests over `--concurrency` keep-alive
  connections (what `ab -k -c 10` does), with bench/http_load.py;
- the server process's CPU per request (/proc/<pid>/stat, its threads included), over
  both phases, less what it spends with no request at all (measured for 5 s first):
  what our code costs per request, whatever else the machine is doing;
- ours/baseline of that CPU: the number to compare across machines and loads.

Then `--posts` sequential `POST /api/tasks` (script tasks that start running at once),
and the API's and the worker's RSS after startup and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import http_load
from bench.api_seed import seed_completed_tasks
from bench.postgres import ADMIN_URL, scratch_database
from bench.repo import make_bare_repo
from bench.report import machine
from bench.scenarios import log
from bench.system import BenchError, OptioUp, cpu_seconds, free_port, git_revision, status_kib

HOST = "127.0.0.1"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--tasks", type=int, default=400, help="completed tasks in the DB")
    parser.add_argument("--requests", type=int, default=200, help="sequential, per request")
    parser.add_argument("--concurrent-requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--posts", type=int, default=100, help="sequential POST /api/tasks")
    parser.add_argument(
        "--post-concurrency",
        type=int,
        default=0,
        help="then as many POST /api/tasks again with this many in flight (0: skip)",
    )
    parser.add_argument(
        "--rows",
        default="tasks,task,repos,health",
        help="which GET rows to measure (comma-separated of tasks, task, repos, health)",
    )
    parser.add_argument(
        "--api-processes",
        type=int,
        default=1,
        help="OPTIO_API_PROCESSES: API processes of `optio up` (CPU is their sum)",
    )
    parser.add_argument("--postgres-url", default=ADMIN_URL, help="admin URL for scratch DBs")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument(
        "--source-dir",
        type=Path,
        help="run `optio up` from this checkout instead (e.g. a `git worktree` of main, "
        "for a before/after on the same machine and load)",
    )
    return parser.parse_args(argv)


@dataclass
class Measured:
    p50_ms: float
    p99_ms: float
    req_s: float
    cpu_ms: float  # server CPU per request
    statuses: dict[int, int]
    # Server CPU seconds per second in the concurrent phase: how many cores it got.
    cores: float = 0.0


@dataclass
class Row:
    label: str
    size: int
    ours: Measured
    base: Measured


@dataclass
class ApiResult:
    db: str
    rows: list[Row] = field(default_factory=list)
    post: Measured | None = None
    post_concurrent: Measured | None = None
    post_concurrency: int = 0
    rss_idle_mib: float = 0.0
    rss_end_mib: float = 0.0
    worker_rss_idle_mib: float = 0.0
    worker_rss_end_mib: float = 0.0
    idle_cpu_ms_s: float = 0.0  # API CPU ms per second with no request
    error: str | None = None


def cpu_of(pids: list[int]) -> float:
    """User+system CPU seconds of these processes together."""
    total = 0.0
    for pid in pids:
        used = cpu_seconds(pid)
        if used is None:
            raise BenchError(f"process {pid} is gone")
        total += used[0]
    return total


async def idle_cpu_rate(pids: list[int], seconds: float = 5.0) -> float:
    """CPU seconds per second the process spends with no request (the live bus's poll,
    the start sweeps): taken out of the per-request figure, which on a loaded machine
    (few requests a second) it would otherwise swell."""
    before, started = cpu_of(pids), time.monotonic()
    await asyncio.sleep(seconds)
    return (cpu_of(pids) - before) / (time.monotonic() - started)


async def measure(
    port: int,
    pids: list[int],
    request: http_load.Request,
    args: argparse.Namespace,
    idle: float = 0.0,
) -> Measured:
    # Warm up: connections, caches (with several processes, over connections enough to
    # reach each of them).
    await http_load.run(HOST, port, request, total=20 * len(pids), concurrency=2 * len(pids))
    cpu_before, started = cpu_of(pids), time.monotonic()
    sequential = await http_load.run(HOST, port, request, total=args.requests)
    cpu_concurrent = cpu_of(pids)
    concurrent = await http_load.run(
        HOST, port, request, total=args.concurrent_requests, concurrency=args.concurrency
    )
    cpu = max(0.0, cpu_of(pids) - cpu_before - idle * (time.monotonic() - started))
    statuses = dict(sequential.statuses)
    for status, n in concurrent.statuses.items():
        statuses[status] = statuses.get(status, 0) + n
    return Measured(
        p50_ms=1000 * http_load.percentile(sequential.latencies, 50),
        p99_ms=1000 * http_load.percentile(sequential.latencies, 99),
        req_s=concurrent.count / concurrent.wall_s,
        cpu_ms=1000 * cpu / (sequential.count + concurrent.count),
        statuses=statuses,
        cores=(cpu_of(pids) - cpu_concurrent) / concurrent.wall_s,
    )


@dataclass
class Baseline:
    port: int
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, answers: Path, root: Path) -> Baseline:
        port = free_port()
        command = [sys.executable, "-m", "bench.baseline_app", str(port), str(answers)]
        with open(root / "baseline.log", "wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BenchError(f"the baseline app exited: {(root / 'baseline.log').read_text()}")
            try:
                httpx.get(f"http://{HOST}:{port}/", timeout=1)
                return cls(port, process)
            except httpx.HTTPError:
                time.sleep(0.1)
        process.kill()
        raise BenchError("the baseline app did not answer within 30 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


async def read_path(
    system: OptioUp, result: ApiResult, root: Path, args: argparse.Namespace
) -> str:
    """Measures the GET rows; returns the connected repository's URL."""
    token, pids = system.token, system.api_pids
    async with httpx.AsyncClient(
        base_url=system.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        bare = make_bare_repo(root)
        response = await client.post(
            "/api/repos", json={"repoUrl": str(bare), "maxConcurrentTasks": 20}
        )
        if response.status_code != 201:
            raise BenchError(f"POST /api/repos: HTTP {response.status_code}: {response.text}")
        repo_url = response.json()["repo"]["repoUrl"]
        me = (await client.get("/api/auth/me")).json()
        workspace_id = me["user"]["workspaceId"]
        await asyncio.to_thread(
            seed_completed_tasks,
            system.database_url or f"sqlite:///{system.data_dir / 'optio.db'}",
            workspace_id=workspace_id,
            repo_url=repo_url,
            count=args.tasks,
        )
        listed = (await client.get("/api/tasks", params={"limit": 50})).json()["tasks"]
        if len(listed) != min(50, args.tasks):
            raise BenchError(f"GET /api/tasks listed {len(listed)} tasks, not 50")
    every = {
        "tasks": ("GET /api/tasks (50)", "/api/tasks?limit=50"),
        "task": ("GET /api/tasks/:id", f"/api/tasks/{listed[0]['id']}"),
        "repos": ("GET /api/repos (1)", "/api/repos"),
        "health": ("GET /api/health", "/api/health"),
    }
    wanted = [name.strip() for name in args.rows.split(",") if name.strip()]
    if unknown := set(wanted) - set(every):
        raise BenchError(f"--rows: unknown {', '.join(sorted(unknown))}")
    paths = dict(every[name] for name in wanted)
    answers: dict[str, dict[str, object]] = {}
    for path in paths.values():
        answer = await http_load.run(
            HOST, system.api_port, http_load.Request("GET", path, token), total=1, keep_body=True
        )
        answers[f"GET {path}"] = {"status": 200, "body": answer.last_body.decode()}
    (root / "answers.json").write_text(json.dumps(answers))
    baseline = Baseline.start(root / "answers.json", root)
    result.idle_cpu_ms_s = 1000 * await idle_cpu_rate(pids)
    try:
        for label, path in paths.items():
            request = http_load.Request("GET", path, token)
            log(f"{result.db}: {label}")
            ours = await measure(system.api_port, pids, request, args, result.idle_cpu_ms_s / 1000)
            base = await measure(baseline.port, [baseline.process.pid], request, args)
            if set(ours.statuses) != {200}:
                raise BenchError(f"{label}: statuses {ours.statuses}")
            size = len(str(answers[f"GET {path}"]["body"]).encode())
            result.rows.append(Row(label, size, ours, base))
    finally:
        baseline.stop()
    return str(repo_url)


async def post_path(
    system: OptioUp, result: ApiResult, repo_url: str, args: argparse.Namespace
) -> None:
    if args.posts < 1:
        return
    script = 'echo ok > "f-$(date +%s%N)"; echo done'
    body = json.dumps(
        {"title": "bench post", "prompt": script, "repoUrl": repo_url, "agentType": "script",
         "maxRetries": 0}
    ).encode()  # fmt: skip
    request = http_load.Request("POST", "/api/tasks", system.token, body)
    log(f"{result.db}: {args.posts} sequential POST /api/tasks (the tasks run meanwhile)")
    result.post = await posts(system, request, result, total=args.posts, concurrency=1)
    if args.post_concurrency > 0:
        log(f"{result.db}: {args.posts} POST /api/tasks, {args.post_concurrency} in flight")
        result.post_concurrency = args.post_concurrency
        result.post_concurrent = await posts(
            system, request, result, total=args.posts, concurrency=args.post_concurrency
        )


async def posts(
    system: OptioUp,
    request: http_load.Request,
    result: ApiResult,
    *,
    total: int,
    concurrency: int,
) -> Measured:
    pids = system.api_pids
    cpu_before, started = cpu_of(pids), time.monotonic()
    posted = await http_load.run(
        HOST, system.api_port, request, total=total, concurrency=concurrency
    )
    idle = result.idle_cpu_ms_s / 1000 * (time.monotonic() - started)
    cpu = max(0.0, cpu_of(pids) - cpu_before - idle)
    if set(posted.statuses) != {201}:
        raise BenchError(f"POST /api/tasks: statuses {posted.statuses}")
    return Measured(
        p50_ms=1000 * http_load.percentile(posted.latencies, 50),
        p99_ms=1000 * http_load.percentile(posted.latencies, 99),
        req_s=posted.count / posted.wall_s,
        cpu_ms=1000 * cpu / posted.count,
        statuses=posted.statuses,
    )


def rss_mib(pid: int) -> float:
    return (status_kib(pid, "VmRSS") or 0) / 1024


async def run_db(name: str, args: argparse.Namespace) -> ApiResult:
    result = ApiResult(db=name)
    root = Path(tempfile.mkdtemp(prefix=f"optio-bench-api-{name}-", dir="/tmp"))
    system: OptioUp | None = None
    with ExitStack() as stack:
        try:
            url = (
                stack.enter_context(scratch_database(args.postgres_url))
                if name == "postgres"
                else None
            )
            system = OptioUp(
                data_dir=root / "data",
                log_path=root / "optio-up.log",
                database_url=url,
                source_dir=args.source_dir.resolve() if args.source_dir else None,
                api_processes=args.api_processes,
            )
            log(f"{name}: starting `optio up` in {root}")
            await asyncio.to_thread(system.start)
            await asyncio.sleep(2)  # let startup work (sweeps, first connections) settle
            result.rss_idle_mib = max(map(rss_mib, system.api_pids))
            result.worker_rss_idle_mib = rss_mib(system.children["worker"])
            repo_url = await read_path(system, result, root, args)
            await post_path(system, result, repo_url, args)
            result.rss_end_mib = max(map(rss_mib, system.api_pids))
            result.worker_rss_end_mib = rss_mib(system.children["worker"])
        except (BenchError, httpx.HTTPError, http_load.LoadError, OSError, RuntimeError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            log(f"{name}: ERROR {result.error}")
        finally:
            if system is not None:
                system.stop()
    if args.keep or result.error:
        log(f"{name}: kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return result


def table(results: list[ApiResult]) -> str:
    lines = [
        "| db | request | bytes | p50 / p99 ms (base) | req/s at 10 (base) "
        "| API CPU ms/req (base) | CPU ours/base | API cores busy at 10 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.error:
            lines.append(f"| {r.db} | ERROR {r.error} | | | | | |")
            continue
        for row in r.rows:
            o, b = row.ours, row.base
            lines.append(
                f"| {r.db} | `{row.label}` | {row.size} | {o.p50_ms:.2f} / {o.p99_ms:.2f} "
                f"({b.p50_ms:.2f} / {b.p99_ms:.2f}) | {o.req_s:.0f} ({b.req_s:.0f}) "
                f"| {o.cpu_ms:.2f} ({b.cpu_ms:.3f}) | {o.cpu_ms / b.cpu_ms:.1f} "
                f"| {o.cores:.2f} |"
            )
        if r.post:
            p = r.post
            lines.append(
                f"| {r.db} | `POST /api/tasks` (sequential, tasks running) | | "
                f"{p.p50_ms:.1f} / {p.p99_ms:.1f} | | {p.cpu_ms:.2f} | |"
            )
        if r.post_concurrent:
            p = r.post_concurrent
            lines.append(
                f"| {r.db} | `POST /api/tasks` ({r.post_concurrency} in flight, tasks running) "
                f"| | {p.p50_ms:.1f} / {p.p99_ms:.1f} | {p.req_s:.0f} | {p.cpu_ms:.2f} | |"
            )
        lines.append(
            f"| {r.db} | API RSS after startup / at the end | | "
            f"{r.rss_idle_mib:.0f} / {r.rss_end_mib:.0f} MiB | | | |"
        )
        lines.append(
            f"| {r.db} | worker RSS after startup / at the end | | "
            f"{r.worker_rss_idle_mib:.0f} / {r.worker_rss_end_mib:.0f} MiB | | | |"
        )
        lines.append(
            f"| {r.db} | API CPU with no request (taken out of the rows above) | | | | "
            f"{r.idle_cpu_ms_s:.1f} ms/s | |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results = [asyncio.run(run_db(name, args)) for name in names]
    command = "python -m bench.api " + " ".join(argv if argv is not None else sys.argv[1:])
    revision = git_revision(args.source_dir) if args.source_dir else git_revision()
    report = (
        f"`{command.strip()}` at {revision} on {machine()}; {args.tasks} completed tasks, "
        f"{args.requests} sequential + {args.concurrent_requests} requests at "
        f"{args.concurrency} concurrent per row; {args.api_processes} API process(es) "
        f"(CPU summed over them, RSS of the largest)\n\n{table(results)}"
    )
    print()
    print(report)
    if args.output:
        args.output.write_text(report + "\n")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
