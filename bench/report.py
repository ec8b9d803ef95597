"""The results of one database's run, and the markdown table comparing them."""

from __future__ import annotations

import math
import os
import platform
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.scenarios import LatencyResult, OverheadResult, ThroughputResult
from bench.stats import fmt, percentile

# Issue 21's targets (docs/benchmarks.md, "Where each target stands").
POST_P99_TARGET_MS = 50.0
POST_LOAD_P99_TARGET_MS = 150.0
OVERHEAD_P50_TARGET_MS = 300.0
THROUGHPUT_TARGET = 5.0
CPU_PER_TASK_TARGET_S = 0.35
PEAK_RSS_TARGET_MIB = 200.0
# Optio's own processes in the throughput phase (the machine's other users left out).
OPTIO_CPU = ("worker", "worker children", "api", "temporal")


@dataclass
class DbResult:
    name: str
    startup_s: float | None = None
    latency: LatencyResult | None = None
    overhead: OverheadResult | None = None
    throughput: ThroughputResult | None = None
    peak_mib: dict[str, float] = field(default_factory=dict)
    max_runners: int = 0
    # CPU seconds used during the throughput phase, per process (see CpuSnapshot.since).
    cpu: dict[str, float] = field(default_factory=dict)
    missing_on_main: list[str] = field(default_factory=list)
    # Wall ms to start and end an empty sandbox (`bwrap ... /bin/true`), the fixed cost
    # every agent run and every check pays.
    sandbox_start_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    log_findings: list[str] = field(default_factory=list)
    error: str | None = None

    def all_states(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for phase in (self.latency, self.overhead, self.throughput):
            if phase is not None:
                total += phase.outcomes.states()
        return total


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" ✓" if ok else " ✗")


def _below(value: float, target: float) -> bool | None:
    return None if math.isnan(value) else value < target


Row = tuple[str, Callable[[DbResult], str], str]


def _post_p(pct: float) -> Callable[[DbResult], str]:
    def cell(r: DbResult) -> str:
        if r.latency is None:
            return "n/a"
        value = percentile(r.latency.latencies_ms, pct)
        ok = _below(value, POST_P99_TARGET_MS) if pct == 99 else None
        return fmt(value) + _mark(ok)

    return cell


def _post_load_p99(r: DbResult) -> str:
    if r.throughput is None:
        return "n/a"
    value = percentile(r.throughput.post_latencies_ms, 99)
    return fmt(value) + _mark(_below(value, POST_LOAD_P99_TARGET_MS))


def _overhead_p(pct: float) -> Callable[[DbResult], str]:
    def cell(r: DbResult) -> str:
        if r.overhead is None:
            return "n/a"
        value = percentile(r.overhead.overhead_ms, pct)
        ok = _below(value, OVERHEAD_P50_TARGET_MS) if pct == 50 else None
        return fmt(value, 0) + _mark(ok)

    return cell


def _breakdown(label: str) -> Callable[[DbResult], str]:
    def cell(r: DbResult) -> str:
        if r.overhead is None:
            return "n/a"
        return fmt(percentile(r.overhead.breakdown_ms.get(label, []), 50), 0)

    return cell


def _sandbox_p50(r: DbResult) -> str:
    return fmt(percentile(r.sandbox_start_ms, 50), 1) if r.sandbox_start_ms else "-"


def _end_to_end(r: DbResult) -> str:
    if r.overhead is None:
        return "n/a"
    return fmt(percentile(r.overhead.end_to_end_s, 50), 2)


def _rate(r: DbResult) -> str:
    t = r.throughput
    if t is None or t.tasks_per_s is None:
        return "n/a"
    return fmt(t.tasks_per_s, 2) + _mark(t.tasks_per_s >= THROUGHPUT_TARGET)


def _completed(r: DbResult) -> str:
    t = r.throughput
    if t is None:
        return "n/a"
    done = t.outcomes.states().get("completed", 0)
    wall = f" in {t.elapsed_s:.1f} s" if t.elapsed_s else ""
    return f"{done}/{t.submitted}{wall}"


def _others(r: DbResult) -> str:
    states = r.all_states()
    others = {k: v for k, v in states.items() if k != "completed"}
    if not others:
        return "0"
    return ", ".join(f"{v} {k}" for k, v in sorted(others.items()))


