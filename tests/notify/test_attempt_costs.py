"""A standalone run's cost is every attempt's: a retried attempt's reports add to the
cost of the attempts before it, live (for the budget) and at the end."""

from __future__ import annotations

import uuid

import httpx

from activities.standalone_runs import StandaloneRunActivities
from core.tokens import hash_token
from schemas.blueprint_runs import FinishStandaloneInput, StandaloneAttemptResult
from store.blueprints import StandaloneRun, StandaloneTask
from store.db import create_engine, session_factory, transaction
from tests.conftest import Optio


def usage(seq: int, cost: str) -> dict[str, object]:
    return {
        "seq": seq,
        "timestamp": "2026-12-04T10:00:00Z",
        "content": f"$ {cost}",
        "metadata": {"outcome": {"costUsd": cost}},
    }


async def test_retried_attempts_costs_add_up(api_only: Optio) -> None:
    engine = create_engine(api_only.settings.database_url_resolved)
    sessions = session_factory(engine)
    tokens = [uuid.uuid4().hex, uuid.uuid4().hex]
    async with transaction(sessions) as session:
        job = StandaloneTask(workspace_id=api_only.workspace_id, name="job", prompt_template="p")
        session.add(job)
        await session.flush()
        run = StandaloneRun(
            id=str(uuid.uuid4()), workflow_id=job.id, state="queued",
            workspace_id=api_only.workspace_id, token_hash=hash_token(tokens[0]),
        )  # fmt: skip
        session.add(run)
    activities = StandaloneRunActivities(settings=api_only.settings, sessions=sessions)

    async def ingest(attempt: int, *events: dict[str, object]) -> None:
        async with httpx.AsyncClient(base_url=str(api_only.client.base_url)) as client:
            response = await client.post(
                f"/api/internal/standalone-runs/{run.id}/events",
                params={"attempt": attempt},
                json={"events": list(events)},
                headers={"Authorization": f"Bearer {tokens[attempt]}"},
            )
            assert response.status_code == 200, response.text

    async def cost() -> str | None:
        async with sessions() as session:
            row = await session.get(StandaloneRun, run.id)
            assert row is not None
            return row.cost_usd

    async def new_token(attempt: int) -> None:
        async with transaction(sessions) as session:
            row = await session.get(StandaloneRun, run.id)
            assert row is not None
            row.token_hash = hash_token(tokens[attempt])

    try:
        state = activities.record_run_state
        await state(FinishStandaloneInput(run_id=run.id, state="running", retry_count=0))
        await ingest(0, usage(1, "0.02"), usage(2, "0.05"))
        await ingest(0, usage(1, "0.02"))  # a re-sent older batch lowers nothing
        assert await cost() == "0.05"
        failed = StandaloneAttemptResult(success=False, error="boom", cost_usd="0.05")
        await state(FinishStandaloneInput(run_id=run.id, state="failed", result=failed))
        await state(FinishStandaloneInput(run_id=run.id, state="queued", retry_count=1))
        await state(FinishStandaloneInput(run_id=run.id, state="running", retry_count=1))
        # The activity retried: the second attempt's base is not counted twice.
        await state(FinishStandaloneInput(run_id=run.id, state="running", retry_count=1))
        await new_token(1)
        await ingest(1, usage(1, "0.01"))
        assert await cost() == "0.06"  # live: the budget check sees both attempts
        done = StandaloneAttemptResult(success=True, summary="ok", cost_usd="0.03")
        await state(FinishStandaloneInput(run_id=run.id, state="completed", result=done))
        assert await cost() == "0.08"
        listed = await api_only.client.get(f"/api/tasks/{job.id}/runs/{run.id}")
        assert listed.json()["run"]["costUsd"] == "0.08"
    finally:
        await engine.dispose()
