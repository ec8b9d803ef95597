"""What /api/tasks answers and takes across its three kinds (inventory §3.1-3.4).

A task of /api/tasks is a repo task, a repo blueprint or a standalone task; `type`
tells which. These are the Public families the API serialises and a client reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, NotRequired

from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from schemas.blueprints import (
    BlueprintCreate,
    BlueprintPublic,
    BlueprintUpdate,
    RunLogPublic,
    StandaloneCreate,
    StandalonePublic,
    StandaloneRunPublic,
    StandaloneUpdate,
    TriggerPublic,
)
from schemas.common import ApiOut
from schemas.tasks import TaskCreate, TaskEventPublic, TaskLogPublic, TaskPublic, TaskUpdate

AnyTaskPublic = Annotated[
    TaskPublic | BlueprintPublic | StandalonePublic, Field(discriminator="type")
]
# POST /api/tasks: `type` picks the kind ("repo-task" when absent); the route validates
# the body against that kind's model (api/routes/tasks.py), so the union stays plain.
AnyTaskCreate = TaskCreate | BlueprintCreate | StandaloneCreate
TASK_KINDS: dict[str, type[BaseModel]] = {
    "repo-task": TaskCreate,
    "repo-blueprint": BlueprintCreate,
    "standalone": StandaloneCreate,
}
# PATCH /api/tasks/:id: the fields of the task's own kind.
AnyTaskUpdate = TaskUpdate | BlueprintUpdate | StandaloneUpdate


class TaskEnvelope(ApiOut):
    task: AnyTaskPublic


class TasksPublic(ApiOut):
    tasks: list[AnyTaskPublic]
    limit: int
    offset: int


class PipelineStep(TypedDict):
    id: str
    title: str
    state: str
    subtaskOrder: int


class PipelineProgress(TypedDict):
    totalSteps: int
    completedSteps: int
    failedSteps: int
    runningSteps: int
    currentStepIndex: int | None
    currentStepTitle: str | None
    steps: list[PipelineStep]


class StallInfo(TypedDict):
    isStalled: bool
    silentForMs: int
    thresholdMs: int
    lastLogSummary: NotRequired[str]


class TaskDetailPublic(ApiOut):
    task: AnyTaskPublic
    pending_reason: str | None
    pipeline_progress: PipelineProgress | None
    stall_info: StallInfo | None


class TaskEventsPublic(ApiOut):
    events: list[TaskEventPublic]


class TaskLogsPublic(ApiOut):
    logs: list[TaskLogPublic]


# A run of a blueprint is a repo task; a run of a standalone task is a workflow run.
RunPublic = TaskPublic | StandaloneRunPublic


class RunsPublic(ApiOut):
    runs: list[RunPublic]


class RunEnvelope(ApiOut):
    run: RunPublic


class BlueprintRunStarted(ApiOut):
    run_id: str
    type: Literal["repo-task"]
    task: TaskPublic


class StandaloneRunStarted(ApiOut):
    run_id: str
    type: Literal["workflow-run"]
    run: StandaloneRunPublic


RunStarted = Annotated[BlueprintRunStarted | StandaloneRunStarted, Field(discriminator="type")]


class RunLogsPublic(ApiOut):
    logs: list[RunLogPublic]


class TriggersPublic(ApiOut):
    triggers: list[TriggerPublic]


class TriggerEnvelope(ApiOut):
    trigger: TriggerPublic


class SubtasksPublic(ApiOut):
    subtasks: list[TaskPublic]


class SubtaskEnvelope(ApiOut):
    subtask: TaskPublic


class SubtaskStatusPublic(ApiOut):
    all_complete: bool
    total: int
    pending: int
    running: int
    completed: int
    failed: int


class TaskBrief(ApiOut):
    id: str
    title: str
    state: str


class DependencyPublic(TaskBrief):
    dependency_id: str


class DependenciesPublic(ApiOut):
    dependencies: list[DependencyPublic]


class DependentsPublic(ApiOut):
    dependents: list[TaskBrief]


class Ok(ApiOut):
    ok: bool


class Reordered(Ok):
    reordered: int


class BulkRetried(ApiOut):
    retried: int
    total: int


class BulkCancelled(ApiOut):
    cancelled: int
    total: int


class CommentPublic(ApiOut):
    id: str
    task_id: str
    user_id: str | None
    content: str
    created_at: datetime
    updated_at: datetime


class CommentsPublic(ApiOut):
    comments: list[CommentPublic]


class CommentEnvelope(ApiOut):
    comment: CommentPublic


class MessagePublic(ApiOut):
    id: str
    task_id: str
    user_id: str | None
    content: str
    mode: str
    workspace_id: str
    created_at: datetime
    delivered_at: datetime | None
    acked_at: datetime | None
    delivery_error: str | None


class MessagesPublic(ApiOut):
    messages: list[MessagePublic]


class MessageEnvelope(ApiOut):
    message: MessagePublic


class MergeResult(ApiOut):
    """POST /api/pull-requests/merge: also 200 for a PR merged already."""

    merged: bool
    task: TaskPublic


class ReviewLaunched(ApiOut):
    review_task_id: str


class RepoTaskEnvelope(ApiOut):
    """A repo task made or found for the caller (an assigned issue)."""

    task: TaskPublic


class HookTaskStarted(ApiOut):
    """A webhook trigger of a blueprint: its run is a repo task."""

    run_id: str
    task_id: str


class HookRunStarted(ApiOut):
    """A webhook trigger of a standalone task: a workflow run."""

    run_id: str
    run: StandaloneRunPublic
