"""What agent runs cost: each run's own figures, and the sums its task shows.

A run's cost comes first from its usage log entries as the runner sends them (running,
cumulative over the run: a re-sent older batch never lowers it), then from its final
result. A task's cost, tokens and model are the sums over all its runs (attempts,
retries, resumes), never the last run's alone.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.budget import cost_in, parse_usd
from schemas.runner import LogEvent, RunResult
from store.models import AgentRun, Task


def _tokens(value: object) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def usage_in(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """Tokens and model an event reports (Claude Code and the script agent put them
    under `outcome`)."""
    outcome = (metadata or {}).get("outcome")
    source = outcome if isinstance(outcome, dict) else (metadata or {})
    return {
        "input_tokens": _tokens(source.get("inputTokens")),
        "output_tokens": _tokens(source.get("outputTokens")),
        "model": source.get("model") if isinstance(source.get("model"), str) else None,
    }


def _apply(
    run: AgentRun,
    *,
    cost: Decimal | None,
    input_tokens: int | None,
    output_tokens: int | None,
    model: str | None,
) -> bool:
    changed = False
    known = parse_usd(run.cost_usd)
    if cost is not None and (known is None or cost > known):
        run.cost_usd, changed = str(cost), True
    for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
        if value is not None and value > (getattr(run, name) or 0):
            setattr(run, name, value)
            changed = True
    if model and run.model_used != model:
        run.model_used, changed = model, True
    return changed


async def track_events(session: AsyncSession, *, run: AgentRun, events: list[LogEvent]) -> bool:
    """Take the running cost of the run from the usage entries of a batch."""
    reporting = [e for e in events if e.log_type == "usage" or cost_in(e.metadata) is not None]
    if not reporting:
        return False
    # Concurrent batches of one run must not race each other's maximum.
    await session.refresh(run, with_for_update=True)
    changed = False
    for event in reporting:
        changed |= _apply(run, cost=cost_in(event.metadata), **usage_in(event.metadata))
    if changed:
        await refresh_task_totals(session, task_id=run.task_id)
    return changed


async def track_result(session: AsyncSession, *, run_id: str, result: RunResult) -> None:
    run = await session.get(AgentRun, run_id, with_for_update=True)
    if run is None:
        return
    _apply(
        run,
        cost=parse_usd(result.cost_usd),
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        model=result.model,
    )
    await refresh_task_totals(session, task_id=run.task_id)


async def refresh_task_totals(session: AsyncSession, *, task_id: str) -> Task | None:
    await session.flush()
    runs = list(
        (
            await session.execute(
                select(AgentRun)
                .where(AgentRun.task_id == task_id, AgentRun.state != "revoked")
                .order_by(AgentRun.started_at)
            )
        ).scalars()
    )
    task = await session.get(Task, task_id)
    if task is None:
        return None
    costs = [c for c in (parse_usd(r.cost_usd) for r in runs) if c is not None]
    task.cost_usd = str(sum(costs, Decimal(0))) if costs else None
    inputs = [r.input_tokens for r in runs if r.input_tokens is not None]
    outputs = [r.output_tokens for r in runs if r.output_tokens is not None]
    task.input_tokens = sum(inputs) if inputs else None
    task.output_tokens = sum(outputs) if outputs else None
    models = [r.model_used for r in runs if r.model_used]
    if models:
        task.model_used = models[-1]
    return task
