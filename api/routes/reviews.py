"""Launching a code review agent on a task's pull request (inventory §2.4)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api import task_commands as commands
from api.deps import CurrentPrincipal, SessionDep, StateDep, guard_routes, require_role
from api.repo_access import check_repo_use
from core.errors import ConflictError
from core.names import Signals
from schemas.task_views import ReviewLaunched
from store.graph import new_review_subtask, next_subtask_order, open_review_of
from store.tasks import get_task
from temporal.starts import start_review_workflow

router = APIRouter(tags=["Reviews & PRs"])
MEMBER = require_role("member")


@router.post(
    "/api/tasks/{task_id}/review",
    status_code=201,
    dependencies=[MEMBER],
    response_model=ReviewLaunched,
    responses={200: {"model": ReviewLaunched, "description": "The review under way already"}},
)
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
    # Also for a review found open: a request that died before this line left it unstarted.
    await start_review_workflow(
        client,
        review_task_id=review.id,
        parent_task_id=parent.id,
        task_queue=state.settings.task_queue,
    )
    # The parent re-reads its subtasks: an open blocking review holds its merge.
    await commands.signal_task(client, task_id=parent.id, signal=Signals.SUBTASKS_CHANGED)
    return {"reviewTaskId": review.id}


guard_routes(router)
