"""PrPhaseWorkflow: a task's open PR, watched until it settles (docs/temporal.md).

A child of the task's RepoTaskWorkflow (`<task workflow id>-pr`). It watches the PR,
reacts to checks and reviews (core/pr_decision.py), merges, fetches the feedback a
resumed agent needs, and continues as new every MAX_WATCH_ROUNDS rounds so a PR that
waits for days keeps a short history. It ends with a small `PrPhaseOutcome`; the task's
workflow decides what comes next (another agent run, a person, the end).

Messages reach it only through the task's workflow, which validates and answers every
update: `pr_command` (a person's merge or restart), `pr_event` (a webhook delivery) and
`graph_changed` (dependencies or subtasks moved).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import cast

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.graph import GraphActivities
    from activities.pull_requests import PullRequestActivities
    from activities.review import ReviewActivities
    from activities.tasks import TaskActivities
    from core import names
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
    from schemas.workflow import (
        GraphInput,
        GraphSnapshot,
        LaunchReviewInput,
        LoadTaskInput,
        MergePrInput,
        PatchTaskInput,
        PrCommand,
        PrEvent,
        PrFeedbackInput,
        PrPhaseEnd,
        PrPhaseInput,
        PrPhaseOutcome,
        PrSnapshotData,
        TaskPatch,
        WatchPrInput,
    )
    from workflows.task_steps import (
        COMMAND_STATES,
        DB_RETRY,
        FORGE_RETRY,
        Command,
        S,
        TaskSteps,
        invalid,
    )

# A PR can wait for days: bound the history and carry the memory into a fresh run.
MAX_WATCH_ROUNDS = 100
WATCH_ROUND_SECONDS = 300.0
WATCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60)
)


@workflow.defn(name=names.PR_PHASE_WORKFLOW)
class PrPhaseWorkflow(TaskSteps):
    @workflow.init
    def __init__(self, input: PrPhaseInput) -> None:
        self._init_steps(input.task_id, input.carried)
        self._snap = input.snapshot
        self._graph: GraphSnapshot | None = None
        if input.command is not None:
            self._command = Command(input.command)
        # The last command handed here, answered or not: the outcome names it.
        self._last_command: Command | None = self._command
        # The instructions for the agent when the phase ends in "rerun".
        self._resume: str | None = None

    @workflow.signal(name=names.Signals.PR_COMMAND)
    def pr_command(self, request: PrCommand) -> None:
        self._command = self._last_command = Command(request)

    @workflow.signal(name=names.Signals.PR_EVENT)
    def pr_event(self, event: PrEvent) -> None:
        self._carry.pr_poke = True
        self._carry.pr_events = [*self._carry.pr_events[-9:], event]

    @workflow.signal(name=names.Signals.GRAPH_CHANGED)
    def graph_changed(self) -> None:
        self._carry.graph_dirty = True
        self.pr_event(PrEvent(kind="*"))  # look at everything

    @workflow.run
    async def run(self, input: PrPhaseInput) -> PrPhaseOutcome:
        if self._snap is None:
            self._snap = await self._quick(
                TaskActivities.load_task, LoadTaskInput(task_id=self._task_id)
            )
        if input.known is not None:
            # Opening told everything there is to know for now: decide without a round.
            end = await self._react(input.known)
            if end is not None:
                return self._outcome(end)
        known = input.known
        for _ in range(MAX_WATCH_ROUNDS):
            end, known = await self._round(known)
            if end is not None:
                return self._outcome(end)
        await workflow.wait_condition(workflow.all_handlers_finished)
        command = self._command
        workflow.continue_as_new(
            PrPhaseInput(
                task_id=self._task_id,
                carried=self._carry,
                command=command.request if command is not None and not command.done else None,
            ),
            # Under Worker Versioning the next run starts on the current build, so a PR
            # that waits for weeks does not keep an old worker alive (docs/temporal.md).
            initial_versioning_behavior=workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE,
        )

    async def _round(self, known: PrSnapshotData | None) -> tuple[End, PrSnapshotData | None]:
        """One watch round: until the PR changes, a webhook pokes, or a command comes."""
        if self._command is not None:
            return await self._carry_out(self._command), known
        self._carry.pr_poke = False
        events, self._carry.pr_events = self._carry.pr_events, []
        watch = workflow.start_activity_method(
            PullRequestActivities.watch_pull_request,
            WatchPrInput(
                task_id=self._task_id,
                known=known,
                max_wait_seconds=WATCH_ROUND_SECONDS,
                events=events if known is None else [],
            ),
            start_to_close_timeout=timedelta(seconds=WATCH_ROUND_SECONDS + 3600),
            # The watch beats every few seconds whatever the poll interval: a dead
            # worker's watch (and the checks it ran) is taken over within seconds.
            heartbeat_timeout=names.WATCH_HEARTBEAT_TIMEOUT,
            retry_policy=WATCH_RETRY,
        )
        try:
            await workflow.wait_condition(
                lambda: watch.done() or self._command is not None or self._carry.pr_poke
            )
        except BaseException:
            watch.cancel()  # the phase itself is cancelled
            raise
        if not watch.done():
            # A command, a webhook, or a subtask finished (a review may have just been
            # posted): a fresh round with nothing known fetches the PR at once. The
            # cancelled watch resolves at once (a cancel is only requested); taking it
            # here keeps "exception was never retrieved" out of the log.
            watch.cancel()
            with contextlib.suppress(ActivityError, asyncio.CancelledError):
                await watch
            return None, None
        known = watch.result()
        return await self._react(known), known

    async def _carry_out(self, command: Command) -> End:
        if self._state not in COMMAND_STATES[command.kind]:
            # Passed on unjudged (the task's run could not know where the PR stood).
            self._finish(command, accepted=False, message=invalid(self._state, command.target))
            return "answered"
        if command.kind != "merge":
            return "command"  # a restart starts an agent run: the task's workflow does it
        command.applying = True
        self._command = None  # a merge that meets conflicts waits for the next command
        end = await self._merge(command.request.method, "pr_merged", command)
        if not command.done:
            merged = self._state == S.COMPLETED
            self._finish(command, accepted=merged, message=None if merged else "Merge failed")
        return end or "answered"

    def _outcome(self, end: PrPhaseEnd) -> PrPhaseOutcome:
        command = self._last_command
        answered = command is not None and command.done
        return PrPhaseOutcome(
            end=end,
            carried=self._carry,
            resume_prompt=self._resume,
            command_id=command.request.command_id if command and answered else None,
            command_result=command.result if command and answered else None,
        )

    async def _react(self, pr: PrSnapshotData) -> End:
        snap = self._require_snap()
        carry = self._carry
        # A requested change already acted on stays "seen" even after a resume reset memory.
        handled = pr.review_id is not None and pr.review_id == carry.handled_review_id
        first_sighting = carry.previous_checks_status is None
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
                previous_checks_status=carry.previous_checks_status,
                previous_review_status="changes_requested"
                if handled
                else carry.previous_review_status,
                auto_resume_count=carry.auto_resumes,
                task_failed=False,
            ),
        )
        recorded = decision.checks_status_to_record
        if recorded is not None and recorded != carry.previous_checks_status:
            await self._quick(
                TaskActivities.patch_task,
                PatchTaskInput(task_id=snap.task_id, patch=TaskPatch(pr_checks_status=recorded)),
            )
        newly_passing = pr.checks_status == "passing" and carry.previous_checks_status != "passing"
        if recorded is not None:
            carry.previous_checks_status = recorded
        carry.previous_review_status = pr.review_status
        if decision.kind == "complete":
            await self._finish_pr(merged=True)
            await self._transition(
                S.COMPLETED, decision.trigger or "pr_merged", patch=TaskPatch(pr_state="merged")
            )
            return "done"
        if decision.kind == "fail":
            await self._transition(
                S.FAILED,
                decision.trigger or "pr_closed",
                message=decision.message,
                patch=TaskPatch(pr_state="closed"),
            )
            return "done"
        if await self._maybe_launch_review(first_sighting=first_sighting, passing=newly_passing):
            return None  # the review subtask now blocks the merge; decide again when it ends
        graph = await self._current_graph()
        steps_done = graph.steps_total > 0 and graph.steps_completed == graph.steps_total
        if decision.kind == "merge" and graph.blocking_open == 0:
            trigger = "all_steps_complete" if steps_done else decision.trigger or "auto_merged"
            return await self._merge("squash", trigger)
        if decision.kind in ("merge", "wait") and steps_done and graph.blocking_open == 0:
            await self._transition(S.COMPLETED, "all_steps_complete")
            return "done"
        if decision.resume_reason == "review":
            carry.handled_review_id = pr.review_id
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
            carry.auto_resumes += 1
            self._resume = prompt
            return "rerun"
        if decision.kind == "needs_attention":
            await self._transition(
                S.NEEDS_ATTENTION, decision.trigger or "ci_failing", message=decision.message
            )
            return "needs_human"
        return None

    async def _current_graph(self) -> GraphSnapshot:
        if self._graph is None or self._carry.graph_dirty:
            self._carry.graph_dirty = False
            self._graph = await self._quick(
                GraphActivities.load_graph, GraphInput(task_id=self._task_id)
            )
        return self._graph

    async def _feedback(self, reason: str, review_id: str | None) -> str | None:
        """Failing checks with their logs, or the review's comments, fetched by Optio."""
        found = await workflow.execute_activity_method(
            PullRequestActivities.pr_feedback,
            PrFeedbackInput(task_id=self._task_id, reason=reason, review_id=review_id),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=FORGE_RETRY,
        )
        return found.text

    async def _maybe_launch_review(self, *, first_sighting: bool, passing: bool) -> bool:
        """reviewTrigger on_pr fires on the PR's first sighting, on_ci_pass when CI passes."""
        snap = self._require_snap()
        if self._carry.review_launched or not snap.review_enabled or snap.task_type != "coding":
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
        self._carry.review_launched = True
        self._carry.graph_dirty = True
        return launched.review_task_id is not None

    async def _merge(self, method: str, trigger: str, command: Command | None = None) -> End:
        # One git merge or one forge call, as a local step: a worker that dies mid-merge
        # loses its workflow task and the next one merges again, which finds it merged.
        merged = await self._step(
            PullRequestActivities.merge_pull_request,
            MergePrInput(task_id=self._task_id, method=method),
            timeout=timedelta(minutes=5),
            retry_policy=DB_RETRY,
        )
        user_id = command.request.user_id if command is not None else None
        if merged.merged:
            await self._finish_pr(merged=True)
            await self._transition(
                S.COMPLETED, trigger, user_id=user_id, patch=TaskPatch(pr_state="merged")
            )
            return "done"
        if merged.conflict:
            await self._transition(
                S.NEEDS_ATTENTION,
                "merge_conflicts",
                message=merged.message,
                patch=TaskPatch(pr_checks_status="conflicts"),
            )
            self._carry.previous_checks_status = "conflicts"
            if command is not None:
                # The person who asked learns now; the task waits for what they say next.
                self._finish(command, accepted=False, message=merged.message)
            return "needs_human"
        return None


End = PrPhaseEnd | None