def _rss(role: str, *, target: float | None = None) -> Callable[[DbResult], str]:
    def cell(r: DbResult) -> str:
        if role not in r.peak_mib:
            return "n/a"
        value = r.peak_mib[role]
        return fmt(value, 0) + ("" if target is None else _mark(_below(value, target)))

    return cell


def _cpu_per_task(r: DbResult) -> str:
    t = r.throughput
    done = t.outcomes.states().get("completed", 0) if t is not None else 0
    if not done or not all(role in r.cpu for role in OPTIO_CPU):
        return "n/a"
    value = sum(r.cpu[role] for role in OPTIO_CPU) / done
    return fmt(value, 2) + _mark(value <= CPU_PER_TASK_TARGET_S)


def _runs(r: DbResult) -> str:
    return str(r.max_runners) if r.peak_mib else "n/a"


def _cpu(role: str) -> Callable[[DbResult], str]:
    return lambda r: fmt(r.cpu.get(role), 0) if role in r.cpu else "n/a"


def _machine_busy(r: DbResult) -> str:
    if "machine busy %" not in r.cpu:
        return "n/a"
    return f"{r.cpu['machine busy %']:.0f} % of {os.cpu_count()} cores"


ROWS: list[Row] = [
    ("`optio up` to healthy (s)", lambda r: fmt(r.startup_s, 1), ""),
    ("POST /api/tasks p50 (ms), sequential", _post_p(50), ""),
    ("POST /api/tasks p99 (ms), sequential", _post_p(99), f"< {POST_P99_TARGET_MS:.0f} ms"),
    (
        "POST /api/tasks p99 (ms), 20 in flight",
        _post_load_p99,
        f"< {POST_LOAD_P99_TARGET_MS:.0f} ms",
    ),
    ("POST → agent start p50 (ms)", _overhead_p(50), f"< {OVERHEAD_P50_TARGET_MS:.0f} ms"),
    ("POST → agent start p99 (ms)", _overhead_p(99), ""),
    ("… of which POST → queued p50 (ms)", _breakdown("POST → queued"), ""),
    ("… of which queued → provisioning p50 (ms)", _breakdown("queued → provisioning"), ""),
    (
        "… of which provisioning → agent start p50 (ms)",
        _breakdown("provisioning → agent start"),
        "",
    ),
    ("… of which the sandbox's own start, p50 (ms)", _sandbox_p50, ""),
    ("POST → completed p50 (s), one at a time", _end_to_end, ""),
    ("throughput, POST → all completed (tasks/s)", _rate, f">= {THROUGHPUT_TARGET:.0f} tasks/s"),
    ("throughput tasks completed", _completed, "all"),
    ("tasks not completed (all phases)", _others, "0"),
    ("completed but file missing on main", lambda r: str(len(r.missing_on_main)), "0"),
    ("peak RSS worker (MiB)", _rss("worker", target=PEAK_RSS_TARGET_MIB), "< 200 MiB"),
    ("peak RSS API (MiB)", _rss("api", target=PEAK_RSS_TARGET_MIB), "< 200 MiB"),
    ("peak RSS Temporal dev server (MiB)", _rss("temporal"), ""),
    ("peak concurrent agent runs (runners without a result)", _runs, "<= 20"),
    ("throughput phase CPU s: worker", _cpu("worker"), ""),
    ("throughput phase CPU s: runners, agents, git", _cpu("worker children"), ""),
    ("throughput phase CPU s: API", _cpu("api"), ""),
    ("throughput phase CPU s: Temporal", _cpu("temporal"), ""),
    (
        "throughput phase CPU s per completed task, Optio (the four above)",
        _cpu_per_task,
        f"<= {CPU_PER_TASK_TARGET_S} CPU-s",
    ),
    ("throughput phase machine CPU busy (everyone)", _machine_busy, ""),
]

LABELS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def table(results: list[DbResult]) -> str:
    header = ["metric", *(LABELS.get(r.name, r.name) for r in results), "target"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * len(results) + ["---"]) + "|",
    ]
    for label, cell, target in ROWS:
        values = [cell(r) if r.error is None or _has_data(r) else "error" for r in results]
        lines.append("| " + " | ".join([label, *values, target]) + " |")
    return "\n".join(lines)


def _has_data(r: DbResult) -> bool:
    return any(x is not None for x in (r.latency, r.overhead, r.throughput))


def machine() -> str:
    cores = len(os.sched_getaffinity(0))
    python = platform.python_version()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{platform.system()} {platform.machine()}, {cores} cores, Python {python}, load {load}"
