"""GET /api/analytics/costs: where the workspace's money went (seed, inventory §3.15).

Unlike the reference, every agent run counts: retries and resumes of a task, reviews
(tasks of type `review`) and standalone runs (type `standalone`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import CurrentPrincipal, SessionDep
from api.repo_urls import canonical_repo_url
from core.cost_analytics import cost_report
from store.analytics import cost_entries
from store.budgets import month_spend
from store.types import utcnow

router = APIRouter(tags=["Analytics"])


@router.get("/api/analytics/costs")
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
