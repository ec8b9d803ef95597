"""Budgets: a task's (its own, else its repo's) and the workspace's monthly one."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.budget import budget_reason, over_budget, parse_usd
from store.blueprints import StandaloneRun
from store.models import AgentRun, Task, Workspace
from store.tasks import find_repo


async def task_budget(session: AsyncSession, *, task: Task) -> str | None:
    if task.max_cost_usd is not None:
        return task.max_cost_usd
    repo = await find_repo(session, workspace_id=task.workspace_id, repo_url=task.repo_url)
    return repo.max_cost_usd if repo is not None else None


async def task_over_budget(session: AsyncSession, *, task_id: str) -> str | None:
    """Why the task must stop (its runs together spent more than its budget), or None."""
    task = await session.get(Task, task_id)
    if task is None:
        return None
    budget = await task_budget(session, task=task)
    if over_budget(task.cost_usd, budget):
        return budget_reason(task.cost_usd, budget)
    return None


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def month_spend(session: AsyncSession, *, workspace_id: str, now: datetime) -> Decimal:
    """What the workspace's agent runs and standalone runs cost since the 1st (UTC)."""
    since = month_start(now)
    runs = select(AgentRun.cost_usd).where(
        AgentRun.workspace_id == workspace_id,
        AgentRun.started_at >= since,
        AgentRun.cost_usd.is_not(None),
    )
    jobs = select(StandaloneRun.cost_usd).where(
        StandaloneRun.workspace_id == workspace_id,
        StandaloneRun.created_at >= since,
        StandaloneRun.cost_usd.is_not(None),
    )
    total = Decimal(0)
    for stmt in (runs, jobs):
        for value in (await session.execute(stmt)).scalars():
            total += parse_usd(value) or Decimal(0)
    return total


async def workspace_over_budget(
    session: AsyncSession, *, workspace_id: str, now: datetime
) -> tuple[Workspace, Decimal] | None:
    """The workspace and its month's spend when that reached its monthly budget."""
    workspace = await session.get(Workspace, workspace_id)
    budget = parse_usd(workspace.monthly_budget_usd) if workspace else None
    if workspace is None or budget is None:
        return None
    spent = await month_spend(session, workspace_id=workspace_id, now=now)
    return (workspace, spent) if spent >= budget else None
