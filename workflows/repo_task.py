"""RepoTaskWorkflow: one repo task from queue to merged PR, every step durable.

    queue (dependencies, slots) -> agent (retries with backoff) -> PR phase (a child)

One run covers one attempt chain; `failed` and `cancelled` end the run, and a retry
starts a new run of the same workflow id (`task-<id>`). The PR phase is its own
workflow (workflows/pr_phase.py) that continues as new while a PR waits; this run
stays short and never continues as new. Every update is validated and answered here;
while the PR phase runs, commands and webhooks are passed on to it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.graph import GraphActivities
    from activities.pull_requests import PullRequestActivities
    from activities.tasks import TaskActivities
    from core import names
    from core.graph import dependencies_verdict
    from core.states import (
        FORCE_RESTARTABLE_STATES,
        RESUMABLE_STATES,
        RETRYABLE_STATES,
        TaskState,
        can_transition,
    )
    from schemas.workflow import (
        BudgetExceeded,
        CarriedState,
        CommandResult,
        GraphInput,
        LoadTaskInput,
        MergeCommand,
        OpenPrInput,
        PrCommand,
        PrEvent,
        PriorityChange,
        PrPhaseInput,
        PrPhaseOutcome,
        PrSnapshotData,
        RedoInput,
        ReleaseWorktreeInput,
        RepoTaskInput,
        ResumeCommand,
        RetryCommand,
        RunAgentResult,
        SlotGranted,
        SlotReprioritize,
        TaskFinished,
        TaskPatch,
        TaskSnapshot,
        TaskStatus,
    )
    from workflows.agent_attempts import DEFAULT_RESUME, AgentAttempts, Rerun
    from workflows.run_placement import stop_run
    from workflows.task_steps import DB_RETRY, Command, failure_message, invalid

S = TaskState
REPO_KEY = SearchAttributeKey.for_keyword(names.SA_REPO)
WORKSPACE_KEY = SearchAttributeKey.for_keyword(names.SA_WORKSPACE)
TYPE_KEY = SearchAttributeKey.for_keyword(names.SA_TASK_TYPE)
AGENT_KEY = SearchAttributeKey.for_keyword(names.SA_AGENT)
STATE_KEY = SearchAttributeKey.for_keyword(names.SA_TASK_STATE)
NEXT_RUN = names.NEXT_RUN_REFUSAL


@workflow.defn(name=names.REPO_TASK_WORKFLOW)
class RepoTaskWorkflow(AgentAttempts):
    _upserts_state = True

    @workflow.init
    def __init__(self, input: RepoTaskInput) -> None:
        self._init_steps(input.task_id, CarriedState(state="unknown", seq=0))
        self._init_attempts()
        # The PR phase while it runs: commands and webhooks go on to it.
        self._phase: workflow.ChildWorkflowHandle[object, PrPhaseOutcome] | None = None
        # Set once the run is ending: no command is accepted any more.
        self._closing = False

    # ---- messages -------------------------------------------------------------------------

    @workflow.query(name=names.Queries.STATUS)
    def status(self) -> TaskStatus:
        return TaskStatus(
            state=self._state,
            waiting_for=self._waiting_for,
            limiter_id=self._limiter_id,
            attempt=self._carry.attempt,
            run_id=self._run_id,
            scope=self._waiting_scope,
        )

    @workflow.signal(name=names.Signals.SLOT_GRANTED)
    def slot_granted(self, grant: SlotGranted) -> None:
        self._grants.add(grant.request_id)

    @workflow.signal(name=names.Signals.PR_EVENT)
    async def pr_event(self, event: PrEvent) -> None:
        await self._pass_on(names.Signals.PR_EVENT, event)

    @workflow.signal(name=names.Signals.BUDGET_EXCEEDED)
    def budget_exceeded(self, notice: BudgetExceeded) -> None:
        self._stop_over_budget(notice)

    @workflow.signal(name=names.Signals.DEPENDENCIES_CHANGED)
    async def dependencies_changed(self) -> None:
        await self._pass_on(names.Signals.GRAPH_CHANGED, None)

    @workflow.signal(name=names.Signals.SUBTASKS_CHANGED)
    async def subtasks_changed(self) -> None:
        await self._pass_on(names.Signals.GRAPH_CHANGED, None)

    @workflow.signal(name=names.Signals.PRIORITY)
    async def priority(self, change: PriorityChange) -> None:
        self._priority = change.priority
        if self._waiting_for and self._limiter_id:
            await workflow.get_external_workflow_handle(self._limiter_id).signal(
                names.Signals.REPRIORITIZE,
                SlotReprioritize(workflow_id=workflow.info().workflow_id, priority=change.priority),
            )

    @workflow.update(name=names.Updates.RESUME)
    async def resume(self, command: ResumeCommand) -> CommandResult:
        return await self._submit("resume", prompt=command.prompt, user_id=command.user_id)

    @resume.validator
    def _validate_resume(self, command: ResumeCommand) -> None:
        self._refuse(S.QUEUED, RESUMABLE_STATES)

    @workflow.update(name=names.Updates.FORCE_RESTART)
    async def force_restart(self, command: ResumeCommand) -> CommandResult:
        return await self._submit("force_restart", prompt=command.prompt, user_id=command.user_id)

    @force_restart.validator
    def _validate_force_restart(self, command: ResumeCommand) -> None:
        self._refuse(S.QUEUED, FORCE_RESTARTABLE_STATES)

    @workflow.update(name=names.Updates.RETRY)
    async def retry(self, command: RetryCommand | None = None) -> CommandResult:
        # Only reachable while an automatic retry is backing off: skip the wait, and say
        # who asked (the retry is theirs, not an automatic one).
        self._skip_backoff = True
        self._retry_by = command or RetryCommand()
        return CommandResult(accepted=True, state=self._state)

    @retry.validator
    def _validate_retry(self, command: RetryCommand | None = None) -> None:
        self._refuse(S.QUEUED, RETRYABLE_STATES, phase_judges=False)

    @workflow.update(name=names.Updates.MERGE_PR)
    async def merge_pr(self, command: MergeCommand) -> CommandResult:
        return await self._submit("merge", method=command.method, user_id=command.user_id)

    @merge_pr.validator
    def _validate_merge(self, command: MergeCommand) -> None:
        self._refuse(S.COMPLETED, frozenset({S.PR_OPENED}))

    def _refuse(
        self, to_state: str, allowed: frozenset[TaskState], *, phase_judges: bool = True
    ) -> None:
        # In failed/cancelled only a backoff still listens; a run that is wrapping up
        # would accept a command and never act on it, so the API starts a new run.
        current = self._entering or self._state
        if self._closing or self._command is not None:
            raise ApplicationError(
                invalid(current, to_state), type="InvalidTransition", non_retryable=True
            )
        if self._phase is not None and phase_judges:
            # The PR phase moves the row on its own (to needs_attention, say) before this
            # run hears of it: the command goes on, and is answered against the row.
            return
        ended = current in (S.FAILED, S.CANCELLED) and not self._backing_off
        if current not in allowed or ended:
            raise ApplicationError(
                invalid(current, to_state), type="InvalidTransition", non_retryable=True
            )

    async def _submit(
        self,
        kind: Literal["resume", "force_restart", "merge"],
        *,
        prompt: str | None = None,
        method: str = "squash",
        user_id: str | None = None,
    ) -> CommandResult:
        request = PrCommand(
            str(workflow.uuid4()), kind, method=method, prompt=prompt, user_id=user_id
        )
        command = self._command = Command(request)
        if self._phase is not None:
            await self._pass_on(names.Signals.PR_COMMAND, request)
        await workflow.wait_condition(lambda: command.done)
        assert command.result is not None
        return command.result

    async def _pass_on(self, signal: str, arg: object) -> None:
        """To the PR phase while it runs; otherwise (or if it just ended) kept for the next."""
        if self._phase is not None:
            try:
                await self._phase.signal(signal, arg)
                return
            except Exception:  # noqa: BLE001 - the phase ended meanwhile: keep it here
                pass
        if signal == names.Signals.PR_EVENT:
            assert isinstance(arg, PrEvent)
            self._carry.pr_poke = True
            self._carry.pr_events = [*self._carry.pr_events[-9:], arg]
        elif signal == names.Signals.GRAPH_CHANGED:
            self._carry.graph_dirty = self._carry.pr_poke = True
            self._carry.pr_events = [*self._carry.pr_events[-9:], PrEvent(kind="*")]

    # ---- main ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: RepoTaskInput) -> str:
        try:
            snap = await self._load(input)
            rerun = await self._enter_queue(input, snap)  # queue
            while rerun is not None:
                result = await self._attempt_chain(rerun)  # agent, retried with backoff
                rerun = await self._pr_outcome(result) if result is not None else None  # PR
        except BaseException as err:
            # Cancellation surfaces as asyncio's or, from an activity, wrapped in ActivityError.
            if is_cancelled_exception(err):
                await self._on_cancel()
                await self._announce()
            elif isinstance(err, ActivityError | ApplicationError):
                await self._on_error(err)
                await self._announce()
            self._close()
            raise
        await self._announce()
        self._close()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    def _close(self) -> None:
        """Refuse what is pending: nothing will carry it out once the run ends."""
        self._closing = True
        command = self._command
        if command is not None and not command.done:
            self._finish(command, accepted=False, message=invalid(self._state, command.target))

    async def _load(self, input: RepoTaskInput) -> TaskSnapshot:
        snap = self._snap = await self._quick(
            TaskActivities.load_task, LoadTaskInput(task_id=input.task_id)
        )
        self._priority = snap.priority
        self._carry.state, self._carry.seq = snap.state, snap.seq
        # The API sets them at the start: only a change (an edited task) is worth an upsert.
        wanted = [
            REPO_KEY.value_set(snap.repo_url),
            WORKSPACE_KEY.value_set(snap.workspace_id),
            TYPE_KEY.value_set("repo-task"),
            AGENT_KEY.value_set(snap.agent_type),
            STATE_KEY.value_set(snap.state),
        ]
        current = workflow.info().typed_search_attributes
        changed = [pair for pair in wanted if current.get(pair.key) != pair.value]
        if changed:
            workflow.upsert_search_attributes(changed)
        return snap

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
        return Rerun(resume_prompt=input.prompt, from_existing_branch=has_pr)

    async def _await_dependencies(self) -> bool:
        """From pending: queue now, or wait in waiting_on_deps until every dependency completed."""
        while True:
            self._carry.graph_dirty = False
            graph = await self._quick(GraphActivities.load_graph, GraphInput(task_id=self._task_id))
            verdict = dependencies_verdict(graph.dependency_states)
            if verdict == "failed":
                if self._state == S.PENDING:
                    await self._transition(S.WAITING_ON_DEPS, "task_submitted_with_deps")
                failed = f"Dependency failed: {graph.failed_dependency}"
                await self._transition(S.FAILED, "dependency_failed", message=failed)
                return False
            if verdict == "met":
                queued = self._require_snap().queue_trigger or "task_submitted"
                trigger = queued if self._state == S.PENDING else "dependencies_met"
                await self._transition(S.QUEUED, trigger)
                return True
            if self._state == S.PENDING:
                await self._transition(S.WAITING_ON_DEPS, "task_submitted_with_deps")
            await workflow.wait_condition(lambda: self._carry.graph_dirty)

    # ---- the PR ----------------------------------------------------------------------------

    async def _pr_outcome(self, result: RunAgentResult) -> Rerun | None:
        """Open the PR for the agent's work and follow it in the PR phase until it settles."""
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
            OpenPrInput(task_id=self._task_id, summary=result.summary),
            timeout=timedelta(minutes=2),
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
        self._carry.previous_checks_status = self._carry.previous_review_status = None
        known: PrSnapshotData | None = opened.snapshot
        while True:
            outcome = await self._follow_pr(known)
            if outcome.end == "done":
                return None
            if outcome.end == "rerun":
                return Rerun(outcome.resume_prompt, from_existing_branch=True, automatic=True)
            if outcome.end == "needs_human" or (outcome.end == "command" and self._command):
                return await self._wait_for_human()
            known = None  # "answered": a command got its answer; watch the PR again

    async def _follow_pr(self, known: PrSnapshotData | None) -> PrPhaseOutcome:
        """Run the PR phase; take back the carried state and the answer to a command."""
        command = self._command
        handed = command.request if command is not None and not command.done else None
        carry = self._carry
        self._carry = CarriedState(state=carry.state, seq=carry.seq)  # signals meanwhile
        phase = await workflow.start_child_workflow(
            names.PR_PHASE_WORKFLOW,
            PrPhaseInput(
                task_id=self._task_id,
                carried=carry,
                snapshot=self._snap,
                known=known,
                command=handed,
            ),
            id=names.pr_phase_workflow_id(workflow.info().workflow_id),
            result_type=PrPhaseOutcome,
        )
        self._phase = phase
        await self._hand_over_arrivals(handed)
        outcome = await phase
        self._phase = None  # still set if cancelled meanwhile: the row tells the state
        arrived, back = self._carry, outcome.carried
        back.pr_poke = back.pr_poke or arrived.pr_poke
        back.pr_events = [*back.pr_events, *arrived.pr_events][-10:]
        back.graph_dirty = back.graph_dirty or arrived.graph_dirty
        self._carry = back
        workflow.upsert_search_attributes([STATE_KEY.value_set(back.state)])
        command = self._command
        if command is not None and outcome.command_result is not None:
            if outcome.command_id == command.request.command_id:
                self._answer(command, outcome.command_result)
        self._drop_stale_command()
        return outcome

    async def _hand_over_arrivals(self, handed: PrCommand | None) -> None:
        """What came while the phase was starting found no phase to go to: a command
        would wait for ever, a webhook until the phase ends. They go on now."""
        command = self._command
        if command is not None and not command.done and command.request is not handed:
            await self._pass_on(names.Signals.PR_COMMAND, command.request)
        arrived = self._carry
        events, arrived.pr_events, arrived.pr_poke = arrived.pr_events, [], False
        graph_changed, arrived.graph_dirty = arrived.graph_dirty, False
        if graph_changed:
            await self._pass_on(names.Signals.GRAPH_CHANGED, None)
        for event in events:
            await self._pass_on(names.Signals.PR_EVENT, event)

    # ---- endings ---------------------------------------------------------------------------

    async def _announce(self) -> None:
        """Tell dependents, the parent and its pipeline that this task's run ended."""
        if self._state in (S.COMPLETED, S.FAILED, S.CANCELLED):
            await self._quick(
                GraphActivities.notify_task_finished,
                TaskFinished(task_id=self._task_id, state=self._state),
            )
            await self._step(
                TaskActivities.release_worktree,
                ReleaseWorktreeInput(task_id=self._task_id),
                timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )

    async def _on_cancel(self) -> None:
        if self._state == "unknown" or self._phase is not None:
            # Cancelled before the task was loaded, or while the PR phase moved the row:
            # the row says where the task is, or nobody would be left to move it.
            try:
                snap = await self._quick(
                    TaskActivities.load_task, LoadTaskInput(task_id=self._task_id)
                )
            except ActivityError:
                return  # the row is gone: nothing to record
            self._carry.state, self._carry.seq = snap.state, snap.seq
        await self._stop_run("cancelled")
        if self._state in (S.PENDING, S.PROVISIONING):
            # No direct edge to cancelled from here: go through queued, as the table allows.
            await self._transition(S.QUEUED, "user_cancel")
        if can_transition(self._state, S.CANCELLED):
            await self._transition(S.CANCELLED, "user_cancel")

    async def _on_error(self, err: BaseException) -> None:
        """A step failed for good: say so on the task instead of leaving it mid-state."""
        await self._stop_run("failed")
        if self._state != "unknown" and can_transition(self._state, S.FAILED):
            await self._transition(S.FAILED, "worker_error", message=failure_message(err))

    async def _stop_run(self, state: str) -> None:
        if self._run_id is not None:
            await stop_run(self._run_id, state, self._placement)
