"""Where runners send their log entries; authenticated by the per-run token."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.deps import StateDep, bearer_token
from core.errors import UnauthorizedError
from schemas.runner import LogBatch
from store.db import transaction
from store.runs import authenticate_run, ingest_events

router = APIRouter(tags=["System"], include_in_schema=False)
MAX_BATCH = 1000


@router.post("/api/internal/runs/{run_id}/events")
async def ingest(run_id: str, batch: LogBatch, request: Request, state: StateDep) -> dict[str, int]:
    token = bearer_token(request)
    if token is None:
        raise UnauthorizedError("Run token required")
    async with transaction(state.sessions) as session:
        run = await authenticate_run(session, run_id=run_id, token=token)
        if run is None:
            raise UnauthorizedError("Invalid run token")
        # The runner masked what it knew; whatever slipped past it is masked here.
        redact = await state.masks.redactor(session, workspace_id=run.workspace_id, extra=[token])
        events = state.masks.events(redact, batch.events[:MAX_BATCH])
        accepted = await ingest_events(session, run=run, events=events)
    return {"accepted": accepted, "received": len(batch.events[:MAX_BATCH])}
