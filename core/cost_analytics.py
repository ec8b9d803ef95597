"""Cost analytics (inventory §3.15), as a pure function of the window's cost entries.

An entry is one costed piece of work: a task (the sum of its agent runs in the window:
attempts, retries, resumes; reviews are tasks too) or a standalone run.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

ANOMALY_RATIO = Decimal(3)
ANOMALY_MIN_TASKS = 3
TOP = 20
SUCCEEDED = frozenset({"completed", "pr_opened"})


@dataclass
class CostEntry:
    id: str
    title: str
    repo_url: str | None
    task_type: str
    state: str
    model: str | None
    cost: Decimal
    input_tokens: int
    output_tokens: int
    day: date
    created_at: datetime
    # The blueprint or standalone task whose run this is, if any: (id, name).
    parent: tuple[str, str] | None = None


def money(amount: Decimal) -> str:
    """USD as a decimal string: cents at least ("0.40"), finer when it matters ("0.0012")."""
    amount = amount.quantize(Decimal("0.000001"))
    cents = amount.quantize(Decimal("0.01"))
    return str(cents) if cents == amount else str(amount.normalize())


def _total(entries: list[CostEntry]) -> Decimal:
    return sum((e.cost for e in entries), Decimal(0))


def _avg(entries: list[CostEntry]) -> Decimal:
    return _total(entries) / len(entries) if entries else Decimal(0)


def _groups(entries: list[CostEntry], key: str) -> dict[str, list[CostEntry]]:
    groups: dict[str, list[CostEntry]] = defaultdict(list)
    for entry in entries:
        groups[getattr(entry, key) or "unknown"].append(entry)
    return groups


def _by(entries: list[CostEntry], key: str, label: str) -> list[dict[str, Any]]:
    rows = [
        {
            label: name,
            "cost": money(_total(group)),
            "totalCost": money(_total(group)),
            "taskCount": len(group),
        }
        for name, group in _groups(entries, key).items()
    ]
    return sorted(rows, key=lambda r: Decimal(r["cost"]), reverse=True)


def _by_blueprint(entries: list[CostEntry]) -> list[dict[str, Any]]:
    """Totals per blueprint and per standalone task: the sum of their runs' costs."""
    groups: dict[tuple[str, str, str], list[CostEntry]] = defaultdict(list)
    for entry in entries:
        if entry.parent is not None:
            kind = "standalone" if entry.task_type == "standalone" else "repo-blueprint"
            groups[(entry.parent[0], entry.parent[1], kind)].append(entry)
    rows = [
        {
            "id": pid,
            "name": name,
            "type": kind,
            "totalCost": money(_total(group)),
            "runCount": len(group),
        }
        for (pid, name, kind), group in groups.items()
    ]
    return sorted(rows, key=lambda r: Decimal(r["totalCost"]), reverse=True)


def _task_row(entry: CostEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "title": entry.title,
        "repoUrl": entry.repo_url,
        "taskType": entry.task_type,
        "state": entry.state,
        "costUsd": money(entry.cost),
        "modelUsed": entry.model,
        "createdAt": entry.created_at.isoformat(),
    }


def _by_model(entries: list[CostEntry]) -> list[dict[str, Any]]:
    rows = []
    for model, group in _groups(entries, "model").items():
        succeeded = sum(e.state in SUCCEEDED for e in group)
        rows.append(
            {
                "model": model,
                "totalCost": money(_total(group)),
                "taskCount": len(group),
                "successRate": round(100 * succeeded / len(group), 1),
                "avgCost": money(_avg(group)),
                "totalInputTokens": sum(e.input_tokens for e in group),
                "totalOutputTokens": sum(e.output_tokens for e in group),
            }
        )
    return sorted(rows, key=lambda r: Decimal(r["totalCost"]), reverse=True)


def _anomalies(entries: list[CostEntry]) -> list[dict[str, Any]]:
    found = []
    for group in _groups([e for e in entries if e.repo_url], "repo_url").values():
        if len(group) < ANOMALY_MIN_TASKS:
            continue
        average = _avg(group)
        for entry in group:
            if average > 0 and entry.cost >= ANOMALY_RATIO * average:
                ratio = entry.cost / average
                found.append(
                    _task_row(entry)
                    | {"repoAvgCost": money(average), "costRatio": float(round(ratio, 2))}
                )
    return sorted(found, key=lambda r: r["costRatio"], reverse=True)[:TOP]


def _model_suggestions(entries: list[CostEntry]) -> list[dict[str, Any]]:
    out = []
    for repo, group in _groups([e for e in entries if e.repo_url], "repo_url").items():
        models = _groups(group, "model")
        for model, used in models.items():
            if "opus" not in model.lower() or not any(e.state in SUCCEEDED for e in used):
                continue
            cheaper = [
                _avg(other)
                for name, other in models.items()
                if "sonnet" in name.lower() and _avg(other) < _avg(used)
            ]
            if cheaper:
                out.append(
                    {
                        "repoUrl": repo,
                        "currentModel": model,
                        "taskCount": len(used),
                        "avgCost": money(_avg(used)),
                        "cheaperModelAvgCost": money(min(cheaper)),
                    }
                )
    return out


def cost_report(
    entries: list[CostEntry],
    previous: list[CostEntry],
    *,
    days: int,
    today: date,
    month_so_far: Decimal,
) -> dict[str, Any]:
    total, before = _total(entries), _total(previous)
    trend = float(round((total - before) / before * 100, 1)) if before > 0 else 0.0
    daily_avg = total / days
    month_end = (today.replace(day=28) + timedelta(days=4)).replace(day=1)
    remaining = (month_end - today).days - 1
    per_day: dict[date, list[CostEntry]] = defaultdict(list)
    for entry in entries:
        per_day[entry.day].append(entry)
    daily = [
        {
            "date": (today - timedelta(days=n)).isoformat(),
            "cost": money(_total(per_day.get(today - timedelta(days=n), []))),
            "taskCount": len(per_day.get(today - timedelta(days=n), [])),
        }
        for n in range(days - 1, -1, -1)
    ]
    average = money(_avg(entries))
    return {
        "summary": {
            "totalCost": money(total),
            "taskCount": len(entries),
            "tasksWithCost": sum(e.cost > 0 for e in entries),
            "averageCost": average,
            "avgCost": average,
            "costTrend": trend,
            "prevPeriodCost": money(before),
            "days": days,
        },
        "forecast": {
            "dailyAvgCost": money(daily_avg),
            "monthCostSoFar": money(month_so_far),
            "forecastedMonthTotal": money(month_so_far + daily_avg * remaining),
            "daysRemaining": remaining,
        },
        "dailyCosts": daily,
        "costByRepo": _by([e for e in entries if e.repo_url], "repo_url", "repoUrl"),
        "costByType": _by(entries, "task_type", "taskType"),
        "costByModel": _by_model(entries),
        "costByBlueprint": _by_blueprint(entries),
        "anomalies": _anomalies(entries),
        "modelSuggestions": _model_suggestions(entries),
        "topTasks": [
            _task_row(e) for e in sorted(entries, key=lambda e: e.cost, reverse=True)[:TOP]
        ],
    }
