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

from schemas.workflow import RepoTaskInput, StartMode


def task_workflow_id(task_id: str) -> str:
    return f"task-{task_id}"


def pipeline_workflow_id(parent_task_id: str) -> str:
    return f"pipeline-{parent_task_id}"


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
            SearchAttributePair(SearchAttributeKey.for_keyword("OptioTaskState"), task.state),
            SearchAttributePair(SearchAttributeKey.for_keyword("OptioRepo"), task.repo_url),
            SearchAttributePair(
                SearchAttributeKey.for_keyword("OptioWorkspace"), task.workspace_id
            ),
            SearchAttributePair(SearchAttributeKey.for_keyword("OptioTaskType"), "repo-task"),
            SearchAttributePair(SearchAttributeKey.for_keyword("OptioAgent"), task.agent_type),
        ]
    )
    await client.start_workflow(
        "RepoTaskWorkflow",
        RepoTaskInput(task_id=task.id, mode=mode, prompt=prompt, user_id=user_id),
        id=task_workflow_id(task.id),
        task_queue=task_queue,
        id_reuse_policy=reuse,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=attributes,
    )
