"""One Temporal Schedule per `schedule` trigger (`trigger-<id>`): create, update, read, delete.

The schedule's action starts BlueprintRunWorkflow / StandaloneRunWorkflow itself, so
runs fire while the API is down, and `temporal schedule list|describe|toggle` work.
"""

from __future__ import annotations

from datetime import datetime

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from schemas.blueprint_runs import BlueprintRunInput, StandaloneRunInput
from store.blueprints import Trigger


def schedule_id(trigger_id: str) -> str:
    return f"trigger-{trigger_id}"


def build_schedule(trigger: Trigger, *, task_queue: str) -> Schedule:
    # For schedules the reference passes param_mapping as the literal params (§3.5).
    params = dict(trigger.param_mapping or {})
    action: ScheduleActionStartWorkflow
    if trigger.target_type == "task_config":
        action = ScheduleActionStartWorkflow(
            "BlueprintRunWorkflow",
            BlueprintRunInput(config_id=trigger.target_id, trigger_id=trigger.id, params=params),
            # Temporal appends the fire time: blueprint-<id>-<fireTime>.
            id=f"blueprint-{trigger.target_id}",
            task_queue=task_queue,
        )
    else:
        action = ScheduleActionStartWorkflow(
            "StandaloneRunWorkflow",
            StandaloneRunInput(
                standalone_id=trigger.target_id, trigger_id=trigger.id, params=params
            ),
            id=f"run-{trigger.target_id}",
            task_queue=task_queue,
        )
    config = trigger.config
    return Schedule(
        action=action,
        spec=ScheduleSpec(
            cron_expressions=[config["cronExpression"]],
            time_zone_name=config.get("timezone") or None,
        ),
        # Skip a firing while the previous run is still live, rather than pile them up.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(
            paused=not trigger.enabled,
            note=f"Optio {trigger.target_type} {trigger.target_id}, trigger {trigger.id}",
        ),
    )


async def create_schedule(client: Client, trigger: Trigger, *, task_queue: str) -> None:
    await client.create_schedule(
        schedule_id(trigger.id), build_schedule(trigger, task_queue=task_queue)
    )


async def update_schedule(client: Client, trigger: Trigger, *, task_queue: str) -> None:
    schedule = build_schedule(trigger, task_queue=task_queue)

    def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(schedule_id(trigger.id)).update(replace)


async def delete_schedule(client: Client, trigger_id: str) -> None:
    try:
        await client.get_schedule_handle(schedule_id(trigger_id)).delete()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise


async def fire_times(client: Client, trigger_id: str) -> tuple[datetime | None, datetime | None]:
    """(lastFiredAt, nextFireAt) as Temporal knows them."""
    described = await client.get_schedule_handle(schedule_id(trigger_id)).describe()
    info = described.info
    last = info.recent_actions[-1].scheduled_at if info.recent_actions else None
    upcoming = (
        info.next_action_times[0]
        if info.next_action_times and not (described.schedule.state.paused)
        else None
    )
    return last, upcoming
