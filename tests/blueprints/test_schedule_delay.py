"""How late a scheduled task starts: from the schedule's due time to the task's transitions.

Run with `-s` to see the figures; the assertion only guards against a regression.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from schemas.blueprint_runs import InstantiateResult
from tests.blueprints.conftest import create_blueprint, eventually, runs_of
from tests.blueprints.test_schedules import add_schedule
from tests.conftest import Optio

MakeRepo = Callable[..., Path]
RUNS = 6


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_delay_from_due_time_to_task_start(bp: Optio, make_repo: MakeRepo) -> None:
    blueprint = await create_blueprint(
        bp.client, make_repo(), prompt="echo started\nexit 3", maxRetries=0
    )
    trigger = await add_schedule(bp, blueprint["id"], "*/3 * * * * * *")

    async def enough() -> bool:
        runs = await runs_of(bp.client, blueprint["id"])
        return len([r for r in runs if r["state"] == "failed"]) >= RUNS

    await eventually(enough, timeout=90, every=0.5)
    await bp.client.patch(
        f"/api/tasks/{blueprint['id']}/triggers/{trigger['id']}", json={"enabled": False}
    )
    described = await bp.temporal.get_schedule_handle(f"trigger-{trigger['id']}").describe()
    delays: dict[str, list[float]] = {"created": [], "queued": [], "running": []}
    for action in described.info.recent_actions[:RUNS]:
        workflow_id = action.action.workflow_id  # type: ignore[attr-defined]
        handle = bp.temporal.get_workflow_handle(workflow_id, result_type=InstantiateResult)
        result = await handle.result()
        task = (await bp.client.get(f"/api/tasks/{result.task_id}")).json()["task"]
        events = (await bp.client.get(f"/api/tasks/{result.task_id}/events")).json()["events"]
        at = {e["toState"]: datetime.fromisoformat(e["createdAt"]) for e in events}
        due = action.scheduled_at
        delays["created"].append((datetime.fromisoformat(task["createdAt"]) - due).total_seconds())
        delays["queued"].append((at["queued"] - due).total_seconds())
        delays["running"].append((at["running"] - due).total_seconds())
    for name, values in delays.items():
        print(  # noqa: T201
            f"due -> task {name}: median {statistics.median(values) * 1000:.0f} ms, "
            f"max {max(values) * 1000:.0f} ms over {len(values)} firings"
        )
    assert statistics.median(delays["queued"]) < 5
