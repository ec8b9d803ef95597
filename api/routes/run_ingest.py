"""Where the runner of a standalone run sends its log entries (per-run token).

Cost reported in an entry's metadata is kept on the run as it arrives, so the
activity watching the run can stop it as soon as it passes its budget.
"""

from __future__ import annotations

import hmac
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from api.deps import StateDep, bearer_token
from core.budget import cost_in, parse_usd
from core.errors import UnauthorizedError
from core.tokens import hash_token
from schemas.runner import LogBatch
from store import live
from store.blueprints import StandaloneRun, StandaloneRunLog
from store.db import transaction

router = APIRouter(tags=["System"], include_in_schema=False)
MAX_BATCH = 1000


@router.post("/api/internal/standalone-runs/{run_id}/events")
async def ingest(
    run_id: str,
    batch: LogBatch,
    request: Request,
    state: StateDep,
    attempt: Annotated[int, Query(ge=0, le=1000)] = 0,
) -> dict[str, int]:
    token = bearer_token(request)
    if token is None:
        raise UnauthorizedError("Run token required")
    events = batch.events[:MAX_BATCH]
    async with transaction(state.sessions) as session:
        run = await session.get(StandaloneRun, run_id, with_for_update=True)
        if run is None or not run.token_hash:
            raise UnauthorizedError("Invalid run token")
        if not hmac.compare_digest(run.token_hash, hash_token(token)):
            raise UnauthorizedError("Invalid run token")
        if not events:
            return {"accepted": 0, "received": 0}
        # The runner masked what it knew; whatever slipped past it is masked here.
        redact = await state.masks.redactor(session, workspace_id=run.workspace_id, extra=[token])
        events = state.masks.events(redact, events)
        rows = [
            {
                "workflow_run_id": run.id,
                "attempt": attempt,
                "seq": e.seq,
                "stream": e.stream,
                "content": e.content,
                "log_type": e.log_type,
                "metadata": e.metadata or None,
                "timestamp": e.timestamp,
            }
            for e in events
        ]
        dialect = session.bind.dialect.name if session.bind else "sqlite"
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = insert(StandaloneRunLog).values(rows)
        stmt = stmt.on_conflict_do_nothing(index_elements=["workflow_run_id", "attempt", "seq"])
        inserted = set((await session.execute(stmt.returning(StandaloneRunLog.seq))).scalars())
        await live.publish_logs(
            session,
            workspace_id=run.workspace_id,
            topic=live.run_topic(run.id),
            type="workflow_run:log",
            owner={"workflowRunId": run.id, "attempt": attempt},
            entries=[e for e in events if e.seq in inserted],
        )
        costs = [c for c in (cost_in(e.metadata) for e in events) if c is not None]
        if costs:
            # Reported costs are cumulative over the attempt, which adds to the attempts
            # before it; a re-sent older batch must not lower the total.
            known = parse_usd(run.cost_usd) or Decimal(0)
            prior = parse_usd(run.prior_attempts_cost_usd) or Decimal(0)
            run.cost_usd = str(max(known, prior + max(costs)))
    return {"accepted": len(inserted), "received": len(events)}
