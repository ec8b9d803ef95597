"""Every name Temporal knows Optio by, in one place (docs/temporal.md).

Workflow types and ids per task kind, message names, search-attribute keys, the task
branch and the retry/timeout constants that several workflows share. Pure strings and
numbers: workflows, activities, the API and the CLI all read them from here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

# ---- workflow types ---------------------------------------------------------------------

REPO_TASK_WORKFLOW: Final = "RepoTaskWorkflow"
PR_PHASE_WORKFLOW: Final = "PrPhaseWorkflow"
REVIEW_WORKFLOW: Final = "ReviewWorkflow"
PIPELINE_WORKFLOW: Final = "PipelineWorkflow"
STANDALONE_RUN_WORKFLOW: Final = "StandaloneRunWorkflow"
BLUEPRINT_RUN_WORKFLOW: Final = "BlueprintRunWorkflow"
SLOT_LIMITER_WORKFLOW: Final = "SlotLimiterWorkflow"

# ---- workflow ids ---------------------------------------------------------------------


def task_workflow_id(task_id: str) -> str:
    return f"task-{task_id}"


def pr_phase_workflow_id(task_workflow_id: str) -> str:
    """A task's PR phase: a child of the task's workflow, named after it."""
    return f"{task_workflow_id}-pr"


def review_workflow_id(review_task_id: str) -> str:
    return f"review-{review_task_id}"


def pipeline_workflow_id(parent_task_id: str) -> str:
    return f"pipeline-{parent_task_id}"


def run_workflow_id(run_id: str) -> str:
    """A standalone task's run."""
    return f"run-{run_id}"


def global_limiter_id(task_queue: str) -> str:
    return f"limiter-global-{task_queue}"


def workflow_id_for(*, task_id: str, task_type: str) -> str:
    """The workflow that carries a task row: a review subtask runs as a ReviewWorkflow."""
    if task_type == "review":
        return review_workflow_id(task_id)
    return task_workflow_id(task_id)


def task_branch(task_id: str) -> str:
    return f"optio/task-{task_id}"


# ---- messages -----------------------------------------------------------------------


class Signals:
    SLOT_GRANTED: Final = "slot_granted"
    PR_EVENT: Final = "pr_event"
    DEPENDENCIES_CHANGED: Final = "dependencies_changed"
    SUBTASKS_CHANGED: Final = "subtasks_changed"
    PRIORITY: Final = "priority"
    STEPS_CHANGED: Final = "steps_changed"
    BUDGET_EXCEEDED: Final = "budget_exceeded"
    # From a task's workflow to its PR phase.
    PR_COMMAND: Final = "pr_command"
    GRAPH_CHANGED: Final = "graph_changed"
    # To a limiter.
    REQUEST: Final = "request"
    RELEASE: Final = "release"
    REPRIORITIZE: Final = "reprioritize"


class Updates:
    RESUME: Final = "resume"
    FORCE_RESTART: Final = "force_restart"
    RETRY: Final = "retry"
    MERGE_PR: Final = "merge_pr"


class Queries:
    STATUS: Final = "status"


# The failure type of an update refused only because its run is continuing as new: the
# caller sends it again and the next run takes it.
NEXT_RUN_REFUSAL: Final = "NextRun"


# ---- search attributes (Keyword) --------------------------------------------------------

SA_TASK_STATE: Final = "OptioTaskState"
SA_REPO: Final = "OptioRepo"
SA_WORKSPACE: Final = "OptioWorkspace"
SA_TASK_TYPE: Final = "OptioTaskType"
SA_AGENT: Final = "OptioAgent"
SEARCH_ATTRIBUTES: Final = (SA_TASK_STATE, SA_REPO, SA_WORKSPACE, SA_TASK_TYPE, SA_AGENT)

# ---- timeouts and retries shared by the workflows ----------------------------------------

# A short database step (a few ms) as a local activity, and its retry pacing.
QUICK_TIMEOUT: Final = timedelta(seconds=30)
DB_RETRY_INITIAL: Final = timedelta(milliseconds=200)
DB_RETRY_MAX: Final = timedelta(seconds=10)
# Activities that wait (agent, worktree, PR watch) beat at least this often; their
# heartbeat timeouts are a few beats long, so a dead worker is noticed in seconds.
WATCH_HEARTBEAT_TIMEOUT: Final = timedelta(seconds=10)
AGENT_HEARTBEAT_TIMEOUT: Final = timedelta(seconds=10)
PREPARE_HEARTBEAT_TIMEOUT: Final = timedelta(seconds=20)
# First wait before an automatic retry of a failed agent run (doubling, up to 2^6 times).
RETRY_BACKOFF: Final = timedelta(seconds=5)
