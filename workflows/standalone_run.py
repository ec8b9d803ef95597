"""StandaloneRunWorkflow (`run-<runId>`): an agent in a scratch sandbox, no repository.

States of the run row (inventory §2.5): queued -> running -> completed | failed, and
failed -> queued for an automatic retry. Concurrency per standalone task goes through
the same SlotLimiterWorkflow as repo tasks, with the scope `standalone-<taskId>`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.limiter import acquire_slot
    from activities.standalone_runs import StandaloneRunActivities
    from core.names import STANDALONE_RUN_WORKFLOW, Signals
    from schemas.blueprint_runs import (
        FinishStandaloneInput,
        OpenStandaloneInput,
        StandaloneAttemptInput,
        StandaloneAttemptResult,
        StandalonePlan,
        StandaloneRunInput,
    )
    from schemas.workflow import AcquireSlotInput, SlotGranted, SlotRelease, SlotRequest

QUICK = timedelta(seconds=30)
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)
RETRY_BACKOFF = timedelta(seconds=5)
STALL_THRESHOLD_MS = 300_000
# What the activities raise when the run's row or its task is gone (activities/standalone_runs.py).
DELETED = "StandaloneMissing"


def _was_deleted(err: BaseException) -> bool:
    cause = err.cause if isinstance(err, ActivityError) else None
    return isinstance(cause, ApplicationError) and cause.type == DELETED


def limiter_id(standalone_id: str) -> str:
    return f"limiter-standalone-{standalone_id}"


@workflow.defn(name=STANDALONE_RUN_WORKFLOW)
class StandaloneRunWorkflow:
    def __init__(self) -> None:
        self._grants: set[str] = set()
        self._run_id = ""

    @workflow.signal
    def slot_granted(self, grant: SlotGranted) -> None:
        self._grants.add(grant.request_id)

    @workflow.run
    async def run(self, input: StandaloneRunInput) -> str:
        # Schedule-started runs get `run-<taskId>-<fireTime>` from Temporal; the run id
        # is always the workflow id without its prefix, so `run-<runId>` holds for all.
        self._run_id = input.run_id or workflow.info().workflow_id.removeprefix("run-")
        plan = await workflow.execute_activity_method(
            StandaloneRunActivities.open_run,
            OpenStandaloneInput(
                run_id=self._run_id,
                standalone_id=input.standalone_id,
                trigger_id=input.trigger_id,
                params=input.params,
            ),
            start_to_close_timeout=QUICK,
            retry_policy=DB_RETRY,
        )
        if plan.refused is not None:
            await self._finish("failed", error=plan.refused)
            raise ApplicationError(plan.refused, type="RunRefused", non_retryable=True)
        try:
            return await self._attempts(input, plan)
        except BaseException as err:
            if is_cancelled_exception(err):
                await self._finish("failed", error="Cancelled by user")
            elif _was_deleted(err):
                # Deleting the task cancels its live runs and then deletes the rows
                # (api/task_kinds.py): an attempt that reads its row after the delete is
                # that same cancel, seen first. The run ends cancelled, with no row to write.
                raise asyncio.CancelledError("The task was deleted") from err
            raise

    async def _attempts(self, input: StandaloneRunInput, plan: StandalonePlan) -> str:
        attempt = 0
        while True:
            result = await self._one_attempt(input.standalone_id, plan, attempt)
            if result.success:
                await self._finish("completed", result=result, retry_count=attempt)
                return "completed"
            # A budget overrun is the run's verdict, not a flake: never retried.
            if result.over_budget or attempt >= plan.max_retries:
                await self._finish("failed", result=result, error=result.error)
                # Failing the workflow too shows the reason in the Temporal UI.
                raise ApplicationError(
                    result.error or "The agent failed",
                    type="BudgetExceeded" if result.over_budget else "AgentFailed",
                    non_retryable=True,
                )
            attempt += 1
            await self._finish("failed", result=result, error=result.error)
            await workflow.sleep(RETRY_BACKOFF * (2 ** min(attempt - 1, 6)))
            await self._finish("queued", retry_count=attempt)

    async def _one_attempt(
        self, standalone_id: str, plan: StandalonePlan, attempt: int
    ) -> StandaloneAttemptResult:
        scope = limiter_id(standalone_id)
        request_id = await self._acquire(scope, plan.max_concurrent)
        try:
            await self._finish("running", retry_count=attempt)
            return await workflow.execute_activity_method(
                StandaloneRunActivities.run_attempt,
                StandaloneAttemptInput(
                    run_id=self._run_id, attempt=attempt, stall_threshold_ms=STALL_THRESHOLD_MS
                ),
                start_to_close_timeout=timedelta(hours=24),
                heartbeat_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=0),
                # On cancel, wait until the activity has stopped the sandbox.
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        finally:
            await self._release(scope, request_id)

    async def _acquire(self, scope: str, capacity: int) -> str:
        request_id = str(workflow.uuid4())
        await workflow.execute_activity(
            acquire_slot,
            AcquireSlotInput(
                limiter_id=scope,
                request=SlotRequest(
                    workflow_id=workflow.info().workflow_id,
                    request_id=request_id,
                    priority=100,
                    capacity=capacity,
                ),
                initial_capacity=capacity,
            ),
            start_to_close_timeout=QUICK,
            retry_policy=DB_RETRY,
        )
        await workflow.wait_condition(lambda: request_id in self._grants)
        return request_id

    async def _release(self, scope: str, request_id: str) -> None:
        self._grants.discard(request_id)
        try:
            await workflow.get_external_workflow_handle(scope).signal(
                Signals.RELEASE,
                SlotRelease(workflow_id=workflow.info().workflow_id, request_id=request_id),
            )
        except Exception:
            # The limiter sweeps holders whose workflow has ended; nothing is lost.
            workflow.logger.warning("could not release slot %s on %s", request_id, scope)

    async def _finish(
        self,
        state: str,
        *,
        result: StandaloneAttemptResult | None = None,
        error: str | None = None,
        retry_count: int | None = None,
    ) -> None:
        await workflow.execute_activity_method(
            StandaloneRunActivities.record_run_state,
            FinishStandaloneInput(
                run_id=self._run_id,
                state=state,
                result=result,
                error=error,
                retry_count=retry_count,
            ),
            start_to_close_timeout=QUICK,
            retry_policy=DB_RETRY,
        )
