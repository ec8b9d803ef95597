"""Launching a code review agent on a task's pull request (inventory §2.4)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api import task_commands as commands
from api.deps import CurrentPrincipal, SessionDep, StateDep, guard_routes, require_role
from api.repo_access import check_repo_use
from core.errors import ConflictError
from schemas.workflow import ReviewInput
from store.graph import new_review_subtask, next_subtask_order, open_review_of
from store.tasks import get_task

router = APIRouter(tags=["Reviews & PRs"])
MEMBER = require_role("member")


@router.post("/api/tasks/{task_id}/review", status_code=201, dependencies=[MEMBER])
async def launch_review(
    task_id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
    response: Response,
) -> dict[str, Any]:
    """Start a review agent on the task's open PR as a subtask that blocks the parent.

    201 with the new review subtask's id; 200 with the one already under way; 409 when
    the task has no open pull request.
    """
    parent = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    await check_repo_use(
        session, settings=state.settings, workspace_id=parent.workspace_id, repo_url=parent.repo_url
    )
    if parent.pr_url is None or parent.pr_state in ("merged", "closed"):
        raise ConflictError("The task has no open pull request to review")
    if parent.task_type == "review":
        raise ConflictError("A review subtask cannot itself be reviewed")
    review = await open_review_of(session, parent=parent)
    if review is not None:
        response.status_code = 200
    else:
        review = new_review_subtask(
            session,
            parent=parent,
            order=await next_subtask_order(session, parent_id=parent.id),
            created_by=principal.user_id,
        )
    await session.commit()
    client = await state.temporal_client()
    try:
        # Also for a review found open: a request that died before this line left it unstarted.
        await client.start_workflow(
            "ReviewWorkflow",
            ReviewInput(task_id=review.id, parent_task_id=parent.id),
            id=f"review-{review.id}",
            task_queue=state.settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        pass
    # The parent re-reads its subtasks: an open blocking review holds its merge.
    await commands.signal_task(client, task_id=parent.id, signal="subtasks_changed")
    return {"reviewTaskId": review.id}


guard_routes(router)
