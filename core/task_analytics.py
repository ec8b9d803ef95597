"""Performance, agent, failure and PR analytics (inventory §3.15), as pure functions.

Each report is computed from the facts of the tasks created in a window (one
`TaskFacts` per task). Durations are in seconds. A task counts as succeeded when it
completed or rests with its PR open, as failed when it failed; cancelled and
still-active tasks count in totals but not in rates.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from statistics import fmean

from core.cost_analytics import SUCCEEDED, money

STALL_TRIGGERS = frozenset({"stall_detected", "auto_retry_stale"})
TOP_ERRORS = 10
ERROR_PREFIX = 200


@dataclass(frozen=True)
class TaskFacts:
    id: str
    repo_url: str
    agent_type: str
    state: str
    model: str | None
    error: str | None
    retry_count: int
    cost: Decimal
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    has_pr: bool
    pr_state: str | None
    checks_status: str | None
    review_status: str | None
    pr_opened_at: datetime | None
    # The triggers of the task's transitions (auto_merged, stall_detected, ...).
    triggers: frozenset[str] = frozenset()

    @property
    def succeeded(self) -> bool:
        return self.state in SUCCEEDED

    @property
    def failed(self) -> bool:
        return self.state == "failed"


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds()


def _percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return round(fmean(values), 1) if values else 0.0


def _rate(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def success_rate(tasks: list[TaskFacts]) -> float:
    succeeded = sum(t.succeeded for t in tasks)
    return _rate(succeeded, succeeded + sum(t.failed for t in tasks))


def _finished(tasks: list[TaskFacts]) -> list[TaskFacts]:
    return [t for t in tasks if (t.succeeded or t.failed) and t.completed_at is not None]


def performance_report(
    tasks: list[TaskFacts], previous: list[TaskFacts], *, days: int, today: date
) -> dict[str, object]:
    finished = _finished(tasks)
    wall = [s for t in finished if (s := _seconds(t.created_at, t.completed_at)) is not None]
    execution = [s for t in finished if (s := _seconds(t.started_at, t.completed_at)) is not None]
    waits = [s for t in tasks if (s := _seconds(t.created_at, t.started_at)) is not None]
    per_day: dict[date, list[TaskFacts]] = defaultdict(list)
    for task in tasks:
        per_day[task.created_at.date()].append(task)
    rate = success_rate(tasks)
    return {
        "durations": {
            "avgWallClock": _mean(wall),
            "p50WallClock": round(_percentile(wall, 0.5), 1),
            "p95WallClock": round(_percentile(wall, 0.95), 1),
            "avgExecution": _mean(execution),
            "p50Execution": round(_percentile(execution, 0.5), 1),
            "p95Execution": round(_percentile(execution, 0.95), 1),
            "avgQueueWait": _mean(waits),
            "taskCount": len(finished),
        },
        "successRate": rate,
        # Percentage points against the previous window of the same length.
        "successRateTrend": round(rate - success_rate(previous), 1) if previous else 0.0,
        "tasksPerDay": [
            {
                "date": day.isoformat(),
                "total": len(group),
                "succeeded": sum(t.succeeded for t in group),
                "failed": sum(t.failed for t in group),
            }
            for n in range(days - 1, -1, -1)
            for day in [today - timedelta(days=n)]
            for group in [per_day.get(day, [])]
        ],
    }


def agents_report(tasks: list[TaskFacts]) -> dict[str, object]:
    groups: dict[str, list[TaskFacts]] = defaultdict(list)
    for task in tasks:
        groups[task.agent_type].append(task)
    agents = []
    for agent, group in groups.items():
        durations = [
            s for t in _finished(group) if (s := _seconds(t.created_at, t.completed_at)) is not None
        ]
        costs = [t.cost for t in group]
        agents.append(
            {
                "agentType": agent,
                "taskCount": len(group),
                "successRate": success_rate(group),
                "avgDuration": _mean(durations),
                "avgCost": money(sum(costs, Decimal(0)) / len(costs)),
                "avgRetries": round(fmean(t.retry_count for t in group), 2),
                "models": sorted({t.model for t in group if t.model}),
            }
        )
    agents.sort(key=lambda row: (-int(str(row["taskCount"])), str(row["agentType"])))
    return {"agents": agents}


def _counts(items: Iterable[str], label: str) -> list[dict[str, object]]:
    return [{label: name, "count": n} for name, n in Counter(items).most_common()]


def _error_line(message: str) -> str:
    """The first line of an error, as the grouping key (ids and details vary below it)."""
    return message.strip().splitlines()[0][:ERROR_PREFIX] if message.strip() else "(empty)"


def failures_report(tasks: list[TaskFacts]) -> dict[str, object]:
    failed = [t for t in tasks if t.failed]
    retried = [t for t in tasks if t.retry_count > 0]
    stalled = [t for t in tasks if t.triggers & STALL_TRIGGERS]
    retried_ok = sum(t.succeeded for t in retried)
    return {
        "errorMessages": [
            {"message": message, "count": n}
            for message, n in Counter(_error_line(t.error or "") for t in failed).most_common(
                TOP_ERRORS
            )
        ],
        "failureByRepo": _counts((t.repo_url for t in failed), "repoUrl"),
        "failureByAgent": _counts((t.agent_type for t in failed), "agentType"),
        "failureByModel": _counts((t.model or "unknown" for t in failed), "model"),
        "failureCount": len(failed),
        "retriedCount": len(retried),
        "retrySucceededCount": retried_ok,
        "retrySuccessRate": _rate(retried_ok, len(retried)),
        "stallCount": len(stalled),
        "stallRecoveryRate": _rate(sum(t.succeeded for t in stalled), len(stalled)),
    }


def _share(tasks: list[TaskFacts], hit: Callable[[TaskFacts], bool]) -> int:
    return sum(1 for t in tasks if hit(t))


def prs_report(tasks: list[TaskFacts]) -> dict[str, object]:
    prs = [t for t in tasks if t.has_pr]
    merged = [t for t in prs if t.pr_state == "merged"]
    checked = [t for t in prs if t.checks_status in ("passing", "failing")]
    reviewed = [t for t in prs if t.review_status in ("approved", "changes_requested")]
    merge_times = [s for t in merged if (s := _seconds(t.pr_opened_at, t.completed_at)) is not None]
    ci_passed = _share(checked, lambda t: t.checks_status == "passing")
    approved = _share(reviewed, lambda t: t.review_status == "approved")
    auto = _share(merged, lambda t: "auto_merged" in t.triggers)
    return {
        "totalPrs": len(prs),
        "open": _share(prs, lambda t: t.pr_state == "open"),
        "merged": len(merged),
        "closed": _share(prs, lambda t: t.pr_state == "closed"),
        "ciPassRate": _rate(ci_passed, len(checked)),
        "reviewApprovalRate": _rate(approved, len(reviewed)),
        "autoMergeRate": _rate(auto, len(merged)),
        "avgMergeTime": _mean(merge_times),
        "mergeCount": len(merged),
        "funnel": {
            "prOpened": len(prs),
            "ciPassed": _share(prs, lambda t: t.checks_status == "passing"),
            "reviewApproved": _share(prs, lambda t: t.review_status == "approved"),
            "merged": len(merged),
        },
    }
