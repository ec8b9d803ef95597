"""ReviewWorkflow: a review agent on a task's PR, posting its verdict as a real review."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.agent_runs import AgentRunActivities
    from activities.graph import GraphActivities
    from activities.review import ReviewActivities
    from activities.tasks import TaskActivities
    from core.names import (
        AGENT_HEARTBEAT_TIMEOUT,
        DB_RETRY_INITIAL,
        DB_RETRY_MAX,
        PREPARE_HEARTBEAT_TIMEOUT,
        QUICK_TIMEOUT,
        REVIEW_WORKFLOW,
        Signals,
    )
    from core.states import TaskState, can_transition
    from schemas.workflow import (
        BudgetExceeded,
        LoadTaskInput,
        PrepareInput,
        ReleaseWorktreeInput,
        ReviewInput,
        ReviewVerdictInput,
        RunAgentInput,
        RunAgentResult,
        RunPlacement,
        TaskFinished,
        TaskPatch,
        TransitionInput,
    )
    from workflows.run_placement import fail_over, on_its_worker, place_run, stop_run, worker_gone

S = TaskState
QUICK = QUICK_TIMEOUT
DB_RETRY = RetryPolicy(initial_interval=DB_RETRY_INITIAL, maximum_interval=DB_RETRY_MAX)


@workflow.defn(name=REVIEW_WORKFLOW)
class ReviewWorkflow:
    def __init__(self) -> None:
        self._state = S.QUEUED.value
        self._seq = 0
        self._task_id = ""
        self._run_id: str | None = None
        self._placement = RunPlacement()  # the worker holding the run (run_placement.py)
        # Why the review's run must stop: it took the review past its budget.
        self._budget_stop: str | None = None
        self._running: asyncio.Task[RunAgentResult] | None = None

    @workflow.signal(name=Signals.BUDGET_EXCEEDED)
    def budget_exceeded(self, notice: BudgetExceeded) -> None:
        # Only about the run in progress: a late signal about a finished one is moot.
        if notice.run_id == self._run_id and self._budget_stop is None:
            self._budget_stop = notice.message
            if self._running is not None:
                self._running.cancel()

    @workflow.run
    async def run(self, input: ReviewInput) -> str:
        self._task_id = input.task_id
        snap = await workflow.execute_activity_method(
            TaskActivities.load_task,
            LoadTaskInput(task_id=input.task_id),
            start_to_close_timeout=QUICK,
            retry_policy=DB_RETRY,
        )
        self._state, self._seq = snap.state, snap.seq
        try:
            await self._review(input, stall_ms=snap.stall_threshold_ms)
        except BaseException as err:
            # A cancel (POST /api/tasks/<reviewId>/cancel) surfaces as asyncio's or, from
            # the agent's activity, wrapped in ActivityError: it is not a failed review.
            if is_cancelled_exception(err):
                await self._on_cancel()
                raise
            if not isinstance(err, ActivityError | ApplicationError):
                raise
            cause = err.cause if isinstance(err, ActivityError) and err.cause else err
            await self._move(S.FAILED, "review_failed", message=str(cause)[:500])
        await self._wrap_up()
        return self._state

    async def _on_cancel(self) -> None:
        """Stop the agent, record `cancelled`, and tell the parent, then let the cancel end
        the run (Temporal shows it cancelled)."""
        if self._run_id is not None:
            await stop_run(self._run_id, "cancelled", self._placement)
        if self._state == S.PROVISIONING:
            await self._move(S.QUEUED, "user_cancel")
        if can_transition(self._state, S.CANCELLED):
            await self._move(S.CANCELLED, "user_cancel")
        await self._wrap_up()

    async def _wrap_up(self) -> None:
        """Drop the read-only worktree and tell the parent (its merge may wait on this)."""
        try:
            # The verdict is read: the read-only worktree has nothing left to give.
            await workflow.execute_activity_method(
                TaskActivities.release_worktree,
                ReleaseWorktreeInput(task_id=self._task_id),
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError as err:
            workflow.logger.warning("could not remove the review worktree: %s", err.cause or err)
        await workflow.execute_activity_method(
            GraphActivities.notify_task_finished,
            TaskFinished(task_id=self._task_id, state=self._state),
            start_to_close_timeout=QUICK,
            retry_policy=DB_RETRY,
        )

    async def _review(self, input: ReviewInput, *, stall_ms: int) -> None:
        await self._move(S.PROVISIONING, "worker_pickup")
        run_id = self._run_id = str(workflow.uuid4())
        placement = self._placement = await place_run(run_id)
        try:
            prepared = await workflow.execute_activity_method(
                AgentRunActivities.prepare_worktree,
                PrepareInput(
                    task_id=input.task_id,
                    run_id=run_id,
                    resume_prompt=None,
                    from_existing_branch=False,
                ),
                start_to_close_timeout=timedelta(minutes=15),
                heartbeat_timeout=PREPARE_HEARTBEAT_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=5),
                **on_its_worker(placement),
            )
            if not prepared.ready:
                await self._move(S.FAILED, "provisioning_permanent_failure", message=prepared.error)
                return
            await self._move(S.RUNNING, "worktree_created")
            # Started, then awaited, so the budget signal can cancel it.
            running = self._running = workflow.start_activity_method(
                AgentRunActivities.run_agent,
                RunAgentInput(task_id=input.task_id, run_id=run_id, stall_threshold_ms=stall_ms),
                start_to_close_timeout=timedelta(hours=6),
                heartbeat_timeout=AGENT_HEARTBEAT_TIMEOUT,
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=0),
                **on_its_worker(placement),
            )
            if self._budget_stop is not None:
                running.cancel()  # it passed the budget while its worktree was prepared
            try:
                result = await running
            finally:
                self._running = None
        except (ActivityError, asyncio.CancelledError) as err:
            if self._budget_stop is not None and is_cancelled_exception(err):
                await self._stopped_over_budget(run_id)
                return
            if not worker_gone(err):
                raise
            self._run_id = None
            # A review is not retried on its own: a person relaunches it.
            lost = await fail_over(run_id, placement)
            await self._move(S.FAILED, "worker_lost", message=lost.error)
            return
        self._run_id = None
        if not result.success:
            await self._move(S.FAILED, "agent_failure", message=result.error or result.summary)
            return
        verdict = await workflow.execute_activity_method(
            ReviewActivities.post_verdict,
            ReviewVerdictInput(
                task_id=input.task_id, parent_task_id=input.parent_task_id, run_id=run_id
            ),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=10,
            ),
        )
        await self._move(
            S.COMPLETED,
            "review_posted" if verdict.posted else "review_recorded",
            message=f"{verdict.verdict}: {verdict.message or ''}"[:500],
            patch=TaskPatch(result_summary=verdict.message),
        )

    async def _stopped_over_budget(self, run_id: str) -> None:
        """The agent passed the budget and its activity was cancelled: make sure its sandbox
        is gone; the review fails, never retried, and posts no verdict."""
        await stop_run(run_id, "cancelled", self._placement)
        self._run_id = None
        message = (self._budget_stop or "Budget exceeded")[:500]
        await self._move(S.FAILED, "budget_exceeded", message=message)

    async def _move(
        self, to: str, trigger: str, *, message: str | None = None, patch: TaskPatch | None = None
    ) -> None:
        self._seq += 1
        await workflow.execute_activity_method(
            TaskActivities.record_transition,
            TransitionInput(
                task_id=self._task_id,
                seq=self._seq,
                from_state=self._state,
                to_state=to,
                trigger=trigger,
                message=message,
                patch=patch or TaskPatch(),
            ),
            start_to_close_timeout=QUICK,
            retry_policy=DB_RETRY,
        )
        self._state = to
