"""Where a run's activities execute: on the worker that holds its worktree.

With the local launcher a run's worktree and runner live on one worker's disk. The run
is placed first (`place_run`, taken by whichever worker polls first); its preparation,
agent wait and stop then go to that worker's own task queue, with a schedule-to-start
timeout of the failover setting. A worker that is gone longer than that (Temporal does
not retry a schedule-to-start timeout) fails the run over: it is recorded as lost with
the reason, and the task starts a new run on another worker. With pods
(`RunPlacement.task_queue` None) every activity stays on the shared queue.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType

with workflow.unsafe.imports_passed_through():
    from activities.agent_runs import AgentRunActivities
    from core import names
    from schemas.workflow import (
        PlaceRunInput,
        RecordLostRunInput,
        RunAgentResult,
        RunPlacement,
        StopRunInput,
    )

# Runs placed before this existed replay without the placement activity.
PLACEMENT_PATCH = "run-on-its-worker"
QUICK = names.QUICK_TIMEOUT
DB_RETRY = RetryPolicy(initial_interval=names.DB_RETRY_INITIAL, maximum_interval=names.DB_RETRY_MAX)


async def place_run(run_id: str) -> RunPlacement:
    """The worker that will hold this run (any worker for histories from before)."""
    if not workflow.patched(PLACEMENT_PATCH):
        return RunPlacement()
    return await workflow.execute_activity_method(
        AgentRunActivities.place_run,
        PlaceRunInput(run_id=run_id),
        start_to_close_timeout=QUICK,
        retry_policy=DB_RETRY,
    )


def on_its_worker(placement: RunPlacement) -> dict[str, Any]:
    """Options for an activity that needs the run's worktree: its worker's queue, and how
    long the activity may wait there for that worker."""
    if placement.task_queue is None:
        return {}
    return {
        "task_queue": placement.task_queue,
        "schedule_to_start_timeout": timedelta(seconds=placement.failover_seconds or 120),
    }


def worker_gone(err: BaseException) -> bool:
    """Nobody took the activity on the run's worker queue in time: that worker is gone."""
    cause = err.__cause__ if isinstance(err, ActivityError) else None
    return isinstance(cause, TimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_START


def lost_message(placement: RunPlacement) -> str:
    worker = (placement.task_queue or "").partition("@")[2] or "its worker"
    return (
        f"The worker holding this run's worktree ({worker}) was unreachable for more than "
        f"{placement.failover_seconds or 120:.0f} s; the run is started again on another worker"
    )


async def fail_over(run_id: str, placement: RunPlacement) -> RunAgentResult:
    """Record the run as lost, from any worker, and ask for a new run elsewhere."""
    message = lost_message(placement)
    await record_lost(run_id, message, state="lost")
    return RunAgentResult(success=False, error=message, worker_lost=True)


async def record_lost(run_id: str, message: str, *, state: str) -> None:
    await workflow.execute_activity_method(
        AgentRunActivities.record_lost_run,
        RecordLostRunInput(run_id=run_id, message=message, state=state),
        start_to_close_timeout=QUICK,
        retry_policy=DB_RETRY,
    )


async def stop_run(run_id: str, state: str, placement: RunPlacement) -> None:
    """Stop the run on its worker; when that worker is gone, its runner went with it, and
    only the run's row is left to settle."""
    try:
        await workflow.execute_activity_method(
            AgentRunActivities.stop_agent_run,
            StopRunInput(run_id=run_id, state=state),
            start_to_close_timeout=QUICK,
            retry_policy=DB_RETRY,
            **on_its_worker(placement),
        )
    except ActivityError as err:
        if not worker_gone(err):
            raise
        await record_lost(run_id, lost_message(placement), state=state)
