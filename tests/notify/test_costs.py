"""Every agent run's cost is recorded; a task's cost is the sum of its runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from store.db import create_engine, session_factory
from store.models import AgentRun
from tests.conftest import Optio
from tests.lifecycle_helpers import create_task, wait_for_state, wait_for_trigger


def usage(cost: str, tokens_in: int, tokens_out: int, model: str) -> str:
    line = {"costUsd": cost, "inputTokens": tokens_in, "outputTokens": tokens_out, "model": model}
    return f"echo 'optio-usage {json.dumps(line)}'"


async def runs_of(optio: Optio, task_id: str) -> list[AgentRun]:
    engine = create_engine(optio.settings.database_url_resolved)
    try:
        async with session_factory(engine)() as session:
            stmt = select(AgentRun).where(AgentRun.task_id == task_id)
            return list((await session.execute(stmt.order_by(AgentRun.started_at))).scalars())
    finally:
        await engine.dispose()


async def test_costs_of_a_task_resumed_twice_add_up(optio: Optio, make_repo: Any) -> None:
    repo: Path = make_repo()
    # No changes to commit: each run ends in needs_attention, which a person resumes.
    task = await create_task(optio.client, repo, usage("0.10", 100, 10, "model-a"), maxRetries=0)
    await wait_for_state(optio.client, task["id"], "needs_attention")
    for n, script in enumerate(
        (usage("0.25", 200, 20, "model-a"), usage("0.05", 50, 5, "model-b")), start=1
    ):
        resumed = await optio.client.post(
            f"/api/tasks/{task['id']}/resume", json={"prompt": script}
        )
        assert resumed.status_code == 200, resumed.text
        await wait_for_trigger(optio.client, task["id"], ("queued", "user_resume"))
        await wait_for_state(optio.client, task["id"], "needs_attention")
        events = (await optio.client.get(f"/api/tasks/{task['id']}/events")).json()["events"]
        assert sum(e["trigger"] == "user_resume" for e in events) == n

    got = (await optio.client.get(f"/api/tasks/{task['id']}")).json()["task"]
    assert got["costUsd"] == "0.40"  # 0.10 + 0.25 + 0.05, not the last run's 0.05
    assert (got["inputTokens"], got["outputTokens"]) == (350, 35)
    assert got["modelUsed"] == "model-b"
    runs = await runs_of(optio, task["id"])
    assert [(r.cost_usd, r.input_tokens, r.model_used) for r in runs] == [
        ("0.10", 100, "model-a"),
        ("0.25", 200, "model-a"),
        ("0.05", 50, "model-b"),
    ]


async def test_a_failed_attempt_costs_too(optio: Optio, make_repo: Any) -> None:
    repo: Path = make_repo()
    script = f"{usage('0.07', 70, 7, 'model-a')}\nexit 1"
    task = await create_task(optio.client, repo, script, maxRetries=1)
    await wait_for_trigger(optio.client, task["id"], ("queued", "auto_retry"))
    await wait_for_state(optio.client, task["id"], "failed")
    got = (await optio.client.get(f"/api/tasks/{task['id']}")).json()["task"]
    runs = await runs_of(optio, task["id"])
    assert len(runs) == 2 and got["costUsd"] == "0.14"
