"""The agent part of a task's run: a slot, a sandbox, the agent, retried with backoff.

A mixin of RepoTaskWorkflow (workflows/repo_task.py); kept apart so each reads on its
own. It records the task's transitions through `TaskSteps` like the run does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.agent_runs import AgentRunActivities
    from activities.limiter import acquire_slot, release_slot
    from core import names
    from schemas.workflow import (
        AcquireSlotInput,
        BudgetExceeded,
        PrepareInput,
        PrepareResult,
        ReleaseSlotInput,
        RetryCommand,
        RunAgentInput,
        RunAgentResult,
        RunPlacement,
        SlotRelease,
        SlotRequest,
        TaskPatch,
    )
    from workflows.run_placement import fail_over, on_its_worker, place_run, stop_run, worker_gone
    from workflows.task_steps import DB_RETRY, QUICK, Command, S, TaskSteps, failure_message

RETRY_BACKOFF = names.RETRY_BACKOFF
DEFAULT_RESUME = "Continue working on this task."


@dataclass
class Rerun:
    """Send the task to the agent (again), with these instructions."""

    resume_prompt: str | None
    from_existing_branch: bool = True
    # Written by Optio (CI failure, review, conflicts), not by a person.
    automatic: bool = False


class AgentAttempts(TaskSteps):
    def _init_attempts(self) -> None:
        self._grants: set[str] = set()
        self._waiting_for: str | None = None
        self._limiter_id: str | None = None
        self._waiting_scope: str | None = None
        self._priority: int | None = None
        self._run_id: str | None = None
        # The worker holding the current run's worktree (workflows/run_placement.py).
        self._placement = RunPlacement()
        self._running: workflow.ActivityHandle[RunAgentResult] | None = None
        # Why the current run must stop: it took the task past its budget.
        self._budget_stop: str | None = None
        self._skip_backoff = False
        self._backing_off = False
        # Who asked for a retry while the run was backing off (None: nobody, or no user).
        self._retry_by: RetryCommand | None = None
        # A PR exists for the task branch: restarts continue from it instead of the base.
        self._has_pr = False

    async def _wait_for_human(self) -> Rerun | None:
        await workflow.wait_condition(lambda: self._command is not None)
        assert self._command is not None
        return await self._apply_human(self._command)

    async def _apply_human(self, command: Command) -> Rerun | None:
        command.applying = True
        trigger = "user_resume" if command.kind == "resume" else "force_restart"
        await self._transition(S.QUEUED, trigger, user_id=command.request.user_id)
        self._carry.auto_resumes = 0
        self._finish(command, accepted=True)
        prompt = command.request.prompt
        text = (prompt or DEFAULT_RESUME) if command.kind == "resume" else prompt
        return Rerun(resume_prompt=text, from_existing_branch=self._has_pr)

    def _stop_over_budget(self, notice: BudgetExceeded) -> None:
        # Only about the run in progress: a late signal about a finished one is moot.
        if notice.run_id == self._run_id and self._budget_stop is None:
            self._budget_stop = notice.message
            if self._running is not None:
                self._running.cancel()

    async def _attempt_chain(self, rerun: Rerun) -> RunAgentResult | None:
        """Run the agent until it succeeds (its result) or fails for good (None)."""
        snap = self._require_snap()
        self._has_pr = self._has_pr or snap.pr_url is not None
        retries_left = max(0, snap.max_retries - self._carry.attempt)
        while True:
            self._carry.attempt += 1
            result, provisioned = await self._run_agent_once(rerun)
            if result.success:
                return result
            if self._budget_stop is not None:
                trigger = "budget_exceeded"
            elif result.stalled:
                trigger = "stall_detected"
            elif provisioned:
                trigger = "agent_failure"
            else:
                trigger = "provisioning_permanent_failure"
            # prepare_worktree already retried what a retry can heal (five attempts); what
            # is left after a failed provisioning (a bad remote, a missing CLI) needs a person.
            will_retry = (
                retries_left > 0
                and not result.permanent
                and self._budget_stop is None
                and (provisioned or result.stalled)
            )
            if result.worker_lost:
                trigger, will_retry = "worker_lost", True  # not the agent's failure
            # A command arriving while "failed" is recorded is then taken by the backoff.
            self._backing_off = will_retry
            self._retry_by = None
            await self._transition(
                S.FAILED, trigger, message=result.error or result.summary or "Agent failed"
            )
            if not will_retry:
                return None
            retries_left -= 0 if result.worker_lost else 1
            # The wait happens in `queued`, where a cancel is allowed and the task does
            # not look finished; a person's retry meanwhile only skips the wait.
            if self._command is not None:
                rerun = await self._apply_human(self._command) or rerun
                continue
            await self._requeue(result, retries_left)
            await self._backoff(self._carry.attempt)

    async def _requeue(self, result: RunAgentResult, retries_left: int) -> None:
        """failed -> queued for the next attempt: a person's if they asked, else Optio's."""
        by = self._retry_by
        self._backing_off = False
        if by is not None:
            trigger = "user_retry"
        else:
            trigger = "auto_retry_stale" if result.stalled else "auto_retry"
        await self._transition(
            S.QUEUED,
            trigger,
            user_id=by.user_id if by else None,
            message=None if by else f"Automatic retry ({retries_left} left after this one)",
            patch=TaskPatch(retry_count=self._carry.attempt),
        )

    async def _backoff(self, attempt: int) -> None:
        """Wait in `queued` before an automatic retry; a person's retry cuts it short."""
        if self._retry_by is not None:
            return  # a person asked for the retry while "failed" was being recorded
        self._skip_backoff = False
        self._waiting_for = "retry"
        delay = RETRY_BACKOFF * (2 ** min(attempt - 1, 6))
        try:
            await workflow.wait_condition(
                lambda: self._skip_backoff or self._command is not None, timeout=delay
            )
        except TimeoutError:
            pass
        finally:
            self._waiting_for = None

    async def _run_agent_once(self, rerun: Rerun) -> tuple[RunAgentResult, bool]:
        snap = self._require_snap()
        # One global limiter per task queue (another Optio on the same Temporal keeps its
        # own), which also counts each repository's slots: one request per run.
        limiter = names.global_limiter_id(workflow.info().task_queue)
        slot: str | None = None
        run_id: str | None = None
        try:
            slot = await self._acquire(
                limiter,
                snap.global_limit,
                scopes={f"repo-{snap.repo_key}": snap.max_concurrent_tasks},
            )
            await self._transition(S.PROVISIONING, "worker_pickup")
            run_id = str(workflow.uuid4())
            self._run_id, self._budget_stop = run_id, None
            placement = self._placement = await place_run(run_id)
            try:
                prepared = await workflow.execute_activity_method(
                    AgentRunActivities.prepare_worktree,
                    PrepareInput(
                        task_id=snap.task_id,
                        run_id=run_id,
                        resume_prompt=rerun.resume_prompt,
                        from_existing_branch=rerun.from_existing_branch,
                        automatic=rerun.automatic,
                    ),
                    start_to_close_timeout=timedelta(minutes=15),
                    heartbeat_timeout=names.PREPARE_HEARTBEAT_TIMEOUT,
                    retry_policy=RetryPolicy(maximum_attempts=5),
                    **on_its_worker(placement),
                )
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise
                if worker_gone(err):
                    self._run_id = None
                    return await fail_over(run_id, placement), False
                # Out of attempts: a failed provisioning, recorded, not a stuck task.
                prepared = PrepareResult(ready=False, error=failure_message(err))
            if not prepared.ready:
                self._run_id = None
                return RunAgentResult(success=False, error=prepared.error), False
            await self._transition(S.RUNNING, "worktree_created")
            # Started, then awaited, so the budget signal can cancel it.
            running = workflow.start_activity_method(
                AgentRunActivities.run_agent,
                RunAgentInput(
                    task_id=snap.task_id, run_id=run_id, stall_threshold_ms=snap.stall_threshold_ms
                ),
                start_to_close_timeout=timedelta(hours=24),
                heartbeat_timeout=names.AGENT_HEARTBEAT_TIMEOUT,
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=0),
                **on_its_worker(placement),
            )
            self._running = running
            if self._budget_stop is not None:
                running.cancel()  # it passed the budget while its sandbox was prepared
            try:
                result = await running
            except (ActivityError, asyncio.CancelledError) as err:
                if worker_gone(err):
                    result = await fail_over(run_id, placement)
                elif self._budget_stop is None or not is_cancelled_exception(err):
                    raise
                else:
                    result = await self._stopped_over_budget(run_id)
            finally:
                self._running = None
            self._run_id = None  # finished: nothing left for a cancel to stop
            return result, True
        finally:
            await self._release(limiter, slot)

    async def _stopped_over_budget(self, run_id: str) -> RunAgentResult:
        """The agent passed the budget and its activity was cancelled: make sure its sandbox
        is gone; the run fails for good, never retried."""
        await stop_run(run_id, "cancelled", self._placement)
        message = self._budget_stop or "Budget exceeded"
        return RunAgentResult(success=False, permanent=True, error=message)

    # ---- slots ---------------------------------------------------------------------------

    async def _acquire(self, limiter_id: str, capacity: int, *, scopes: dict[str, int]) -> str:
        request_id = str(workflow.uuid4())
        self._waiting_for, self._limiter_id = "global", limiter_id
        self._waiting_scope = next(iter(scopes), None)
        await workflow.execute_local_activity(
            acquire_slot,
            AcquireSlotInput(
                limiter_id=limiter_id,
                request=SlotRequest(
                    workflow_id=workflow.info().workflow_id,
                    request_id=request_id,
                    priority=self._priority or 100,
                    capacity=capacity,
                    scopes=scopes,
                ),
                initial_capacity=capacity,
            ),
            start_to_close_timeout=QUICK,
            retry_policy=DB_RETRY,
        )
        await workflow.wait_condition(lambda: request_id in self._grants)
        self._waiting_for, self._limiter_id, self._waiting_scope = None, None, None
        return request_id

    async def _release(self, limiter_id: str, request_id: str | None) -> None:
        if request_id is None:
            return
        self._grants.discard(request_id)
        release = SlotRelease(workflow_id=workflow.info().workflow_id, request_id=request_id)
        try:
            await workflow.execute_local_activity(
                release_slot,
                ReleaseSlotInput(limiter_id=limiter_id, release=release),
                start_to_close_timeout=QUICK,
                retry_policy=RetryPolicy(maximum_attempts=5),
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            # The limiter sweeps holders whose workflow has moved on; nothing is lost.
            workflow.logger.warning("could not release slot %s on %s", request_id, limiter_id)
