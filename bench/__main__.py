"""`python -m bench`: the repo-task lifecycle, measured on SQLite and PostgreSQL.

For each database it starts `optio up` the way a user does, connects a bare git
repository with auto-merge, and drives script tasks through the HTTP API. See
docs/benchmarks.md for what each number means.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench import api as api_bench
from bench.postgres import ADMIN_URL, scratch_database
from bench.repo import files_on_branch, make_bare_repo
from bench.report import DbResult, machine, table
from bench.scenarios import Driver, Outcomes, log, overhead, post_latency, throughput
from bench.system import BenchError, CpuSnapshot, MemorySampler, OptioUp, git_revision, snapshot
from integrations.sandbox import Sandbox, sandbox_env


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--tasks", type=int, default=200, help="tasks in the throughput test (default 200)"
    )
    parser.add_argument(
        "--latency-tasks", type=int, default=None, help="sequential POSTs (default min(100, N))"
    )
    parser.add_argument(
        "--overhead-tasks",
        type=int,
        default=None,
        help="one-at-a-time tasks for the overhead (default min(30, N))",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=20,
        help="OPTIO_MAX_CONCURRENT, the repo's maxConcurrentTasks and POSTs in flight",
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="budget per database, seconds (default 900)"
    )
    parser.add_argument(
        "--source",
        choices=["tree", "copy", "head"],
        default="tree",
        help="code under test: the checkout as it is (default), a frozen copy of the "
        "checkout (immune to edits made during the run), or `git archive HEAD`",
    )
    parser.add_argument("--postgres-url", default=ADMIN_URL, help="admin URL for scratch DBs")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp dirs (kept anyway on problems)"
    )
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    parser.add_argument(
        "--no-api",
        action="store_true",
        help="skip the API request-path report (`python -m bench.api`) after the lifecycle",
    )
    args = parser.parse_args(argv)
    if args.tasks < 1:
        parser.error("--tasks must be at least 1")
    args.latency_tasks = args.latency_tasks or min(100, args.tasks)
    args.overhead_tasks = args.overhead_tasks or min(30, args.tasks)
    return args


async def connect_repo(client: httpx.AsyncClient, repo: Path, concurrency: int) -> None:
    body = {"repoUrl": str(repo), "autoMerge": True, "maxConcurrentTasks": concurrency}
    response = await client.post("/api/repos", json=body)
    if response.status_code != 201:
        raise BenchError(f"POST /api/repos: HTTP {response.status_code}: {response.text}")


async def measure(system: OptioUp, result: DbResult, args: argparse.Namespace) -> None:
    root = system.data_dir.parent
    repo = make_bare_repo(root)
    deadline = time.monotonic() + args.timeout

    def remaining() -> float:
        return max(1.0, deadline - time.monotonic())

    limits = httpx.Limits(
        max_connections=args.concurrency + 5, max_keepalive_connections=args.concurrency + 5
    )
    async with httpx.AsyncClient(
        base_url=system.base_url,
        headers={"Authorization": f"Bearer {system.token}"},
        timeout=60,
        limits=limits,
    ) as client:
        await connect_repo(client, repo, args.concurrency)
        driver = Driver(client=client, repo=repo, worktrees=system.data_dir / "worktrees")
        async with asyncio.timeout(args.timeout):
            result.latency = await post_latency(
                driver, args.latency_tasks, settle_timeout_s=min(600.0, remaining())
            )
            result.overhead = await overhead(
                driver,
                args.overhead_tasks,
                start_timeout_s=60.0,
                settle_timeout_s=min(300.0, remaining()),
            )
            before = CpuSnapshot.take(system.children)
            result.throughput = await throughput(
                driver, args.tasks, in_flight=args.concurrency, settle_timeout_s=remaining()
            )
            result.cpu = CpuSnapshot.take(system.children).since(before)
        await explain_unfinished(driver, system, result)
    result.sandbox_start_ms = await asyncio.to_thread(sandbox_starts, root, 30)
    on_main = files_on_branch(repo)
    for phase in (result.latency, result.overhead, result.throughput):
        assert phase is not None
        for task in phase.outcomes.tasks.values():
            tag = task["title"].removeprefix("bench ")
            if task["state"] == "completed" and f"f-{tag}" not in on_main:
                result.missing_on_main.append(f"{tag} ({task['id']})")


def sandbox_starts(root: Path, count: int) -> list[float]:
    """Wall ms of `count` empty sandboxes, started and ended one after the other."""
    worktree = root / "sandbox-probe"
    worktree.mkdir(exist_ok=True)
    argv = Sandbox(worktree=worktree).command(["/bin/true"])
    times = []
    for _ in range(count):
        started = time.perf_counter()
        subprocess.run(argv, check=True, env=sandbox_env(home="/tmp"))
        times.append((time.perf_counter() - started) * 1000)
    return times


async def explain_unfinished(driver: Driver, system: OptioUp, result: DbResult) -> None:
    failed_posts = [
        *(result.latency.errors if result.latency else []),
        *(result.overhead.missed if result.overhead else []),
        *(result.throughput.post_errors if result.throughput else []),
    ]
    result.problems += failed_posts[:10]
    outcomes = Outcomes()
    for phase in (result.latency, result.overhead, result.throughput):
        if phase is not None:
            outcomes.tasks.update(phase.outcomes.tasks)
            if phase.outcomes.timed_out:
                result.problems.append("a phase stopped waiting for its tasks (timeout)")
    for task in outcomes.not_completed()[:10]:
        steps = " > ".join(await driver.triggers(task["id"]))
        lines = [
            f"task {task['id']} ({task['title']}): {task['state']}, "
            f"errorMessage={task['errorMessage']!r}",
            f"    transitions: {steps}",
        ]
        for log_path in runner_logs_of(system, task["id"]):
            tail = log_path.read_text(errors="replace").splitlines()[-6:]
            lines.append(f"    {log_path}:")
            lines += [f"      {line}" for line in tail]
        result.problems.append("\n".join(lines))
    more = len(outcomes.not_completed()) - 10
    if more > 0:
        result.problems.append(f"... and {more} more tasks not completed")


def runner_logs_of(system: OptioUp, task_id: str) -> list[Path]:
    runs = system.data_dir / "runs"
    if not runs.is_dir():
        return []
    return [
        run / "runner.log"
        for run in runs.iterdir()
        if (run / "runner.log").exists()
        and task_id in (run / "spec.json").read_text(errors="replace")
    ]


SUSPICIOUS = re.compile(r"traceback|error|exception|warning|could not|failed", re.IGNORECASE)
BENIGN = re.compile(r"success=True error=None")
NOISE = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}|[0-9a-f]{16,}|\d+(\.\d+)?")


def suspicious_lines(paths: list[Path], *, top: int = 8) -> list[str]:
    """The most frequent suspicious log lines, numbers and ids folded so repeats group."""
    counts: Counter[str] = Counter()
    example: dict[str, str] = {}
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if SUSPICIOUS.search(line) and not BENIGN.search(line):
                key = NOISE.sub("#", line)[:200]
                counts[key] += 1
                example.setdefault(key, f"{path.name}: {line[:300]}")
    return [f"{n}x {example[key]}" for key, n in counts.most_common(top)]


async def run_db(name: str, args: argparse.Namespace, source: Path | None) -> DbResult:
    result = DbResult(name=name)
    root = Path(tempfile.mkdtemp(prefix=f"optio-bench-{name}-", dir="/tmp"))
    log(f"== {name}: working in {root}")
    system: OptioUp | None = None
    sampler: MemorySampler | None = None
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
                max_concurrent=args.concurrency,
                source_dir=source,
            )
            log(f"{name}: starting `optio up`")
            await asyncio.to_thread(system.start)
            result.startup_s = system.startup_s
            log(f"{name}: healthy after {system.startup_s:.1f} s; processes {system.children}")
            sampler = MemorySampler(
                pids=dict(system.children), runner_marker=str(system.data_dir / "runs")
            )
            sampler.start()
            await measure(system, result, args)
        except TimeoutError:
            result.error = f"did not finish within --timeout {args.timeout:.0f} s"
        except (BenchError, httpx.HTTPError, RuntimeError, OSError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            # Synchronous on purpose: this must run to the end even when we are cancelled.
            if system is not None and system.process is not None:
                code = system.process.poll()
                if code is not None:
                    result.problems.append(
                        f"`optio up` exited with code {code} during the run; last lines of "
                        f"{system.log_path}:\n{system.log_tail(15)}"
                    )
            if sampler is not None:
                result.peak_mib = sampler.peak_mib()
                sampler.stop()
                result.max_runners = sampler.max_runners
            if system is not None:
                log(f"{name}: stopping `optio up` (SIGINT)")
                system.stop()
                result.problems += system.leftovers
                logs = [system.log_path, *sorted((system.data_dir / "runs").glob("*/runner.log"))]
                result.log_findings = suspicious_lines(logs)
    if result.error:
        log(f"{name}: ERROR {result.error}")
    if args.keep or result.error or result.problems:
        log(f"{name}: kept {root} (optio-up.log, data/runs/*/runner.log)")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return result


async def main_async(args: argparse.Namespace, source: Path | None) -> list[DbResult]:
    names = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    return [await run_db(name, args, source) for name in names]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="optio-bench-src-", dir="/tmp") as tmp:
        if args.source != "tree":
            source: Path | None = Path(tmp) / "src"
            revision = snapshot(Path(tmp) / "src", mode=args.source)
            log(f"code under test: {revision}, from {source}")
        else:
            revision, source = git_revision(), None
        results = asyncio.run(main_async(args, source))
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    report = "\n".join(
        [
            f"`{command.strip()}` at {revision} on {machine()}; throughput {args.tasks} tasks, "
            f"{args.latency_tasks} sequential POSTs, {args.overhead_tasks} one-at-a-time tasks, "
            f"limit {args.concurrency}",
            "",
            table(results),
        ]
    )
    print()
    print(report)
    bad = False
    for r in results:
        if r.error or r.problems:
            bad = True
            print(f"\n{r.name}: {'ERROR ' + r.error if r.error else 'problems'}")
            for problem in r.problems:
                print(f"  - {problem}")
        if r.log_findings:
            print(f"\n{r.name}: most frequent warning/error lines in the logs")
            for line in r.log_findings:
                print(f"  {line}")
    print(f"\nbench took {time.monotonic() - started:.0f} s")
    if args.output:
        args.output.write_text(report + "\n")
    not_completed = any(
        sum(v for k, v in r.all_states().items() if k != "completed") for r in results
    )
    api_failed = False
    if not args.no_api:
        print("\n## API request path (python -m bench.api)\n")
        api_failed = api_bench.main(["--db", args.db, "--postgres-url", args.postgres_url]) != 0
    return 1 if bad or not_completed or api_failed else 0


if __name__ == "__main__":
    sys.exit(main())
