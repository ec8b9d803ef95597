"""Merging a task's pull request by hand (the local forge has no UI of its own)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api import task_commands as commands
from api.deps import CurrentPrincipal, SessionDep, StateDep, require_role
from api.repo_access import check_repo_use
from api.routes.tasks import public
from core.errors import ConflictError, NotFoundError
from core.states import TaskState
from schemas.task_views import MergeResult
from schemas.tasks import MergeBody
from store.models import Task
from store.scoping import scoped_select

router = APIRouter(tags=["Reviews & PRs"])


@router.post(
    "/api/pull-requests/merge", dependencies=[require_role("member")], response_model=MergeResult
)
async def merge(
    body: MergeBody, principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> dict[str, Any]:
    stmt = scoped_select(Task, workspace_id=principal.workspace_id).where(
        Task.pr_url == body.pr_url
    )
    task = (await session.execute(stmt.order_by(Task.created_at.desc()))).scalars().first()
    if task is None:
        raise NotFoundError("No task of this workspace has that pull request")
    if task.state == TaskState.COMPLETED and task.pr_state == "merged":
        return {"merged": True, "task": public(task)}  # a retried merge
    # A task saved before repositories had owners may name another workspace's.
    await check_repo_use(
        session, settings=state.settings, workspace_id=task.workspace_id, repo_url=task.repo_url
    )
    try:
        await commands.merge(
            await state.temporal_client(),
            task=task,
            method=body.merge_method,
            user_id=principal.user_id,
        )
    except ConflictError:
        # A first attempt whose answer was lost may have merged it and ended the run (the
        # row says so before the run ends).
        again = await commands.settle(state.sessions, task_id=task.id, changed=_merged, timeout=0)
        if again is None or not _merged(again):
            raise
        return {"merged": True, "task": public(again)}
    settled = await commands.settle(
        state.sessions, task_id=task.id, changed=lambda t: t.state == TaskState.COMPLETED
    )
    return {"merged": True, "task": public(settled or task)}


def _merged(task: Task) -> bool:
    return task.state == TaskState.COMPLETED and task.pr_state == "merged"
