"""The cost entries of a window: tasks (summed over their agent runs) and standalone runs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.budget import parse_usd
from core.cost_analytics import CostEntry
from store.blueprints import StandaloneRun, StandaloneTask
from store.models import AgentRun, Task


def _blueprint_of(task: Task) -> tuple[str, str] | None:
    meta = task.metadata_ or {}
    config_id = meta.get("taskConfigId")
    return (str(config_id), str(meta.get("taskConfigName") or "")) if config_id else None


async def cost_entries(
    session: AsyncSession,
    *,
    workspace_id: str,
    since: datetime,
    until: datetime,
    repo_url: str | None,
) -> list[CostEntry]:
    runs = (
        select(AgentRun, Task)
        .join(Task, Task.id == AgentRun.task_id)
        .where(
            AgentRun.workspace_id == workspace_id,
            Task.workspace_id == workspace_id,
            AgentRun.started_at >= since,
            AgentRun.started_at < until,
            AgentRun.cost_usd.is_not(None),
        )
        .order_by(AgentRun.started_at)
    )
    if repo_url:
        runs = runs.where(Task.repo_url == repo_url)
    entries: dict[str, CostEntry] = {}
    for run, task in (await session.execute(runs)).all():
        entry = entries.get(task.id)
        if entry is None:
            entry = entries[task.id] = CostEntry(
                id=task.id,
                title=task.title,
                repo_url=task.repo_url,
                task_type=task.task_type,
                state=task.state,
                model=None,
                cost=Decimal(0),
                input_tokens=0,
                output_tokens=0,
                day=run.started_at.date(),
                created_at=task.created_at,
                parent=_blueprint_of(task),
            )
        entry.cost += parse_usd(run.cost_usd) or Decimal(0)
        entry.input_tokens += run.input_tokens or 0
        entry.output_tokens += run.output_tokens or 0
        entry.model = run.model_used or entry.model
    if repo_url:
        return list(entries.values())
    jobs = (
        select(StandaloneRun, StandaloneTask)
        .join(StandaloneTask, StandaloneTask.id == StandaloneRun.workflow_id)
        .where(
            StandaloneRun.workspace_id == workspace_id,
            StandaloneTask.workspace_id == workspace_id,
            StandaloneRun.created_at >= since,
            StandaloneRun.created_at < until,
            StandaloneRun.cost_usd.is_not(None),
        )
    )
    for job_run, job in (await session.execute(jobs)).all():
        entries[job_run.id] = CostEntry(
            id=job_run.id,
            title=job.name,
            repo_url=None,
            task_type="standalone",
            state=job_run.state,
            model=job_run.model_used or job.model,
            cost=parse_usd(job_run.cost_usd) or Decimal(0),
            input_tokens=job_run.input_tokens or 0,
            output_tokens=job_run.output_tokens or 0,
            day=job_run.created_at.date(),
            created_at=job_run.created_at,
            parent=(job.id, job.name),
        )
    return list(entries.values())
