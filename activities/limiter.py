"""Activities that talk to Temporal itself on behalf of the slot limiter."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from core.names import Signals
from schemas.workflow import (
    AcquireSlotInput,
    ClosedWorkflowsInput,
    ClosedWorkflowsResult,
    LimiterState,
    ReleaseSlotInput,
)


@activity.defn
async def acquire_slot(input: AcquireSlotInput) -> None:
    """Signal-with-start: the limiter exists after the first request for its scope."""
    await activity.client().start_workflow(
        "SlotLimiterWorkflow",
        LimiterState(limiter_id=input.limiter_id, capacity=input.initial_capacity),
        id=input.limiter_id,
        task_queue=activity.info().task_queue,
        start_signal=Signals.REQUEST,
        start_signal_args=[input.request],
    )


@activity.defn
async def release_slot(input: ReleaseSlotInput) -> None:
    """Hand a slot back. Sent from an activity rather than as the task workflow's own
    signal command: that would add two events and a workflow task to every task's history."""
    handle = activity.client().get_workflow_handle(input.limiter_id)
    try:
        await handle.signal(Signals.RELEASE, input.release)
    except RPCError as exc:
        # No limiter (yet, or any more): nobody holds a slot there to give back.
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise


@activity.defn
async def find_closed_workflows(input: ClosedWorkflowsInput) -> ClosedWorkflowsResult:
    client = activity.client()
    closed: list[str] = []
    for workflow_id in input.workflow_ids:
        try:
            described = await client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                closed.append(workflow_id)
                continue
            raise
        if described.status != WorkflowExecutionStatus.RUNNING:
            closed.append(workflow_id)
    return ClosedWorkflowsResult(closed=closed)
