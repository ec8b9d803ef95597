"""Where runners send their log entries; authenticated by the per-run token.

Usage entries carry the run's running cost (store/costs.py). When the task's runs
together pass its budget, the task's workflow is told at once, and stops this run.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from temporalio.service import RPCError

from api.deps import StateDep, bearer_token
from core.budget import cost_in
from core.errors import UnauthorizedError
from core.names import Signals
from schemas.runner import LogBatch
from schemas.workflow import BudgetExceeded
from store.budgets import task_over_budget
from store.db import transaction
from store.runs import authenticate_run, ingest_events
from temporal.starts import task_workflow_id

router = APIRouter(tags=["System"], include_in_schema=False)
MAX_BATCH = 1000


@router.post("/api/internal/runs/{run_id}/events")
async def ingest(run_id: str, batch: LogBatch, request: Request, state: StateDep) -> dict[str, int]:
    token = bearer_token(request)
    if token is None:
        raise UnauthorizedError("Run token required")
    events = batch.events[:MAX_BATCH]
    reason: str | None = None
    async with transaction(state.sessions) as session:
        run = await authenticate_run(session, run_id=run_id, token=token)
        if run is None:
            raise UnauthorizedError("Invalid run token")
        # The runner masked what it knew; whatever slipped past it is masked here.
        redact = await state.masks.redactor(session, workspace_id=run.workspace_id, extra=[token])
        events = state.masks.events(redact, events)
        accepted = await ingest_events(session, run=run, events=events)
        task_id = run.task_id
        if any(e.log_type == "usage" or cost_in(e.metadata) is not None for e in events):
            reason = await task_over_budget(session, task_id=task_id)
    if reason is not None:
        await _stop_over_budget(state, task_id=task_id, run_id=run_id, reason=reason)
    return {"accepted": accepted, "received": len(events)}


async def _stop_over_budget(state: StateDep, *, task_id: str, run_id: str, reason: str) -> None:
    client = await state.temporal_client()
    handle = client.get_workflow_handle(task_workflow_id(task_id))
    try:
        await handle.signal(Signals.BUDGET_EXCEEDED, BudgetExceeded(run_id=run_id, message=reason))
    except RPCError:
        pass  # the task's workflow has ended (or the run belongs to a review): nothing runs
