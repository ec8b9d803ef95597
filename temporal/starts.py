"""Starting a task's workflow: one definition shared by the API and by activities."""

from __future__ import annotations

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


async def start_task_workflow(
    client: Client,
    *,
    task_id: str,
    state: str,
    repo_url: str,
    workspace_id: str,
    agent_type: str,
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
            SearchAttributePair(SearchAttributeKey.for_keyword("OptioTaskState"), state),
            SearchAttributePair(SearchAttributeKey.for_keyword("OptioRepo"), repo_url),
            SearchAttributePair(SearchAttributeKey.for_keyword("OptioWorkspace"), workspace_id),
            SearchAttributePair(SearchAttributeKey.for_keyword("OptioTaskType"), "repo-task"),
            SearchAttributePair(SearchAttributeKey.for_keyword("OptioAgent"), agent_type),
        ]
    )
    await client.start_workflow(
        "RepoTaskWorkflow",
        RepoTaskInput(task_id=task_id, mode=mode, prompt=prompt, user_id=user_id),
        id=task_workflow_id(task_id),
        task_queue=task_queue,
        id_reuse_policy=reuse,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=attributes,
    )
