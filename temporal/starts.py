"""Starting a task's workflow: one definition shared by the API and by activities."""

from __future__ import annotations

from typing import Protocol

from temporalio.client import Client
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from core.names import (
    REPO_TASK_WORKFLOW,
    REVIEW_WORKFLOW,
    SA_AGENT,
    SA_REPO,
    SA_TASK_STATE,
    SA_TASK_TYPE,
    SA_WORKSPACE,
    pipeline_workflow_id,
    review_workflow_id,
    task_workflow_id,
)
from schemas.workflow import RepoTaskInput, ReviewInput, StartMode

__all__ = ["pipeline_workflow_id", "start_review_workflow", "start_task_workflow"]


class TaskToStart(Protocol):
    """What a start needs of a task (a `store.models.Task` row has it)."""

    @property
    def id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def repo_url(self) -> str: ...
    @property
    def workspace_id(self) -> str: ...
    @property
    def agent_type(self) -> str: ...


async def start_task_workflow(
    client: Client,
    task: TaskToStart,
    *,
    task_queue: str,
    mode: StartMode = "fresh",
    prompt: str | None = None,
    user_id: str | None = None,
    reuse: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
) -> None:
    """A new run of `task-<id>`; a run still open for the id is reused, never doubled.

    `reuse=REJECT_DUPLICATE` is for starts that must happen once ever (a retried
    activity finds the run it started even when that run has closed): it raises
    WorkflowAlreadyStartedError then.
    """
    attributes = TypedSearchAttributes(
        [
            SearchAttributePair(SearchAttributeKey.for_keyword(SA_TASK_STATE), task.state),
            SearchAttributePair(SearchAttributeKey.for_keyword(SA_REPO), task.repo_url),
            SearchAttributePair(SearchAttributeKey.for_keyword(SA_WORKSPACE), task.workspace_id),
            SearchAttributePair(SearchAttributeKey.for_keyword(SA_TASK_TYPE), "repo-task"),
            SearchAttributePair(SearchAttributeKey.for_keyword(SA_AGENT), task.agent_type),
        ]
    )
    await client.start_workflow(
        REPO_TASK_WORKFLOW,
        RepoTaskInput(task_id=task.id, mode=mode, prompt=prompt, user_id=user_id),
        id=task_workflow_id(task.id),
        task_queue=task_queue,
        id_reuse_policy=reuse,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=attributes,
    )


async def start_review_workflow(
    client: Client, *, review_task_id: str, parent_task_id: str, task_queue: str
) -> None:
    """Start a review subtask's ReviewWorkflow, once ever: a retried call (an activity or
    a request that died after the start) finds it started and does nothing."""
    try:
        await client.start_workflow(
            REVIEW_WORKFLOW,
            ReviewInput(task_id=review_task_id, parent_task_id=parent_task_id),
            id=review_workflow_id(review_task_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        pass
