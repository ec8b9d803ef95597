"""A standalone task run's stream: its log entries and its state changes, live."""

from __future__ import annotations

import uuid

import httpx

from activities.standalone_runs import StandaloneRunActivities
from core.tokens import hash_token
from schemas.blueprint_runs import FinishStandaloneInput
from store.blueprints import StandaloneRun, StandaloneTask
from store.db import create_engine, session_factory, transaction
from tests.conftest import Optio
from tests.live.helpers import close_code, frames, subscribed, ws


async def test_run_logs_and_states_stream_until_the_run_ends(api_only: Optio) -> None:
    api, url = str(api_only.client.base_url).rstrip("/"), api_only.settings.database_url_resolved
    engine = create_engine(url)
    sessions = session_factory(engine)
    token = uuid.uuid4().hex
    async with transaction(sessions) as session:
        job = StandaloneTask(workspace_id=api_only.workspace_id, name="job", prompt_template="p")
        session.add(job)
        await session.flush()
        run = StandaloneRun(
            id=str(uuid.uuid4()), workflow_id=job.id, state="queued",
            workspace_id=api_only.workspace_id, token_hash=hash_token(token),
        )  # fmt: skip
        session.add(run)
    activities = StandaloneRunActivities(settings=api_only.settings, sessions=sessions)
    try:
        async with ws(api, f"/ws/workflow-runs/{run.id}/logs", api_only.token) as conn:
            await subscribed(api_only, 1)
            await activities.record_run_state(FinishStandaloneInput(run_id=run.id, state="running"))
            # A retried activity writes the same state again: no second event.
            await activities.record_run_state(FinishStandaloneInput(run_id=run.id, state="running"))
            async with httpx.AsyncClient(base_url=api) as client:
                batch = {
                    "events": [{"seq": 1, "timestamp": "2026-12-03T10:00:00Z", "content": "hi"}]
                }
                response = await client.post(
                    f"/api/internal/standalone-runs/{run.id}/events",
                    json=batch,
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert response.json() == {"accepted": 1, "received": 1}
            await activities.record_run_state(
                FinishStandaloneInput(run_id=run.id, state="completed")
            )
            got = await frames(conn, 3)
            assert [f["type"] for f in got] == [
                "workflow_run:state_changed",
                "workflow_run:log",
                "workflow_run:state_changed",
            ]
            assert got[0]["toState"] == "running" and got[2]["toState"] == "completed"
            assert got[1]["content"] == "hi" and got[1]["workflowRunId"] == run.id
            assert await close_code(conn) == 1000
        # Its state changes are workspace events too; its log entries are not.
        async with ws(api, f"/ws/events?lastEventId={got[0]['eventId'] - 1}", api_only.token) as c:
            seen = await frames(c, 2)
        assert [f["eventId"] for f in seen] == [got[0]["eventId"], got[2]["eventId"]]
    finally:
        await engine.dispose()
