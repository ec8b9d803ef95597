"""Payloads of workflows, activities, signals and updates: small, ids not data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

StartMode = Literal["fresh", "retry", "resume", "force_restart", "force_redo"]


@dataclass
class TaskPatch:
    """Task columns a transition may set along with the state (None = leave alone)."""

    pr_url: str | None = None
    pr_number: int | None = None
    pr_state: str | None = None
    pr_checks_status: str | None = None
    result_summary: str | None = None
    session_id: str | None = None
    cost_usd: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    model_used: str | None = None
    retry_count: int | None = None
    error_message: str | None = None


@dataclass
class RepoTaskInput:
    task_id: str
    mode: StartMode = "fresh"
    prompt: str | None = None
    user_id: str | None = None


@dataclass
class CarriedState:
    """What a task's workflow knows beyond its row: handed whole from the task's run to its
    PR phase, back in the phase's outcome, and across the phase's continue-as-new."""

    state: str
    seq: int
    attempt: int = 0
    auto_resumes: int = 0
    previous_checks_status: str | None = None
    previous_review_status: str | None = None
    handled_review_id: str | None = None
    review_launched: bool = False
    # Signals that arrived during the last watch round: the next run acts on them.
    pr_poke: bool = False
    pr_events: list[PrEvent] = field(default_factory=list)
    graph_dirty: bool = False


@dataclass
class TaskSnapshot:
    task_id: str
    workspace_id: str
    state: str
    seq: int
    title: str
    repo_url: str
    repo_branch: str
    agent_type: str
    priority: int
    max_retries: int
    retry_count: int
    pr_url: str | None
    pr_number: int | None
    session_id: str | None
    # Repo settings, or the defaults for an unconnected repo.
    repo_key: str
    auto_merge: bool
    cautious_mode: bool
    auto_resume: bool
    max_auto_resumes: int
    max_concurrent_tasks: int
    stall_threshold_ms: int
    max_turns_coding: int
    test_command: str | None
    global_limit: int
    pr_watch_interval_ms: int
    require_approval: bool = False
    review_enabled: bool = False
    review_trigger: str | None = None  # on_pr | on_ci_pass
    task_type: str = "coding"
    # What the first transition to `queued` records: `ticket_sync`, `issue_assigned`.
    queue_trigger: str | None = None


@dataclass
class LoadTaskInput:
    task_id: str


@dataclass
class TransitionInput:
    task_id: str
    seq: int
    from_state: str
    to_state: str
    trigger: str
    message: str | None = None
    user_id: str | None = None
    patch: TaskPatch = field(default_factory=TaskPatch)
    # force-redo bypasses the state machine, as in the reference.
    force: bool = False


@dataclass
class TransitionResult:
    applied: bool


@dataclass
class PendingReasonInput:
    task_id: str
    reason: str | None


@dataclass
class PrepareInput:
    task_id: str
    run_id: str
    # Text of a resume/restart; None runs the task's own prompt.
    resume_prompt: str | None
    from_existing_branch: bool
    # Written by Optio (CI failure, review, conflicts) rather than by a person.
    automatic: bool = False


@dataclass
class PrepareResult:
    ready: bool
    error: str | None = None


@dataclass
class PlaceRunInput:
    run_id: str


@dataclass
class RunPlacement:
    """Where a run's worktree lives: the task queue of the one worker that holds it (None:
    any worker, as with pods), and how long that worker may be gone before the run fails
    over to another one."""

    task_queue: str | None = None
    failover_seconds: float | None = None


@dataclass
class RecordLostRunInput:
    run_id: str
    message: str
    state: str = "lost"


@dataclass
class RunAgentInput:
    task_id: str
    run_id: str
    stall_threshold_ms: int


@dataclass
class BudgetExceeded:
    """Signal from the API's ingest: this run took the task past its budget."""

    run_id: str
    message: str


