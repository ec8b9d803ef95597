"""Where runners send their log entries; authenticated by the per-run token.

Usage entries carry the run's running cost (store/costs.py). When the task's runs
together pass its budget, the workflow carrying the task (its task workflow, or the
ReviewWorkflow of a review subtask) is told at once, and stops this run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Request
from temporalio.service import RPCError

from api.deps import StateDep, bearer_token
from core.budget import cost_in
from core.errors import UnauthorizedError
from core.metrics import LOG_INGEST_LAG
from core.names import Signals, workflow_id_for
from schemas.runner import InboxMessage, InboxMessages, InboxReport, LogBatch, LogEvent
from schemas.workflow import BudgetExceeded
from store.budgets import task_over_budget
from store.db import transaction
from store.messages import report_delivery, undelivered
from store.models import Task
from store.runs import LIVE_RUN_STATES, authenticate_run, ingest_events

router = APIRouter(tags=["System"], include_in_schema=False)
MAX_BATCH = 1000


@router.post("/api/internal/runs/{run_id}/events")
async def ingest(run_id: str, batch: LogBatch, request: Request, state: StateDep) -> dict[str, int]:
    token = bearer_token(request)
    if token is None:
        raise UnauthorizedError("Run token required")
    events = batch.events[:MAX_BATCH]
    reason: str | None = None
    workflow_id = ""
    async with transaction(state.sessions) as session:
        run = await authenticate_run(session, run_id=run_id, token=token)
        if run is None:
            raise UnauthorizedError("Invalid run token")
        # The runner masked what it knew; whatever slipped past it is masked here.
        redact = await state.masks.redactor(session, workspace_id=run.workspace_id, extra=[token])
        events = state.masks.events(redact, events)
        accepted = await ingest_events(session, run=run, events=events)
        observe_ingest_lag(events)
        task_id = run.task_id
        if any(e.log_type == "usage" or cost_in(e.metadata) is not None for e in events):
            reason = await task_over_budget(session, task_id=task_id)
            task = await session.get(Task, task_id) if reason is not None else None
            if task is not None:
                workflow_id = workflow_id_for(task_id=task_id, task_type=task.task_type)
    if reason is not None and workflow_id:
        await _stop_over_budget(state, workflow_id=workflow_id, run_id=run_id, reason=reason)
    return {"accepted": accepted, "received": len(events)}


@router.post("/api/internal/runs/{run_id}/inbox")
async def inbox(
    run_id: str, report: InboxReport, request: Request, state: StateDep
) -> InboxMessages:
    """A running agent's runner: what it delivered and saw acknowledged; what is new."""
    token = bearer_token(request)
    if token is None:
        raise UnauthorizedError("Run token required")
    async with transaction(state.sessions) as session:
        run = await authenticate_run(session, run_id=run_id, token=token)
        if run is None:
            raise UnauthorizedError("Invalid run token")
        await report_delivery(
            session, task_id=run.task_id, delivered=report.delivered, acked=report.acked
        )
        if run.state not in LIVE_RUN_STATES:
            return InboxMessages(messages=[])  # an ended run's messages wait for the next
        waiting = await undelivered(session, task_id=run.task_id)
        return InboxMessages(
            messages=[InboxMessage(id=m.id, content=m.content, mode=_mode(m.mode)) for m in waiting]
        )


def _mode(mode: str) -> Literal["soft", "interrupt"]:
    return "interrupt" if mode == "interrupt" else "soft"


async def _stop_over_budget(state: StateDep, *, workflow_id: str, run_id: str, reason: str) -> None:
    client = await state.temporal_client()
    handle = client.get_workflow_handle(workflow_id)
    try:
        await handle.signal(Signals.BUDGET_EXCEEDED, BudgetExceeded(run_id=run_id, message=reason))
    except RPCError:
        pass  # the workflow has ended: nothing runs any more


def observe_ingest_lag(events: list[LogEvent]) -> None:
    """How long each entry took from the run to the database, for /metrics."""
    now = datetime.now(UTC)
    for event in events:
        stamp = event.timestamp if event.timestamp.tzinfo else event.timestamp.replace(tzinfo=UTC)
        LOG_INGEST_LAG.observe(max(0.0, (now - stamp).total_seconds()))
