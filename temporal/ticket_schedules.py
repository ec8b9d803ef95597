"""One Temporal Schedule per ticket provider (`ticket-sync-<providerId>`).

Its action starts TicketSyncWorkflow (id `ticket-sync-<providerId>-<fireTime>`; Temporal
appends the time) every `interval`; a disabled provider's schedule is paused. Shared by
the API (create, update, delete) and the sync activity (pause on auto-disable).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from schemas.tickets import TicketSyncInput


def sync_schedule_id(provider_id: str) -> str:
    return f"ticket-sync-{provider_id}"


def build_sync_schedule(
    provider_id: str, *, interval_seconds: int, enabled: bool, task_queue: str
) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "TicketSyncWorkflow",
            TicketSyncInput(provider_id=provider_id),
            id=sync_schedule_id(provider_id),
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=interval_seconds))]
        ),
        # A run still going when the next is due (a slow provider): skip, never pile up.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(paused=not enabled, note=f"Optio ticket provider {provider_id}"),
    )


async def put_sync_schedule(
    client: Client, provider_id: str, *, interval_seconds: int, enabled: bool, task_queue: str
) -> None:
    """Create the schedule, or replace it when it exists (safe to repeat)."""
    schedule = build_sync_schedule(
        provider_id, interval_seconds=interval_seconds, enabled=enabled, task_queue=task_queue
    )
    handle = client.get_schedule_handle(sync_schedule_id(provider_id))
    try:
        await client.create_schedule(sync_schedule_id(provider_id), schedule)
        return
    except ScheduleAlreadyRunningError:
        pass

    def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=schedule)

    await handle.update(replace)


async def delete_sync_schedule(client: Client, provider_id: str) -> None:
    try:
        await client.get_schedule_handle(sync_schedule_id(provider_id)).delete()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise


async def pause_sync_schedule(client: Client, provider_id: str, *, note: str) -> None:
    try:
        await client.get_schedule_handle(sync_schedule_id(provider_id)).pause(note=note)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
