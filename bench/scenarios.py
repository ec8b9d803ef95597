"""The measurements: POST latency, orchestration overhead, end-to-end throughput.

Every task is an agentType "script" task whose script first records its own start
time in its worktree's `.optio/` (never committed; the sandbox lets a run write nowhere
but its worktree), then writes a file of its own into the worktree, so every task has a
change to open a PR for and no two merges ever conflict.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.system import BenchError

Task = dict[str, Any]
SETTLED = frozenset({"completed", "failed", "needs_attention", "cancelled"})
POLL_S = 1.0
MARK_POLL_S = 0.005
START_MARK = "bench-start"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Posted:
    tag: str
    task: Task | None
    sent_wall: float  # time.time() just before the request went out
    latency_s: float
    error: str | None = None


@dataclass
class Outcomes:
    """How a batch of tasks ended (or where it stood when we stopped waiting)."""

    tasks: dict[str, Task] = field(default_factory=dict)
    timed_out: bool = False

    def states(self) -> Counter[str]:
        return Counter(t["state"] for t in self.tasks.values())

    def not_completed(self) -> list[Task]:
        return [t for t in self.tasks.values() if t["state"] != "completed"]


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass
class Driver:
    client: httpx.AsyncClient
    repo: Path
    # `<data dir>/worktrees`: a task's worktree is `task-<id>` in it while the task runs.
    worktrees: Path

    def script(self, tag: str) -> str:
        # The tag too: a reused spare worktree holds the previous task's mark for a moment.
        return (
            f'echo "{tag} $(date +%s.%N)" > .optio/{START_MARK}\n'
            f"echo ok > f-{tag}\necho done {tag}\n"
        )

    async def post_task(self, tag: str) -> Posted:
        body = {
            "title": f"bench {tag}",
            "prompt": self.script(tag),
            "repoUrl": str(self.repo),
            "agentType": "script",
            # A failure stays a failure: the bench reports it instead of retrying it away.
            "maxRetries": 0,
        }
        sent = time.time()
        began = time.perf_counter()
        try:
            response = await self.client.post("/api/tasks", json=body)
        except httpx.HTTPError as exc:
            return Posted(tag, None, sent, time.perf_counter() - began, f"{type(exc).__name__}")
        latency = time.perf_counter() - began
        if response.status_code != 201:
            error = f"HTTP {response.status_code}: {response.text[:300]}"
            return Posted(tag, None, sent, latency, error)
        return Posted(tag, response.json()["task"], sent, latency)

    async def list_all(self) -> list[Task]:
        tasks: list[Task] = []
        offset = 0
        while True:
            response = await self.client.get("/api/tasks", params={"limit": 1000, "offset": offset})
            if response.status_code != 200:
                raise BenchError(f"GET /api/tasks: HTTP {response.status_code}: {response.text}")
            page = response.json()["tasks"]
            tasks += page
            if len(page) < 1000:
                return tasks
            offset += 1000

    async def wait_settled(self, ids: set[str], *, timeout_s: float, label: str) -> Outcomes:
        """Poll until every task in `ids` is completed/failed/needs_attention/cancelled."""
        outcomes = Outcomes()
        deadline = time.monotonic() + timeout_s
        last_report = time.monotonic()
        while True:
            for task in await self.list_all():
                if task["id"] in ids:
                    outcomes.tasks[task["id"]] = task
            live = [i for i in ids if outcomes.tasks.get(i, {}).get("state") not in SETTLED]
            if not live:
                return outcomes
            now = time.monotonic()
            if now >= deadline:
                outcomes.timed_out = True
                log(f"{label}: {len(live)} of {len(ids)} tasks still live after {timeout_s:.0f} s")
                return outcomes
            if now - last_report >= 15:
                last_report = now
                log(f"{label}: {dict(outcomes.states())}")
            await asyncio.sleep(POLL_S)

    async def wait_mark(self, tag: str, task_id: str, *, timeout_s: float) -> float | None:
        """The agent's own start time, once its script has written it; None if it never does
        (or the task had moved on from its worktree before this saw it)."""
        path = self.worktrees / f"task-{task_id}" / ".optio" / START_MARK
        deadline = time.monotonic() + timeout_s
        next_check = time.monotonic() + POLL_S
        while time.monotonic() < deadline:
            try:
                written_by, moment = path.read_text().split()
                if written_by == tag:
                    return float(moment)
            except (OSError, ValueError):  # not there yet, half written, or another's
                pass
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + POLL_S
                if (await self.task(task_id))["state"] in SETTLED - {"completed"}:
                    return None  # it ended without running the script
            await asyncio.sleep(MARK_POLL_S)
        return None

    async def task(self, task_id: str) -> Task:
        response = await self.client.get(f"/api/tasks/{task_id}")
        response.raise_for_status()
        task: Task = response.json()["task"]
        return task

    async def events(self, task_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(f"/api/tasks/{task_id}/events")
        if response.status_code != 200:
            raise BenchError(f"GET events of {task_id}: HTTP {response.status_code}")
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    async def triggers(self, task_id: str) -> list[str]:
        try:
            return [f"{e['toState']}/{e['trigger']}" for e in await self.events(task_id)]
        except BenchError as exc:
            return [f"({exc})"]


# ---- the three measurements ------------------------------------------------------------


@dataclass
class LatencyResult:
    latencies_ms: list[float]
    errors: list[str]
    outcomes: Outcomes


async def post_latency(driver: Driver, count: int, *, settle_timeout_s: float) -> LatencyResult:
    """`count` sequential POSTs on one keep-alive connection; then let the tasks drain."""
    log(f"latency: {count} sequential POST /api/tasks")
    posted = [await driver.post_task(f"lat-{n}") for n in range(count)]
    errors = [f"{p.tag}: {p.error}" for p in posted if p.error]
    if len(errors) == count:
        raise BenchError(f"every POST /api/tasks failed; the first: {errors[0]}")
    ids = {p.task["id"] for p in posted if p.task}
    slowest = sorted(range(len(posted)), key=lambda n: posted[n].latency_s, reverse=True)[:5]
    shown = ", ".join(f"#{n + 1} {posted[n].latency_s * 1000:.0f} ms" for n in slowest)
    log(f"latency: posted; the slowest: {shown}; waiting for {len(ids)} tasks to drain")
    outcomes = await driver.wait_settled(ids, timeout_s=settle_timeout_s, label="latency drain")
    return LatencyResult([p.latency_s * 1000 for p in posted if not p.error], errors, outcomes)


@dataclass
class OverheadResult:
    overhead_ms: list[float]
    end_to_end_s: list[float]
    missed: list[str]
    outcomes: Outcomes
    # Where the overhead goes, from the task's recorded transitions (ms per task).
    breakdown_ms: dict[str, list[float]] = field(default_factory=dict)


BREAKDOWN = (
    ("POST → queued", None, "queued"),
    ("queued → provisioning", "queued", "provisioning"),
    ("provisioning → agent start", "provisioning", None),
)


async def overhead(
    driver: Driver, count: int, *, start_timeout_s: float, settle_timeout_s: float
) -> OverheadResult:
    """One task at a time: POST, wait for its agent to start, next. Light load by design."""
    log(f"overhead: {count} tasks, one at a time")
    result = OverheadResult([], [], [], Outcomes())
    posted: list[Posted] = []
    started_at: dict[str, float] = {}
    for n in range(count):
        p = await driver.post_task(f"ovh-{n}")
        if p.task is None:
            result.missed.append(f"{p.tag}: POST failed: {p.error}")
            continue
        posted.append(p)
        started = await driver.wait_mark(p.tag, p.task["id"], timeout_s=start_timeout_s)
        if started is None:
            task = await driver.task(p.task["id"])
            result.missed.append(
                f"{p.tag}: agent never started "
                f"(state {task['state']}, error {task['errorMessage']!r})"
            )
            continue
        result.overhead_ms.append((started - p.sent_wall) * 1000)
        started_at[p.task["id"]] = started
    ids = {p.task["id"] for p in posted if p.task}
    result.outcomes = await driver.wait_settled(
        ids, timeout_s=settle_timeout_s, label="overhead drain"
    )
    for p in posted:
        assert p.task is not None
        task = result.outcomes.tasks.get(p.task["id"])
        done = parse_time(task.get("completedAt")) if task else None
        if task and task["state"] == "completed" and done is not None:
            result.end_to_end_s.append(done - p.sent_wall)
        if p.task["id"] in started_at:
            events = await driver.events(p.task["id"])
            moments = {"post": p.sent_wall, "agent": started_at[p.task["id"]]}
            for event in events:
                moments.setdefault(event["toState"], parse_time(event["createdAt"]) or 0.0)
            for label, start, end in BREAKDOWN:
                a, b = moments.get(start or "post"), moments.get(end or "agent")
                if a is not None and b is not None:
                    result.breakdown_ms.setdefault(label, []).append((b - a) * 1000)
    return result


@dataclass
class ThroughputResult:
    submitted: int
    post_errors: list[str]
    post_latencies_ms: list[float]
    outcomes: Outcomes
    elapsed_s: float | None
    tasks_per_s: float | None


async def throughput(
    driver: Driver, count: int, *, in_flight: int, settle_timeout_s: float
) -> ThroughputResult:
    """`count` tasks submitted at once (`in_flight` POSTs at a time), until all complete."""
    log(f"throughput: {count} tasks, {in_flight} POSTs in flight")
    gate = asyncio.Semaphore(in_flight)

    async def one(n: int) -> Posted:
        async with gate:
            return await driver.post_task(f"thr-{n}")

    first = time.time()
    posted = await asyncio.gather(*(one(n) for n in range(count)))
    log(f"throughput: all POSTs answered after {time.time() - first:.1f} s; waiting")
    if all(p.error for p in posted):
        raise BenchError(f"every POST /api/tasks failed; the first: {posted[0].error}")
    ids = {p.task["id"] for p in posted if p.task}
    outcomes = await driver.wait_settled(ids, timeout_s=settle_timeout_s, label="throughput")
    done = [
        parse_time(t.get("completedAt"))
        for t in outcomes.tasks.values()
        if t["state"] == "completed"
    ]
    finished = [d for d in done if d is not None]
    elapsed = (max(finished) - first) if finished else None
    rate = len(finished) / elapsed if elapsed else None
    return ThroughputResult(
        submitted=count,
        post_errors=[f"{p.tag}: {p.error}" for p in posted if p.error],
        post_latencies_ms=[p.latency_s * 1000 for p in posted if not p.error],
        outcomes=outcomes,
        elapsed_s=elapsed,
        tasks_per_s=rate,
    )