@dataclass
class RunAgentResult:
    success: bool
    stalled: bool = False
    # A failure no retry can fix (bad credentials, quota): skip automatic retries.
    permanent: bool = False
    summary: str = ""
    error: str | None = None
    head_sha: str | None = None
    pushed: bool = False
    session_id: str | None = None
    cost_usd: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str | None = None
    # The worker holding the run was gone too long: retried elsewhere, whatever the
    # task's retry budget says (the agent did not fail).
    worker_lost: bool = False


@dataclass
class StopRunInput:
    run_id: str
    # What the run row says once stopped: the task was cancelled, or failed for good.
    state: str = "cancelled"


@dataclass
class OpenPrInput:
    task_id: str
    summary: str


@dataclass
class PrSnapshotData:
    state: str  # open | merged | closed
    mergeable: bool | None
    checks_status: str  # none | pending | passing | failing
    review_status: str  # none | pending | approved | changes_requested
    head_sha: str | None
    # The review the status comes from, so each requested change is reacted to once.
    review_id: str | None = None


@dataclass
class OpenPrResult:
    opened: bool
    pr_url: str | None = None
    pr_number: int | None = None
    reason: str | None = None
    # The PR right after opening, when nothing is left to wait for (the local forge with
    # no testCommand): the workflow decides on it without a watch round.
    snapshot: PrSnapshotData | None = None


@dataclass
class WatchPrInput:
    task_id: str
    known: PrSnapshotData | None
    max_wait_seconds: float
    # Webhook deliveries since the last round: they tell the watch what to refetch.
    events: list[PrEvent] = field(default_factory=list)


@dataclass
class MergePrInput:
    task_id: str
    method: str = "squash"


@dataclass
class MergePrResult:
    merged: bool
    conflict: bool = False
    message: str | None = None


@dataclass
class RedoInput:
    task_id: str


# Messages of RepoTaskWorkflow.
@dataclass
class ResumeCommand:
    prompt: str | None = None
    user_id: str | None = None


@dataclass
class MergeCommand:
    method: str = "squash"
    user_id: str | None = None


@dataclass
class RetryCommand:
    user_id: str | None = None


@dataclass
class CommandResult:
    accepted: bool
    state: str
    message: str | None = None
    # Refused only because the run is continuing as new: the next run takes it.
    next_run: bool = False


@dataclass
class PrCommand:
    """A person's command on a task whose PR phase runs: the task's workflow validated and
    accepted it, the phase carries it out (merge) or hands it back (force_restart)."""

    command_id: str
    kind: Literal["resume", "force_restart", "merge"]
    method: str = "squash"
    prompt: str | None = None
    user_id: str | None = None


@dataclass
class PrPhaseInput:
    task_id: str
    carried: CarriedState
    # The task as its run loaded it; None after continue-as-new (the phase reloads it).
    snapshot: TaskSnapshot | None = None
    # What opening the PR already told (no checks to wait for): decided without a round.
    known: PrSnapshotData | None = None
    command: PrCommand | None = None


PrPhaseEnd = Literal["done", "rerun", "needs_human", "command", "answered"]


@dataclass
class PrPhaseOutcome:
    """How a PR phase ended. done: completed or failed; rerun: back to the agent with
    `resume_prompt`; needs_human: waits for a person; command: a person's restart is the
    task run's to apply; answered: a command got its answer and the PR is watched again."""

    end: PrPhaseEnd
    carried: CarriedState
    resume_prompt: str | None = None
    # The command the phase answered (the one it was handed or sent), and the answer.
    command_id: str | None = None
    command_result: CommandResult | None = None


@dataclass
class PriorityChange:
    priority: int


@dataclass
class TaskStatus:
    state: str
    waiting_for: str | None  # "repo" | "global" | None
    limiter_id: str | None
    attempt: int
    run_id: str | None
    # The repo scope of a request to the global limiter that also limits per repo.
    scope: str | None = None


# Slot limiter messages.
@dataclass
class SlotRequest:
    workflow_id: str
    request_id: str
    priority: int
    capacity: int
    # Further limits the grant must respect, scope -> capacity (a repository's
    # maxConcurrentTasks): one request for the global and the repo slot together.
    scopes: dict[str, int] = field(default_factory=dict)


