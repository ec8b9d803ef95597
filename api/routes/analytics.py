"""Analytics (seed, inventory §3.15): where the workspace's money went (`costs`), how fast
and how well its tasks run (`performance`, `agents`), why they fail (`failures`) and what
becomes of their PRs (`prs`).

Unlike the reference, every agent run counts: retries and resumes of a task, reviews
(tasks of type `review`) and standalone runs (type `standalone`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, NamedTuple

from fastapi import APIRouter, Query

from api.deps import CurrentPrincipal, SessionDep
from api.repo_urls import canonical_repo_url
from core.cost_analytics import cost_report
from core.task_analytics import (
    TaskFacts,
    agents_report,
    failures_report,
    performance_report,
    prs_report,
)
from schemas.analytics import (
    AgentsReport,
    CostsReport,
    FailuresReport,
    PerformanceReport,
    PrsReport,
)
from schemas.tasks import AgentType
from store.analytics import cost_entries
from store.budgets import month_spend
from store.task_analytics import task_facts
from store.types import utcnow

router = APIRouter(tags=["Analytics"])


@router.get("/api/analytics/costs", response_model=CostsReport)
async def costs(
    principal: CurrentPrincipal,
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=365)] = 30,
    repo_url: Annotated[str | None, Query(alias="repoUrl", max_length=2000)] = None,
) -> dict[str, Any]:
    now = utcnow()
    today = now.date()
    # The window is whole days, today included.
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    repo = await canonical_repo_url(repo_url) if repo_url else None
    ws = principal.workspace_id
    entries = await cost_entries(
        session, workspace_id=ws, since=start, until=now + timedelta(seconds=1), repo_url=repo
    )
    previous = await cost_entries(
        session, workspace_id=ws, since=start - timedelta(days=days), until=start, repo_url=repo
    )
    month = await month_spend(session, workspace_id=principal.workspace_id, now=now)
    return cost_report(entries, previous, days=days, today=today, month_so_far=month)


class Window(NamedTuple):
    since: datetime
    until: datetime
    today: date


def _window(days: int) -> Window:
    now = utcnow()
    # Whole days, today included, as for costs.
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    return Window(start, now + timedelta(seconds=1), now.date())


Days = Annotated[int, Query(ge=1, le=365, description="The window in days, today included.")]
RepoFilter = Annotated[str | None, Query(alias="repoUrl", max_length=2000)]
AgentFilter = Annotated[AgentType | None, Query(alias="agentType")]


async def _facts(
    session: SessionDep,
    workspace_id: str,
    window: Window,
    repo_url: str | None,
    agent_type: str | None,
    *,
    shift: int = 0,
) -> list[TaskFacts]:
    """The facts of the window, or of the `shift` days before it."""
    back = timedelta(days=shift)
    return await task_facts(
        session,
        workspace_id=workspace_id,
        since=window.since - back,
        until=(window.since if shift else window.until),
        repo_url=await canonical_repo_url(repo_url) if repo_url else None,
        agent_type=agent_type,
    )


@router.get("/api/analytics/performance", response_model=PerformanceReport)
async def performance(
    principal: CurrentPrincipal,
    session: SessionDep,
    days: Days = 30,
    repo_url: RepoFilter = None,
    agent_type: AgentFilter = None,
) -> PerformanceReport:
    window = _window(days)
    ws = principal.workspace_id
    tasks = await _facts(session, ws, window, repo_url, agent_type)
    previous = await _facts(session, ws, window, repo_url, agent_type, shift=days)
    report = performance_report(tasks, previous, days=days, today=window.today)
    return PerformanceReport.model_validate(report)


@router.get("/api/analytics/agents", response_model=AgentsReport)
async def agents(
    principal: CurrentPrincipal, session: SessionDep, days: Days = 30, repo_url: RepoFilter = None
) -> AgentsReport:
    tasks = await _facts(session, principal.workspace_id, _window(days), repo_url, None)
    return AgentsReport.model_validate(agents_report(tasks))


@router.get("/api/analytics/failures", response_model=FailuresReport)
async def failures(
    principal: CurrentPrincipal,
    session: SessionDep,
    days: Days = 30,
    repo_url: RepoFilter = None,
    agent_type: AgentFilter = None,
) -> FailuresReport:
    tasks = await _facts(session, principal.workspace_id, _window(days), repo_url, agent_type)
    return FailuresReport.model_validate(failures_report(tasks))


@router.get("/api/analytics/prs", response_model=PrsReport)
async def prs(
    principal: CurrentPrincipal, session: SessionDep, days: Days = 30, repo_url: RepoFilter = None
) -> PrsReport:
    tasks = await _facts(session, principal.workspace_id, _window(days), repo_url, None)
    return PrsReport.model_validate(prs_report(tasks))
