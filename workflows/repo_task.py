"""RepoTaskWorkflow: one repo task from queue to merged PR, every step durable.

One run covers one attempt chain; `failed` and `cancelled` end the run, and a
retry starts a new run of the same workflow id (`task-<id>`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, SearchAttributePair
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.agent_runs import AgentRunActivities
    from activities.graph import GraphActivities
    from activities.limiter import acquire_slot, release_slot
    from activities.pull_requests import PullRequestActivities
    from activities.review import ReviewActivities
    from activities.tasks import TaskActivities
    from core import names
    from core.graph import dependencies_verdict
    from core.names import NEXT_RUN_REFUSAL
    from core.pr_decision import (
        RESUME_TRIGGERS,
        ChecksStatus,
        PrMemory,
        PrPolicy,
        PrState,
        PrView,
        ReviewStatus,
        decide,
        resume_prompt,
    )
    from core.states import (
        FORCE_RESTARTABLE_STATES,
        RESUMABLE_STATES,
        RETRYABLE_STATES,
        TaskState,
        can_transition,
    )
    from schemas.workflow import (
        AcquireSlotInput,
        BudgetExceeded,
        CarriedState,
        CommandResult,
        FinishPrInput,
        GraphInput,
        GraphSnapshot,
        LaunchReviewInput,
        LoadTaskInput,
        MergeCommand,
        MergePrInput,
        OpenPrInput,
        PatchTaskInput,
        PrepareInput,
        PrepareResult,
        PrEvent,
        PrFeedbackInput,
        PriorityChange,
        PrSnapshotData,
        RedoInput,
        ReleaseSlotInput,
        ReleaseWorktreeInput,
        RepoTaskInput,
        ResumeCommand,
        RetryCommand,
        RunAgentInput,
        RunAgentResult,
        RunPlacement,
        SlotGranted,
        SlotRelease,
        SlotReprioritize,
        SlotRequest,
        TaskFinished,
        TaskPatch,
        TaskSnapshot,
        TaskStatus,
        TransitionInput,
        WatchPrInput,
    )
    from workflows.run_placement import fail_over, on_its_worker, place_run, stop_run, worker_gone

S = TaskState
STATE_KEY = SearchAttributeKey.for_keyword(names.SA_TASK_STATE)
REPO_KEY = SearchAttributeKey.for_keyword(names.SA_REPO)
WORKSPACE_KEY = SearchAttributeKey.for_keyword(names.SA_WORKSPACE)
TYPE_KEY = SearchAttributeKey.for_keyword(names.SA_TASK_TYPE)
AGENT_KEY = SearchAttributeKey.for_keyword(names.SA_AGENT)

GLOBAL_LIMITER = "limiter-global"
ArgT = TypeVar("ArgT")
RetT = TypeVar("RetT")
QUICK = names.QUICK_TIMEOUT
DB_RETRY = RetryPolicy(initial_interval=names.DB_RETRY_INITIAL, maximum_interval=names.DB_RETRY_MAX)
# A PR can wait for days: bound the history and carry the memory into a fresh run.
MAX_WATCH_ROUNDS = 100
WATCH_ROUND_SECONDS = 300.0
RETRY_BACKOFF = names.RETRY_BACKOFF
DEFAULT_RESUME = "Continue working on this task."


@dataclass
class Command:
    kind: str  # resume | force_restart | merge
    prompt: str | None = None
    method: str = "squash"
    user_id: str | None = None
    done: bool = False
    result: CommandResult | None = None
    # Being carried out: the transitions it makes are its own, not a reason to refuse it.
    applying: bool = False

    @property
    def target(self) -> str:
        return S.COMPLETED if self.kind == "merge" else S.QUEUED


# Where each command may still be carried out; elsewhere a pending one is answered.
COMMAND_STATES: dict[str, frozenset[TaskState]] = {
    "resume": RESUMABLE_STATES,
    "force_restart": FORCE_RESTARTABLE_STATES,
    "merge": frozenset({S.PR_OPENED}),
}
NEXT_RUN = NEXT_RUN_REFUSAL


@dataclass
class Rerun:
    """Outcome of a phase that sends the task back to the queue with new instructions."""

    resume_prompt: str | None
    from_existing_branch: bool = True
    # Written by Optio (CI failure, review, conflicts), not by a person.
    automatic: bool = False


@workflow.defn(name=names.REPO_TASK_WORKFLOW)
class RepoTaskWorkflow:
    @workflow.init
    def __init__(self, input: RepoTaskInput) -> None:
        carried = input.carried
        self._task_id = input.task_id
        self._state = carried.state if carried else "unknown"
        self._seq = carried.seq if carried else 0
        self._attempt = carried.attempt if carried else 0
        self._auto_resumes = carried.auto_resumes if carried else 0
        self._memory_checks = carried.previous_checks_status if carried else None
        self._memory_review = carried.previous_review_status if carried else None
        # The review whose requested changes were already acted on: react once per review.
        self._handled_review = carried.handled_review_id if carried else None
        self._review_launched = carried.review_launched if carried else False
        # A webhook said the PR changed: look now rather than at the next poll. Carried
        # over continue-as-new, so a delivery during the last round is not lost.
        self._pr_poke = bool(carried and carried.pr_poke)
        # The deliveries behind the poke: the next watch round refetches only what they touch.
        self._pr_events: list[PrEvent] = list(carried.pr_events) if carried else []
        self._snap: TaskSnapshot | None = None
        self._grants: set[str] = set()
        self._waiting_for: str | None = None
        self._limiter_id: str | None = None
        self._slot_request_id: str | None = None
        self._run_id: str | None = None
        # The worker holding the current run's worktree (workflows/run_placement.py).
        self._placement = RunPlacement()
        self._priority: int | None = None
        self._command: Command | None = None
        # The state a transition in flight is recording: the row may already say it, so
        # a command validated meanwhile is judged against it, not the state it leaves.
        self._entering: str | None = None
        self._local_quick = False
        self._one_slot_request = False
        self._fewer_trips = False
        self._waiting_scope: str | None = None
        self._skip_backoff = False
        self._backing_off = False
        # Who asked for a retry while the run was backing off (None: nobody, or no user).
        self._retry_by: RetryCommand | None = None
        # Set once the run is ending ("ended") or continuing as new ("next_run"): no
        # command is accepted any more (the API resends one refused for "next_run").
        self._closing: str | None = None
        # Runs begun with the hardened-loop patch back off in `queued` (cancellable) and
        # take a failed provisioning as final (docs/temporal.md).
        self._hardened = False
        # Set by signals from dependencies and subtasks: re-read the graph before deciding.
        self._graph_dirty = bool(carried and carried.graph_dirty)
        self._graph: GraphSnapshot | None = None
        # A PR exists for the task branch: restarts continue from it instead of the base.
        self._has_pr = carried is not None
        # Why the current run must stop: it took the task past its budget.
        self._budget_stop: str | None = None
        self._running: workflow.ActivityHandle[RunAgentResult] | None = None

    # ---- messages -------------------------------------------------------------------------

    @workflow.query
    def status(self) -> TaskStatus:
        return TaskStatus(
            state=self._state,
            waiting_for=self._waiting_for,
            limiter_id=self._limiter_id,
            attempt=self._attempt,
            run_id=self._run_id,
            scope=self._waiting_scope,
        )

    @workflow.signal
    def slot_granted(self, grant: SlotGranted) -> None:
        self._grants.add(grant.request_id)

    @workflow.signal
    def pr_event(self, event: PrEvent) -> None:
        self._pr_poke = True
        self._pr_events = [*self._pr_events[-9:], event]

    @workflow.signal
    def budget_exceeded(self, notice: BudgetExceeded) -> None:
        # Only about the run in progress: a late signal about a finished one is moot.
        if notice.run_id == self._run_id and self._budget_stop is None:
            self._budget_stop = notice.message
            if self._running is not None:
                self._running.cancel()

    @workflow.signal
    def dependencies_changed(self) -> None:
        self._graph_dirty = True
        self._pr_poke = True
        self._pr_events = [*self._pr_events[-9:], PrEvent(kind="*")]  # look at everything

    @workflow.signal
    def subtasks_changed(self) -> None:
        self._graph_dirty = True
        self._pr_poke = True
        self._pr_events = [*self._pr_events[-9:], PrEvent(kind="*")]  # look at everything

    @workflow.signal
    async def priority(self, change: PriorityChange) -> None:
        self._priority = change.priority
        if self._waiting_for and self._limiter_id:
            await workflow.get_external_workflow_handle(self._limiter_id).signal(
                SlotLimiterSignals.REPRIORITIZE,
                SlotReprioritize(workflow_id=workflow.info().workflow_id, priority=change.priority),
            )

    def _refuse(self, to_state: str, allowed: frozenset[TaskState]) -> None:
        # In failed/cancelled only a backoff still listens; a run that is wrapping up
        # would accept a command and never act on it, so the API starts a new run.
        current = self._entering or self._state
        if self._closing == "next_run":
            raise ApplicationError(
                "The task's workflow is continuing in a new run; send the command again",
                type=NEXT_RUN,
                non_retryable=True,
            )
        if self._closing == "ended":
            raise ApplicationError(
                f"Invalid state transition: {current} -> {to_state}",
                type="InvalidTransition",
                non_retryable=True,
            )
        ended = current in (S.FAILED, S.CANCELLED) and not self._backing_off
        if current not in allowed or self._command is not None or ended:
            raise ApplicationError(
                f"Invalid state transition: {current} -> {to_state}",
                type="InvalidTransition",
                non_retryable=True,
            )

    @workflow.update
    async def resume(self, command: ResumeCommand) -> CommandResult:
        return await self._submit(Command("resume", prompt=command.prompt, user_id=command.user_id))

    @resume.validator
    def _validate_resume(self, command: ResumeCommand) -> None:
        self._refuse(S.QUEUED, RESUMABLE_STATES)

    @workflow.update
    async def force_restart(self, command: ResumeCommand) -> CommandResult:
        return await self._submit(
            Command("force_restart", prompt=command.prompt, user_id=command.user_id)
        )

    @force_restart.validator
    def _validate_force_restart(self, command: ResumeCommand) -> None:
        self._refuse(S.QUEUED, FORCE_RESTARTABLE_STATES)

    @workflow.update
    async def retry(self, command: RetryCommand | None = None) -> CommandResult:
        # Only reachable while an automatic retry is backing off: skip the wait, and say
        # who asked (the retry is theirs, not an automatic one).
        self._skip_backoff = True
        self._retry_by = command or RetryCommand()
        return CommandResult(accepted=True, state=self._state)

    @retry.validator
    def _validate_retry(self, command: RetryCommand | None = None) -> None:
        self._refuse(S.QUEUED, RETRYABLE_STATES)

    @workflow.update
    async def merge_pr(self, command: MergeCommand) -> CommandResult:
        return await self._submit(Command("merge", method=command.method, user_id=command.user_id))

    @merge_pr.validator
    def _validate_merge(self, command: MergeCommand) -> None:
        self._refuse(S.COMPLETED, frozenset({S.PR_OPENED}))

    async def _submit(self, command: Command) -> CommandResult:
        self._command = command
        await workflow.wait_condition(lambda: command.done)
        assert command.result is not None
        return command.result

    def _finish(
        self,
        command: Command,
        *,
        accepted: bool,
        message: str | None = None,
        next_run: bool = False,
    ) -> None:
        command.result = CommandResult(
            accepted=accepted, state=self._state, message=message, next_run=next_run
        )
        command.done = True
        if self._command is command:
            self._command = None

    def _drop_stale_command(self) -> None:
        """Answer a command the task has moved past (a merge accepted in pr_opened while
        the watch was already resuming the agent): nobody would act on it, and its caller
        would wait forever."""
        command = self._command
        if command is None or command.applying:
            return
        if command.kind == "merge" and self._state == S.COMPLETED:
            self._finish(command, accepted=True)  # merged meanwhile: what was asked is done
        elif self._state not in COMMAND_STATES[command.kind]:
            self._finish(
                command,
                accepted=False,
                message=f"Invalid state transition: {self._state} -> {command.target}",
            )

    async def _close(self, *, next_run: bool) -> None:
        """Before the run ends or continues as new: refuse what is pending, then let the
        handlers finish (they all can: nothing waits on this run any more)."""
        self._closing = "next_run" if next_run else "ended"
        command = self._command
        if command is not None and not command.applying:
            message = (
                "The task's workflow is continuing in a new run; send the command again"
                if next_run
                else f"Invalid state transition: {self._state} -> {command.target}"
            )
            self._finish(command, accepted=False, message=message, next_run=next_run)
        await workflow.wait_condition(workflow.all_handlers_finished)

    # ---- main ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: RepoTaskInput) -> str:
        # Quick database and limiter steps run as local activities: no server round trip
        # and no task queue hop each. Decided once, at the start, so that a run begun by
        # an older worker keeps its regular activities when a newer one replays it.
        #
        # "fewer-round-trips" implies every patch before it, so a new run records one
        # patch marker (and one TemporalChangeVersion upsert) instead of one per patch.
        # Its own changes: the steps between the agent and the PR's end run as local
        # activities, the slot goes back through an activity rather than a signal command,
        # and search attributes the start already set are not set again.
        self._fewer_trips = workflow.patched("fewer-round-trips")
        if self._fewer_trips:
            self._local_quick = self._one_slot_request = True
            self._hardened = workflow.patched("hardened-loop")
        else:
            self._local_quick = workflow.patched("local-quick-activities")
            self._one_slot_request = workflow.patched("one-slot-request")
        try:
            await self._run(input)
        except BaseException as err:
            # Cancellation surfaces as asyncio's or, from an activity, wrapped in ActivityError.
            if is_cancelled_exception(err):
                await self._on_cancel()
                await self._announce()
            elif isinstance(err, ActivityError | ApplicationError):
                await self._on_error(err)
                await self._announce()
            if not isinstance(err, workflow.ContinueAsNewError):
                self._closing = "ended"
                self._drop_pending()
            raise
        await self._announce()
        await self._close(next_run=False)
        return self._state

    def _drop_pending(self) -> None:
        command = self._command
        if command is not None and not command.done:
            self._finish(command, accepted=False, message="The task's run ended")

    async def _announce(self) -> None:
        """Tell dependents, the parent and its pipeline that this task's run ended."""
        if self._state in (S.COMPLETED, S.FAILED, S.CANCELLED):
            await self._quick(
                GraphActivities.notify_task_finished,
                TaskFinished(task_id=self._task_id, state=self._state),
            )
            # Added after histories were recorded: runs started before it replay unchanged.
            if self._fewer_trips or workflow.patched("release-worktree"):
                await self._step(
                    TaskActivities.release_worktree,
                    ReleaseWorktreeInput(task_id=self._task_id),
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=RetryPolicy(maximum_attempts=3),
                )

    async def _load_graph(self) -> GraphSnapshot:
        self._graph_dirty = False
        self._graph = await self._quick(
            GraphActivities.load_graph, GraphInput(task_id=self._task_id)
        )
        return self._graph

    async def _await_dependencies(self) -> bool:
        """From pending: queue now, or wait in waiting_on_deps until every dependency completed."""
        graph = await self._load_graph()
        verdict = dependencies_verdict(graph.dependency_states)
        if self._state == S.PENDING:
            if verdict == "met":
                # Only the activity's argument changes (the commands do not): no patch needed.
                trigger = (self._snap.queue_trigger if self._snap else None) or "task_submitted"
                await self._transition(S.QUEUED, trigger)
                return True
            await self._transition(S.WAITING_ON_DEPS, "task_submitted_with_deps")
        while True:
            if verdict == "failed":
                await self._transition(
                    S.FAILED,
                    "dependency_failed",
                    message=f"Dependency failed: {graph.failed_dependency}",
                )
                return False
            if verdict == "met":
                await self._transition(S.QUEUED, "dependencies_met")
                return True
            await workflow.wait_condition(lambda: self._graph_dirty)
            graph = await self._load_graph()
            verdict = dependencies_verdict(graph.dependency_states)

    async def _run(self, input: RepoTaskInput) -> None:
        snap = await self._quick(TaskActivities.load_task, LoadTaskInput(task_id=input.task_id))
        self._snap = snap
        self._has_pr = self._has_pr or snap.pr_url is not None
        if self._priority is None:
            self._priority = snap.priority
        if input.carried is None:
            self._state, self._seq = snap.state, snap.seq
        wanted = [
            REPO_KEY.value_set(snap.repo_url),
            WORKSPACE_KEY.value_set(snap.workspace_id),
            TYPE_KEY.value_set("repo-task"),
            AGENT_KEY.value_set(snap.agent_type),
            STATE_KEY.value_set(self._state),
        ]
        if self._fewer_trips:
            # The API sets them at the start and continue-as-new carries them over:
            # only a change (an edited task, a state moved meanwhile) is worth an upsert.
            current = workflow.info().typed_search_attributes
            wanted = [pair for pair in wanted if current.get(pair.key) != pair.value]
        if wanted:
            workflow.upsert_search_attributes(wanted)
        if input.carried is not None:
            rerun = await self._watch_pr()
        else:
            rerun = await self._enter_queue(input, snap)
        while rerun is not None:
            rerun = await self._attempt_chain(rerun)

    async def _enter_queue(self, input: RepoTaskInput, snap: TaskSnapshot) -> Rerun | None:
        has_pr = snap.pr_url is not None
        if input.mode == "fresh":
            if self._state in (S.PENDING, S.WAITING_ON_DEPS):
                if not await self._await_dependencies():
                    return None
            elif self._state != S.QUEUED:
                return None  # a duplicate start of a task that already moved on
            return Rerun(resume_prompt=None, from_existing_branch=False)
        if input.mode == "force_redo":
            await workflow.execute_activity_method(
                TaskActivities.reset_for_redo,
                RedoInput(task_id=snap.task_id),
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=DB_RETRY,
            )
            await self._transition(S.QUEUED, "force_redo", user_id=input.user_id, force=True)
            return Rerun(resume_prompt=None, from_existing_branch=False)
        trigger = {"retry": "user_retry", "resume": "user_resume", "force_restart": "force_restart"}
        await self._transition(
            S.QUEUED,
            trigger[input.mode],
            user_id=input.user_id,
            patch=TaskPatch(retry_count=snap.retry_count + 1) if input.mode == "retry" else None,
        )
        if input.mode == "resume":
            return Rerun(resume_prompt=input.prompt or DEFAULT_RESUME, from_existing_branch=has_pr)
        if input.mode == "force_restart":
            return Rerun(resume_prompt=input.prompt, from_existing_branch=has_pr)
        return Rerun(resume_prompt=None, from_existing_branch=has_pr)

    async def _attempt_chain(self, rerun: Rerun) -> Rerun | None:
        """Run the agent (with automatic retries) and carry a success to its PR."""
        snap = self._require_snap()
        retries_left = max(0, snap.max_retries - self._attempt)
        while True:
            self._attempt += 1
            result, provisioned = await self._run_agent_once(rerun)
            if result.success:
                return await self._after_success(result)
            if self._budget_stop is not None:
                trigger = "budget_exceeded"
            elif result.stalled:
                trigger = "stall_detected"
            elif provisioned:
                trigger = "agent_failure"
            else:
                trigger = "provisioning_permanent_failure"
            will_retry = retries_left > 0 and not result.permanent and self._budget_stop is None
            if self._hardened and not provisioned and not result.stalled:
                # prepare_worktree already retried what a retry can heal (five attempts);
                # what is left (a bad remote, a missing agent CLI) needs a person.
                will_retry = False
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
            if self._hardened:
                # The wait happens in `queued`, where a cancel is allowed and the task does
                # not look finished; a person's retry meanwhile only skips the wait.
                if self._command is not None:
                    rerun = await self._apply_human(self._command) or rerun
                    continue
                await self._requeue(result, retries_left)
                await self._backoff(self._attempt)
                continue
            await self._backoff(self._attempt)
            if self._command is not None:
                # A person resumed or restarted it while it waited: their words win.
                human = await self._apply_human(self._command)
                if human is None:
                    return None
                rerun = human
                continue
            await self._requeue(result, retries_left)

    async def _requeue(self, result: RunAgentResult, retries_left: int) -> None:
        """failed -> queued for the next attempt: a person's if they asked, else Optio's."""
        by = self._retry_by
        self._backing_off = False
        if by is not None:
            trigger = "user_retry"
        else:
            trigger = "auto_retry_stale" if result.stalled else "auto_retry"
        message = None if by else f"Automatic retry ({retries_left} left after this one)"
        await self._transition(
            S.QUEUED,
            trigger,
            user_id=by.user_id if by else None,
            message=message if self._hardened else None,
            patch=TaskPatch(retry_count=self._attempt),
        )

    async def _backoff(self, attempt: int) -> None:
        """Wait before an automatic retry; a retry, resume or restart cuts it short."""
        if self._hardened and self._retry_by is not None:
            return  # a person asked for the retry while "failed" was being recorded
        self._skip_backoff = False
        self._backing_off = not self._hardened
        self._waiting_for = "retry" if self._hardened else None
        delay = RETRY_BACKOFF * (2 ** min(attempt - 1, 6))
        try:
            await workflow.wait_condition(
                lambda: self._skip_backoff or self._command is not None, timeout=delay
            )
        except TimeoutError:
            pass
        finally:
            self._backing_off = False
            if self._hardened:
                self._waiting_for = None

    async def _run_agent_once(self, rerun: Rerun) -> tuple[RunAgentResult, bool]:
        snap = self._require_snap()
        # One global limiter per task queue: workers of another queue (another Optio on
        # the same Temporal, or a test) would otherwise hold or starve each other's slots.
        global_limiter = (
            names.global_limiter_id(workflow.info().task_queue)
            if self._fewer_trips or workflow.patched("limiter-per-task-queue")
            else GLOBAL_LIMITER
        )
        repo_limiter = f"limiter-repo-{snap.repo_key}"
        repo_slot: str | None = None
        if self._one_slot_request:
            # One request to the global limiter, which also counts the repository's slots:
            # half the round trips of asking the repo limiter first, then the global one.
            repo_limiter = global_limiter
        else:
            repo_slot = await self._acquire(repo_limiter, snap.max_concurrent_tasks, "repo")
        global_slot: str | None = None
        run_id: str | None = None
        try:
            global_slot = await self._acquire(
                global_limiter,
                snap.global_limit,
                "global",
                scopes={f"repo-{snap.repo_key}": snap.max_concurrent_tasks}
                if self._one_slot_request
                else None,
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
            # Started, then awaited, so the budget signal can cancel it: the same commands
            # as executing it, and histories recorded before budgets replay unchanged.
            running = workflow.start_activity_method(
                AgentRunActivities.run_agent,
                RunAgentInput(
                    task_id=snap.task_id,
                    run_id=run_id,
                    stall_threshold_ms=snap.stall_threshold_ms,
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
            await self._release(global_limiter, global_slot)
            await self._release(repo_limiter, repo_slot)

    async def _stopped_over_budget(self, run_id: str) -> RunAgentResult:
        """The agent passed the budget and its activity was cancelled: make sure its sandbox
        is gone; the run fails for good, never retried."""
        message = self._budget_stop or "Budget exceeded"
        await stop_run(run_id, "cancelled", self._placement)
        return RunAgentResult(success=False, permanent=True, error=message)

    async def _after_success(self, result: RunAgentResult) -> Rerun | None:
        snap = self._require_snap()
        fields = TaskPatch(
            result_summary=result.summary or None,
            session_id=result.session_id,
            cost_usd=result.cost_usd,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            model_used=result.model,
        )
        opened = await self._step(
            PullRequestActivities.open_pull_request,
            OpenPrInput(task_id=snap.task_id, summary=result.summary),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=DB_RETRY,
        )
        if not opened.opened:
            await self._transition(
                S.NEEDS_ATTENTION,
                "completed_without_pr",
                message=opened.reason or "The agent finished without changes to open a PR for",
                patch=fields,
            )
            return await self._wait_for_human()
        fields.pr_url, fields.pr_number, fields.pr_state = opened.pr_url, opened.pr_number, "open"
        self._has_pr = True
        await self._transition(S.PR_OPENED, "pr_detected", patch=fields)
        self._memory_checks, self._memory_review = None, None
        if self._fewer_trips and opened.snapshot is not None:
            # Opening told everything there is to know for now (no checks to wait for):
            # decide at once instead of a watch round that would only say it again.
            outcome = await self._react(opened.snapshot)
            if outcome is not None:
                return outcome.rerun
            return await self._watch_pr(known=opened.snapshot)
        return await self._watch_pr()

    async def _watch_pr(self, known: PrSnapshotData | None = None) -> Rerun | None:
        snap = self._require_snap()
        for _ in range(MAX_WATCH_ROUNDS):
            self._pr_poke = False
            events, self._pr_events = self._pr_events, []
            watch = workflow.start_activity_method(
                PullRequestActivities.watch_pull_request,
                WatchPrInput(
                    task_id=snap.task_id,
                    known=known,
                    max_wait_seconds=WATCH_ROUND_SECONDS,
                    events=events if known is None else [],
                ),
                start_to_close_timeout=timedelta(seconds=WATCH_ROUND_SECONDS + 3600),
                # The watch beats every few seconds whatever the poll interval: a dead
                # worker's watch (and the checks it ran) is taken over within seconds.
                heartbeat_timeout=names.WATCH_HEARTBEAT_TIMEOUT,
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60)
                ),
            )
            # The lambda is awaited within this iteration, so binding `watch` late is fine.
            await workflow.wait_condition(
                lambda: watch.done() or self._command is not None or self._pr_poke  # noqa: B023
            )
            if self._command is not None:
                watch.cancel()
                outcome = await self._pr_command(self._command)
                if outcome is not None or self._state != S.PR_OPENED:
                    return outcome.rerun if outcome else None
                continue
            if not watch.done():
                # A webhook, or a subtask finished (a review may have just been posted):
                # a fresh round with nothing known fetches the PR at once.
                watch.cancel()
                known = None
                continue
            known = watch.result()
            outcome = await self._react(known)
            if outcome is not None:
                return outcome.rerun
        if self._command is not None:
            # Accepted during the last round's reaction: carry it out here, not nowhere.
            outcome = await self._pr_command(self._command)
            if outcome is not None or self._state != S.PR_OPENED:
                return outcome.rerun if outcome else None
        await self._close(next_run=True)
        workflow.continue_as_new(
            RepoTaskInput(
                task_id=snap.task_id,
                carried=CarriedState(
                    state=self._state,
                    seq=self._seq,
                    attempt=self._attempt,
                    auto_resumes=self._auto_resumes,
                    previous_checks_status=self._memory_checks,
                    previous_mergeable=None,
                    previous_review_status=self._memory_review,
                    handled_review_id=self._handled_review,
                    review_launched=self._review_launched,
                    pr_poke=self._pr_poke,
                    pr_events=self._pr_events,
                    graph_dirty=self._graph_dirty,
                ),
            )
        )

    async def _react(self, pr: PrSnapshotData) -> Outcome | None:
        snap = self._require_snap()
        # A requested change already acted on stays "seen" even after a resume reset memory.
        handled = pr.review_id is not None and pr.review_id == self._handled_review
        previous_review = "changes_requested" if handled else self._memory_review
        first_sighting = self._memory_checks is None
        decision = decide(
            pr=PrView(
                state=cast(PrState, pr.state),
                mergeable=pr.mergeable,
                checks_status=cast(ChecksStatus, pr.checks_status),
                review_status=cast(ReviewStatus, pr.review_status),
            ),
            policy=PrPolicy(
                auto_merge=snap.auto_merge,
                cautious_mode=snap.cautious_mode,
                auto_resume=snap.auto_resume,
                max_auto_resumes=snap.max_auto_resumes,
                require_approval=snap.require_approval,
            ),
            memory=PrMemory(
                previous_checks_status=self._memory_checks,
                previous_review_status=previous_review,
                auto_resume_count=self._auto_resumes,
                task_failed=False,
            ),
        )
        recorded = decision.checks_status_to_record
        if recorded is not None and recorded != self._memory_checks:
            await self._quick(
                TaskActivities.patch_task,
                PatchTaskInput(task_id=snap.task_id, patch=TaskPatch(pr_checks_status=recorded)),
            )
        newly_passing = pr.checks_status == "passing" and self._memory_checks != "passing"
        self._memory_checks = recorded if recorded is not None else self._memory_checks
        self._memory_review = pr.review_status
        if decision.kind == "complete":
            await self._finish_pr(merged=True)
            await self._transition(
                S.COMPLETED, decision.trigger or "pr_merged", patch=TaskPatch(pr_state="merged")
            )
            return Outcome(rerun=None)
        if decision.kind == "fail":
            await self._transition(
                S.FAILED,
                decision.trigger or "pr_closed",
                message=decision.message,
                patch=TaskPatch(pr_state="closed"),
            )
            return Outcome(rerun=None)
        if await self._maybe_launch_review(first_sighting=first_sighting, passing=newly_passing):
            return None  # the review subtask now blocks the merge; decide again when it ends
        graph = self._graph if self._graph and not self._graph_dirty else await self._load_graph()
        steps_done = graph.steps_total > 0 and graph.steps_completed == graph.steps_total
        if decision.kind == "merge" and graph.blocking_open == 0:
            trigger = "all_steps_complete" if steps_done else decision.trigger or "auto_merged"
            return await self._merge("squash", trigger=trigger)
        if decision.kind in ("merge", "wait") and steps_done and graph.blocking_open == 0:
            await self._transition(S.COMPLETED, "all_steps_complete")
            return Outcome(rerun=None)
        if decision.resume_reason == "review":
            self._handled_review = pr.review_id
        if decision.kind == "resume_agent" and decision.resume_reason is not None:
            details = await self._feedback(decision.resume_reason, pr.review_id)
            prompt = resume_prompt(
                reason=decision.resume_reason,
                base_branch=snap.repo_branch,
                review_comments=details,
                ci_failures=details,
            )
            await self._transition(
                S.NEEDS_ATTENTION, decision.trigger or "ci_failing", message=prompt[:200]
            )
            await self._transition(S.QUEUED, RESUME_TRIGGERS[decision.resume_reason])
            self._auto_resumes += 1
            # Conflicts get a fresh session: the old one only knows the pre-rebase code.
            return Outcome(
                rerun=Rerun(resume_prompt=prompt, from_existing_branch=True, automatic=True)
            )
        if decision.kind == "needs_attention":
            await self._transition(
                S.NEEDS_ATTENTION, decision.trigger or "ci_failing", message=decision.message
            )
            return Outcome(rerun=await self._wait_for_human())
        return None

    async def _feedback(self, reason: str, review_id: str | None) -> str | None:
        """Failing checks with their logs, or the review's comments, fetched by Optio."""
        found = await workflow.execute_activity_method(
            PullRequestActivities.pr_feedback,
            PrFeedbackInput(task_id=self._task_id, reason=reason, review_id=review_id),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=5,
            ),
        )
        return found.text

    async def _finish_pr(self, *, merged: bool) -> None:
        """Close the linked issue; best effort, a forge outage must not block completion."""
        try:
            await self._step(
                PullRequestActivities.finish_pull_request,
                FinishPrInput(task_id=self._task_id, merged=merged),
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    maximum_interval=timedelta(seconds=30),
                    maximum_attempts=5,
                ),
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            workflow.logger.warning("could not close the linked issue: %s", failure_message(err))

    async def _maybe_launch_review(self, *, first_sighting: bool, passing: bool) -> bool:
        """reviewTrigger on_pr fires on the PR's first sighting, on_ci_pass when CI passes."""
        snap = self._require_snap()
        if self._review_launched or not snap.review_enabled or snap.task_type != "coding":
            return False
        trigger = snap.review_trigger or "on_ci_pass"
        if not ((trigger == "on_pr" and first_sighting) or (trigger == "on_ci_pass" and passing)):
            return False
        launched = await workflow.execute_activity_method(
            ReviewActivities.launch_review,
            LaunchReviewInput(parent_task_id=self._task_id),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=DB_RETRY,
        )
        self._review_launched = True
        self._graph_dirty = True
        return launched.review_task_id is not None

    async def _merge(
        self,
        method: str,
        *,
        trigger: str,
        user_id: str | None = None,
        command: Command | None = None,
    ) -> Outcome | None:
        snap = self._require_snap()
        # One git merge or one forge call. As a local step, a worker that dies mid-merge
        # loses its workflow task and the next worker runs the step again; as a regular
        # activity (runs begun before fewer-round-trips) it is noticed by its heartbeat.
        # Either way the retry finds the PR merged (merging twice is a no-op).
        merged = await self._step(
            PullRequestActivities.merge_pull_request,
            MergePrInput(task_id=snap.task_id, method=method),
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(seconds=20),
            retry_policy=DB_RETRY,
        )
        if merged.merged:
            await self._finish_pr(merged=True)
            await self._transition(
                S.COMPLETED, trigger, user_id=user_id, patch=TaskPatch(pr_state="merged")
            )
            return Outcome(rerun=None)
        if merged.conflict:
            await self._transition(
                S.NEEDS_ATTENTION,
                "merge_conflicts",
                message=merged.message,
                patch=TaskPatch(pr_checks_status="conflicts"),
            )
            self._memory_checks = "conflicts"
            if command is not None:
                # The person who asked learns now; the task waits for what they say next.
                self._finish(command, accepted=False, message=merged.message)
            return Outcome(rerun=await self._wait_for_human())
        return None

    async def _pr_command(self, command: Command) -> Outcome | None:
        command.applying = True
        if command.kind == "merge":
            detached = self._hardened
            if detached:
                # Not the pending command any more: a merge that meets conflicts waits for
                # a person's next command, and must not take itself for it.
                self._command = None
            outcome = await self._merge(
                command.method,
                trigger="pr_merged",
                user_id=command.user_id,
                command=command if detached else None,
            )
            if not command.done:
                merged = self._state == S.COMPLETED
                self._finish(command, accepted=merged, message=None if merged else "Merge failed")
            return outcome
        rerun = await self._apply_human(command)
        return Outcome(rerun=rerun)

    async def _wait_for_human(self) -> Rerun | None:
        await workflow.wait_condition(lambda: self._command is not None)
        assert self._command is not None
        return await self._apply_human(self._command)

    async def _apply_human(self, command: Command) -> Rerun | None:
        command.applying = True
        trigger = "user_resume" if command.kind == "resume" else "force_restart"
        await self._transition(S.QUEUED, trigger, user_id=command.user_id)
        self._auto_resumes = 0
        self._finish(command, accepted=True)
        text = (command.prompt or DEFAULT_RESUME) if command.kind == "resume" else command.prompt
        return Rerun(resume_prompt=text, from_existing_branch=self._has_pr)

    # ---- slots ---------------------------------------------------------------------------

    async def _acquire(
        self, limiter_id: str, capacity: int, label: str, *, scopes: dict[str, int] | None = None
    ) -> str:
        request_id = str(workflow.uuid4())
        self._waiting_for, self._limiter_id = label, limiter_id
        self._waiting_scope = next(iter(scopes), None) if scopes else None
        slot_input = AcquireSlotInput(
            limiter_id=limiter_id,
            request=SlotRequest(
                workflow_id=workflow.info().workflow_id,
                request_id=request_id,
                priority=self._priority or 100,
                capacity=capacity,
                scopes=scopes or {},
            ),
            initial_capacity=capacity,
        )
        if self._local_quick:
            await workflow.execute_local_activity(
                acquire_slot, slot_input, start_to_close_timeout=QUICK, retry_policy=DB_RETRY
            )
        else:
            await workflow.execute_activity(
                acquire_slot, slot_input, start_to_close_timeout=QUICK, retry_policy=DB_RETRY
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
            if self._fewer_trips:
                await workflow.execute_local_activity(
                    release_slot,
                    ReleaseSlotInput(limiter_id=limiter_id, release=release),
                    start_to_close_timeout=QUICK,
                    retry_policy=RetryPolicy(maximum_attempts=5),
                )
            else:
                await workflow.get_external_workflow_handle(limiter_id).signal(
                    SlotLimiterSignals.RELEASE, release
                )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            workflow.logger.warning("could not release slot %s on %s", request_id, limiter_id)
        except Exception:
            # The limiter sweeps holders whose workflow has moved on; nothing is lost.
            workflow.logger.warning("could not release slot %s on %s", request_id, limiter_id)

    async def _step(
        self,
        fn: Callable[[Any, ArgT], Awaitable[RetT]],
        arg: ArgT,
        *,
        start_to_close_timeout: timedelta,
        retry_policy: RetryPolicy,
        heartbeat_timeout: timedelta | None = None,
    ) -> RetT:
        """A step of seconds at most (open, merge or finish a PR, drop a worktree): local in
        runs that decided on fewer round trips, each a whole server round trip otherwise
        (where `heartbeat_timeout` applies; local activities do not heartbeat)."""
        if self._fewer_trips:
            return await workflow.execute_local_activity_method(
                fn, arg, start_to_close_timeout=start_to_close_timeout, retry_policy=retry_policy
            )
        return await workflow.execute_activity_method(
            fn,
            arg,
            start_to_close_timeout=start_to_close_timeout,
            heartbeat_timeout=heartbeat_timeout,
            retry_policy=retry_policy,
        )

    async def _quick(self, fn: Callable[[Any, ArgT], Awaitable[RetT]], arg: ArgT) -> RetT:
        """A short database step (a few ms): local when this run decided so at its start."""
        if self._local_quick:
            return await workflow.execute_local_activity_method(
                fn, arg, start_to_close_timeout=QUICK, retry_policy=DB_RETRY
            )
        return await workflow.execute_activity_method(
            fn, arg, start_to_close_timeout=QUICK, retry_policy=DB_RETRY
        )

    # ---- transitions ---------------------------------------------------------------------

    async def _transition(
        self,
        to_state: str,
        trigger: str,
        *,
        message: str | None = None,
        user_id: str | None = None,
        patch: TaskPatch | None = None,
        force: bool = False,
    ) -> None:
        if not force and not can_transition(self._state, to_state):
            raise ApplicationError(
                f"Invalid state transition: {self._state} -> {to_state}",
                type="InvalidTransition",
                non_retryable=True,
            )
        self._seq += 1
        self._entering = to_state
        try:
            await self._quick(
                TaskActivities.record_transition,
                TransitionInput(
                    task_id=self._task_id,
                    seq=self._seq,
                    from_state=self._state,
                    to_state=to_state,
                    trigger=trigger,
                    message=message,
                    user_id=user_id,
                    patch=patch or TaskPatch(),
                    force=force,
                ),
            )
        finally:
            self._entering = None
        self._state = to_state
        workflow.upsert_search_attributes([STATE_KEY.value_set(to_state)])
        self._drop_stale_command()

    async def _on_cancel(self) -> None:
        if self._state == "unknown" and (
            self._fewer_trips or workflow.patched("cancel-before-load")
        ):
            # Cancelled before the task was loaded (a cancel right behind the start): load
            # it now, or the row would stay `pending` with nobody left to move it.
            try:
                snap = await self._quick(
                    TaskActivities.load_task, LoadTaskInput(task_id=self._task_id)
                )
            except ActivityError:
                return  # the row is gone: nothing to record
            self._state, self._seq = snap.state, snap.seq
        if self._run_id is not None:
            await stop_run(self._run_id, "cancelled", self._placement)
        if self._state in (S.PENDING, S.PROVISIONING):
            # No direct edge to cancelled from here: go through queued, as the table allows.
            await self._transition(S.QUEUED, "user_cancel")
        if can_transition(self._state, S.CANCELLED):
            await self._transition(S.CANCELLED, "user_cancel")

    async def _on_error(self, err: BaseException) -> None:
        """A step failed for good: say so on the task instead of leaving it mid-state."""
        if self._run_id is not None:
            await stop_run(self._run_id, "failed", self._placement)
        if self._state != "unknown" and can_transition(self._state, S.FAILED):
            await self._transition(S.FAILED, "worker_error", message=failure_message(err))

    def _require_snap(self) -> TaskSnapshot:
        assert self._snap is not None
        return self._snap


def failure_message(err: BaseException) -> str:
    """The innermost message of a Temporal failure chain, for a person to read."""
    while err.__cause__ is not None:
        err = err.__cause__
    return getattr(err, "message", None) or str(err) or type(err).__name__


@dataclass
class Outcome:
    rerun: Rerun | None


SlotLimiterSignals = names.Signals


__all__ = ["RepoTaskWorkflow", "ActivityError", "SearchAttributePair"]