@dataclass
class SlotRelease:
    workflow_id: str
    request_id: str


@dataclass
class SlotGranted:
    limiter_id: str
    request_id: str


@dataclass
class SlotReprioritize:
    workflow_id: str
    priority: int


@dataclass
class Waiter:
    priority: int
    arrival: int
    workflow_id: str
    request_id: str
    scopes: dict[str, int] = field(default_factory=dict)


@dataclass
class LimiterState:
    limiter_id: str
    capacity: int
    holders: dict[str, str] = field(default_factory=dict)  # workflow_id -> request_id
    waiters: list[Waiter] = field(default_factory=list)
    arrivals: int = 0
    # Scopes each holder holds besides this limiter's own: workflow_id -> scopes.
    holder_scopes: dict[str, list[str]] = field(default_factory=dict)
    scope_capacity: dict[str, int] = field(default_factory=dict)


@dataclass
class LimiterStatus:
    capacity: int
    holders: int
    waiting: int
    scope_holders: dict[str, int] = field(default_factory=dict)
    scope_capacity: dict[str, int] = field(default_factory=dict)


@dataclass
class AcquireSlotInput:
    limiter_id: str
    request: SlotRequest
    initial_capacity: int


@dataclass
class ReleaseSlotInput:
    limiter_id: str
    release: SlotRelease


@dataclass
class ClosedWorkflowsInput:
    workflow_ids: list[str]


@dataclass
class ClosedWorkflowsResult:
    closed: list[str]


@dataclass
class PatchTaskInput:
    task_id: str
    patch: TaskPatch


# ---- task graph (dependencies, subtasks, pipelines) ----------------------------------


@dataclass
class GraphInput:
    task_id: str


@dataclass
class GraphSnapshot:
    """What a task waits on: its dependencies and its blocking subtasks."""

    dependency_states: list[str]
    failed_dependency: str | None  # title of a dependency that failed or was cancelled
    blocking_open: int
    steps_total: int
    steps_completed: int


@dataclass
class TaskFinished:
    task_id: str
    state: str


@dataclass
class PipelineInput:
    parent_task_id: str


@dataclass
class PipelineStep:
    task_id: str
    state: str
    started: bool


@dataclass
class PipelineSteps:
    steps: list[PipelineStep]


@dataclass
class StartTaskInput:
    task_id: str


# ---- remote forges and reviews (docs/forges.md) -----------------------------------------


@dataclass
class PrEvent:
    """A webhook said something happened to the task's PR: look now instead of at the next poll."""

    kind: str
    delivery_id: str | None = None
    # The commit the delivery is about (PR head, check run, push `after`, pipeline sha).
    head_sha: str | None = None
    # What the delivery says happened, when the watch can apply it without asking the
    # forge (GitHub only; None elsewhere, and in signals recorded before these fields):
    # the payload's `action` (`synchronize` is a push to the PR's branch)...
    action: str | None = None
    # ...and for a `check_run`, the run itself: its id, name, app slug and state
    # (pending | success | failure, as `Check.state`).
    check_id: str | None = None
    check_name: str | None = None
    check_app: str | None = None
    check_state: str | None = None


@dataclass
class PrFeedbackInput:
    task_id: str
    reason: str  # ci_failure | review | conflicts
    review_id: str | None = None


@dataclass
class PrFeedbackResult:
    # Failing checks with their log tails, or the review body and inline comments.
    text: str | None


@dataclass
class FinishPrInput:
    task_id: str
    merged: bool


@dataclass
class LaunchReviewInput:
    parent_task_id: str
    user_id: str | None = None


@dataclass
class LaunchReviewResult:
    review_task_id: str | None
    message: str | None = None


@dataclass
class ReviewInput:
    task_id: str  # the review subtask
    parent_task_id: str


@dataclass
class ReviewVerdictInput:
    task_id: str
    parent_task_id: str
    run_id: str


@dataclass
class ReviewVerdictResult:
    posted: bool
    verdict: str | None = None
    message: str | None = None


@dataclass
class ReleaseWorktreeInput:
    task_id: str
