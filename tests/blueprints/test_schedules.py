"""Schedule triggers are Temporal Schedules: they fire on the real dev server, pause, and show
up in `temporal schedule list`.

The time-skipping test server answers CreateSchedule with "unimplemented", so the
one-minute cron is checked on the dev server: by backfilling three minutes (Temporal
computes the fire times of the very spec we created), and by one real wait.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import ScheduleBackfill, ScheduleOverlapPolicy
from temporalio.service import RPCError, RPCStatusCode

from tests.blueprints.conftest import create_blueprint, eventually, runs_of
from tests.conftest import BIN, Optio, temporal_target

MakeRepo = Callable[..., Path]
EVERY_TWO_SECONDS = "*/2 * * * * * *"  # 7 fields: second minute hour dom month dow year


def temporal_cli(optio: Optio, *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "temporal"), *args, "--address", temporal_target(optio.temporal)],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout


async def add_schedule(optio: Optio, task_id: str, cron: str, **fields: object) -> dict:
    body = {"type": "schedule", "config": {"cronExpression": cron}, **fields}
    response = await optio.client.post(f"/api/tasks/{task_id}/triggers", json=body)
    assert response.status_code == 201, response.text
    trigger: dict = response.json()["trigger"]
    return trigger


async def test_a_schedule_fires_runs_and_pausing_stops_them(bp: Optio, make_repo: MakeRepo) -> None:
    # Failing tasks settle at once, so the SKIP overlap policy lets every firing through.
    blueprint = await create_blueprint(bp.client, make_repo(), prompt="exit 3", maxRetries=0)
    trigger = await add_schedule(bp, blueprint["id"], EVERY_TWO_SECONDS)
    assert trigger["enabled"] is True and trigger["targetType"] == "task_config"
    assert trigger["nextFireAt"] is not None

    async def two_failed_runs() -> list[dict]:
        runs = [r for r in await runs_of(bp.client, blueprint["id"]) if r["state"] == "failed"]
        return runs if len(runs) >= 2 else []

    runs = await eventually(two_failed_runs, timeout=40)
    assert {r["metadata"]["triggerId"] for r in runs} == {trigger["id"]}

    listed = temporal_cli(bp, "schedule", "list")
    assert f"trigger-{trigger['id']}" in listed
    described = json.loads(
        temporal_cli(
            bp, "schedule", "describe", "--schedule-id", f"trigger-{trigger['id']}", "-o", "json"
        )
    )
    assert "BlueprintRunWorkflow" in json.dumps(described)
    read = (await bp.client.get(f"/api/tasks/{blueprint['id']}/triggers")).json()["triggers"]
    assert read[0]["lastFiredAt"] is not None and read[0]["nextFireAt"] is not None

    paused = await bp.client.patch(
        f"/api/tasks/{blueprint['id']}/triggers/{trigger['id']}", json={"enabled": False}
    )
    assert paused.status_code == 200 and paused.json()["trigger"]["nextFireAt"] is None
    handle = bp.temporal.get_schedule_handle(f"trigger-{trigger['id']}")
    assert (await handle.describe()).schedule.state.paused is True
    await asyncio.sleep(1.5)  # a firing already in flight may still land
    count = len(await runs_of(bp.client, blueprint["id"]))
    await asyncio.sleep(5)
    assert len(await runs_of(bp.client, blueprint["id"])) == count

    # Deleting the blueprint deletes its triggers and their schedules.
    assert (await bp.client.delete(f"/api/tasks/{blueprint['id']}")).status_code == 204
    with pytest.raises(RPCError) as gone:
        await handle.describe()
    assert gone.value.status == RPCStatusCode.NOT_FOUND


async def test_a_paused_trigger_fires_none(bp: Optio, make_repo: MakeRepo) -> None:
    blueprint = await create_blueprint(bp.client, make_repo(), prompt="exit 3", maxRetries=0)
    trigger = await add_schedule(bp, blueprint["id"], "* * * * * * *", enabled=False)
    assert trigger["enabled"] is False and trigger["nextFireAt"] is None
    await asyncio.sleep(4)
    assert await runs_of(bp.client, blueprint["id"]) == []
    info = (await bp.temporal.get_schedule_handle(f"trigger-{trigger['id']}").describe()).info
    assert info.num_actions == 0


async def test_a_one_minute_cron_fires_on_minute_boundaries(bp: Optio, make_repo: MakeRepo) -> None:
    blueprint = await create_blueprint(bp.client, make_repo(), prompt="exit 3", maxRetries=0)
    trigger = await add_schedule(bp, blueprint["id"], "* * * * *", paramMapping={"reason": "cron"})
    upcoming = datetime.fromisoformat(trigger["nextFireAt"])
    now = datetime.now(UTC)
    assert upcoming.second == 0 and timedelta(0) < upcoming - now <= timedelta(minutes=1)
    # Ask Temporal to run the spec over the last three minutes.
    end = now.replace(second=0, microsecond=0)
    handle = bp.temporal.get_schedule_handle(f"trigger-{trigger['id']}")
    await handle.backfill(
        ScheduleBackfill(
            start_at=end - timedelta(minutes=3) + timedelta(seconds=1),
            end_at=end,
            overlap=ScheduleOverlapPolicy.ALLOW_ALL,
        )
    )

    async def three_runs() -> list[dict]:
        runs = await runs_of(bp.client, blueprint["id"])
        return runs if len(runs) >= 3 else []

    runs = await eventually(three_runs, timeout=40)
    assert all(r["metadata"]["params"] == {"reason": "cron"} for r in runs)
    ids = [
        e.id
        async for e in bp.temporal.list_workflows(
            f"WorkflowType = 'BlueprintRunWorkflow' AND TaskQueue = '{bp.settings.task_queue}'"
        )
    ]
    fired = sorted(i.removeprefix(f"blueprint-{blueprint['id']}-") for i in ids)
    expected = [(end - timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ") for m in (2, 1, 0)]
    assert fired == expected


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.timeout(150)
async def test_a_one_minute_cron_really_fires(bp: Optio, make_repo: MakeRepo) -> None:
    blueprint = await create_blueprint(bp.client, make_repo(), prompt="exit 3", maxRetries=0)
    trigger = await add_schedule(bp, blueprint["id"], "* * * * *")
    due = datetime.fromisoformat(trigger["nextFireAt"])
    runs = await eventually(lambda: runs_of(bp.client, blueprint["id"]), timeout=75, every=0.5)
    created = datetime.fromisoformat(runs[0]["createdAt"])
    assert due <= created < due + timedelta(seconds=10)
