"""The task graph over HTTP: dependencies, subtasks, comments, reorder, bulk."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api import task_commands as commands
from api.deps import CurrentPrincipal, SessionDep, StateDep, require_role
from api.repo_access import check_repo_use
from api.routes.tasks import typed as public
from api.state import AppState
from core.errors import ConflictError, ForbiddenError, NotFoundError
from core.names import Signals
from core.states import LIVE_STATES, TaskState
from schemas.auth import Principal
from schemas.task_views import (
    BulkCancelled,
    BulkRetried,
    CommentEnvelope,
    CommentsPublic,
    DependenciesPublic,
    DependentsPublic,
    Ok,
    Reordered,
    SubtaskEnvelope,
    SubtasksPublic,
    SubtaskStatusPublic,
)
from schemas.tasks import (
    CommentBody,
    DependenciesAdd,
    ReorderBody,
    SubtaskCreate,
)
from store import live
from store.graph import (
    add_dependencies,
    dependency_rows,
    dependents,
    new_review_subtask,
    next_subtask_order,
    remove_dependency,
    subtasks,
)
from store.models import Task, TaskComment
from store.scoping import scoped_select
from store.tasks import get_task
from temporal.starts import start_review_workflow

router = APIRouter(tags=["Tasks"])
MEMBER = require_role("member")
BEFORE_START = (TaskState.PENDING, TaskState.WAITING_ON_DEPS)
# Provisioning too: it is a running task on its way, and skipping it would leave an agent
# started a second later.
CANCEL_ACTIVE_STATES = (TaskState.RUNNING, TaskState.PROVISIONING, TaskState.QUEUED)


def _brief(task: Task) -> dict[str, Any]:
    return {"id": task.id, "title": task.title, "state": task.state}


# ---- dependencies --------------------------------------------------------------------


@router.get("/api/tasks/{task_id}/dependencies", response_model=DependenciesPublic)
async def list_dependencies(
    task_id: str, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    rows = await dependency_rows(session, task_id=task.id)
    return {"dependencies": [{**_brief(dep), "dependencyId": row.id} for row, dep in rows]}


@router.get("/api/tasks/{task_id}/dependents", response_model=DependentsPublic)
async def list_dependents(
    task_id: str, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    return {"dependents": [_brief(t) for t in await dependents(session, task_id=task.id)]}


@router.post(
    "/api/tasks/{task_id}/dependencies", status_code=201, dependencies=[MEMBER], response_model=Ok
)
async def add(
    task_id: str,
    body: DependenciesAdd,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
) -> dict[str, Any]:
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    if task.state not in BEFORE_START:
        raise ConflictError(
            f"Dependencies can only change before a task starts (it is {task.state})"
        )
    await add_dependencies(session, task=task, depends_on_ids=body.depends_on_ids)
    await session.commit()
    await commands.signal_task(
        await state.temporal_client(), task_id=task.id, signal=Signals.DEPENDENCIES_CHANGED
    )
    return {"ok": True}


@router.delete(
    "/api/tasks/{task_id}/dependencies/{depends_on_id}", status_code=204, dependencies=[MEMBER]
)
async def remove(
    task_id: str,
    depends_on_id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
) -> Response:
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    if not await remove_dependency(session, task=task, depends_on_id=depends_on_id):
        raise NotFoundError("Dependency not found")
    await session.commit()
    await commands.signal_task(
        await state.temporal_client(), task_id=task.id, signal=Signals.DEPENDENCIES_CHANGED
    )
    return Response(status_code=204)


# ---- subtasks ------------------------------------------------------------------------


@router.get("/api/tasks/{task_id}/subtasks", response_model=SubtasksPublic)
async def list_subtasks(
    task_id: str, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    return {"subtasks": [public(t) for t in await subtasks(session, parent_id=task.id)]}


@router.get("/api/tasks/{task_id}/subtasks/status", response_model=SubtaskStatusPublic)
async def subtask_status(
    task_id: str, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    blocking = [t for t in await subtasks(session, parent_id=task.id) if t.blocks_parent]
    counts = {"pending": 0, "running": 0, "completed": 0, "failed": 0}
    for sub in blocking:
        if sub.state == TaskState.COMPLETED:
            counts["completed"] += 1
        elif sub.state in (TaskState.FAILED, TaskState.CANCELLED):
            counts["failed"] += 1
        elif sub.state in (TaskState.PENDING, TaskState.WAITING_ON_DEPS, TaskState.QUEUED):
            counts["pending"] += 1
        else:
            counts["running"] += 1
    return {"allComplete": counts["completed"] == len(blocking), "total": len(blocking), **counts}


@router.post(
    "/api/tasks/{task_id}/subtasks",
    status_code=201,
    dependencies=[MEMBER],
    response_model=SubtaskEnvelope,
)
async def create_subtask(
    task_id: str,
    body: SubtaskCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
) -> dict[str, Any]:
    parent = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    await check_repo_use(
        session,
        settings=state.settings,
        workspace_id=parent.workspace_id,
        repo_url=parent.repo_url,
    )
    if body.task_type == "review":
        return {"subtask": public(await _review_subtask(state, session, parent, body, principal))}
    subtask = Task(
        workspace_id=parent.workspace_id,
        title=body.title,
        prompt=body.prompt,
        repo_url=parent.repo_url,
        repo_branch=parent.repo_branch,
        agent_type=body.agent_type or parent.agent_type,
        task_type=body.task_type,
        priority=body.priority or max(1, parent.priority - 1),
        max_retries=parent.max_retries,
        created_by=principal.user_id,
        state=TaskState.PENDING,
        parent_task_id=parent.id,
        subtask_order=await next_subtask_order(session, parent_id=parent.id),
        blocks_parent=body.blocks_parent,
    )
    session.add(subtask)
    await session.commit()
    client = await state.temporal_client()
    queue = state.settings.task_queue
    if body.task_type == "step":
        # Steps start one at a time, in order, under the parent's pipeline.
        await commands.kick_pipeline(client, parent_task_id=parent.id, task_queue=queue)
    elif body.auto_queue:
        await commands.start_run(client, task=subtask, task_queue=queue, mode="fresh")
    await commands.signal_task(client, task_id=parent.id, signal=Signals.SUBTASKS_CHANGED)
    return {"subtask": public(subtask)}


async def _review_subtask(
    state: AppState,
    session: AsyncSession,
    parent: Task,
    body: SubtaskCreate,
    principal: Principal,
) -> Task:
    """A review subtask runs as a ReviewWorkflow on the parent's PR, like POST /review."""
    if parent.pr_url is None or parent.pr_state in ("merged", "closed"):
        raise ConflictError("The task has no open pull request to review")
    if parent.task_type == "review":
        raise ConflictError("A review subtask cannot itself be reviewed")
    review = new_review_subtask(
        session,
        parent=parent,
        order=await next_subtask_order(session, parent_id=parent.id),
        created_by=principal.user_id,
    )
    review.title, review.blocks_parent = body.title, body.blocks_parent
    if body.agent_type:
        review.agent_type = body.agent_type
    await session.commit()
    client = await state.temporal_client()
    if body.auto_queue:
        await start_review_workflow(
            client,
            review_task_id=review.id,
            parent_task_id=parent.id,
            task_queue=state.settings.task_queue,
        )
    await commands.signal_task(client, task_id=parent.id, signal=Signals.SUBTASKS_CHANGED)
    return review


# ---- comments ------------------------------------------------------------------------


def _comment(c: TaskComment) -> dict[str, Any]:
    return {
        "id": c.id,
        "taskId": c.task_id,
        "userId": c.user_id,
        "content": c.content,
        "createdAt": c.created_at.isoformat(),
        "updatedAt": c.updated_at.isoformat(),
    }


@router.get("/api/tasks/{task_id}/comments", response_model=CommentsPublic)
async def list_comments(
    task_id: str, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    stmt = (
        scoped_select(TaskComment, workspace_id=principal.workspace_id)
        .where(TaskComment.task_id == task.id)
        .order_by(TaskComment.created_at)
    )
    return {"comments": [_comment(c) for c in (await session.execute(stmt)).scalars()]}


@router.post(
    "/api/tasks/{task_id}/comments",
    status_code=201,
    dependencies=[MEMBER],
    response_model=CommentEnvelope,
)
async def add_comment(
    task_id: str, body: CommentBody, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    comment = TaskComment(
        workspace_id=task.workspace_id, task_id=task.id, user_id=principal.user_id,
        content=body.content,
    )  # fmt: skip
    session.add(comment)
    await session.flush()
    live.publish(
        session, workspace_id=task.workspace_id, topic=live.task_topic(task.id),
        type="task:comment", payload=_comment(comment),
    )  # fmt: skip
    await session.commit()
    return {"comment": _comment(comment)}


async def _own_comment(
    session: SessionDep, principal: CurrentPrincipal, task_id: str, comment_id: str
) -> TaskComment:
    stmt = scoped_select(TaskComment, workspace_id=principal.workspace_id).where(
        TaskComment.id == comment_id, TaskComment.task_id == task_id
    )
    comment = (await session.execute(stmt)).scalar_one_or_none()
    if comment is None:
        raise NotFoundError("Comment not found")
    if comment.user_id != principal.user_id and principal.role != "admin":
        raise ForbiddenError("Only the author or a workspace admin can change this comment")
    return comment


@router.patch(
    "/api/tasks/{task_id}/comments/{comment_id}",
    dependencies=[MEMBER],
    response_model=CommentEnvelope,
)
async def edit_comment(
    task_id: str,
    comment_id: str,
    body: CommentBody,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> dict[str, Any]:
    comment = await _own_comment(session, principal, task_id, comment_id)
    comment.content = body.content
    await session.commit()
    return {"comment": _comment(comment)}


@router.delete("/api/tasks/{task_id}/comments/{comment_id}", status_code=204, dependencies=[MEMBER])
async def delete_comment(
    task_id: str, comment_id: str, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    comment = await _own_comment(session, principal, task_id, comment_id)
    await session.delete(comment)
    await session.commit()
    return Response(status_code=204)


# ---- priorities and bulk -------------------------------------------------------------


@router.post("/api/tasks/reorder", dependencies=[MEMBER], response_model=Reordered)
async def reorder(
    body: ReorderBody, principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> dict[str, Any]:
    ids = list(dict.fromkeys(body.task_ids))
    stmt = scoped_select(Task, workspace_id=principal.workspace_id).where(Task.id.in_(ids))
    tasks = {t.id: t for t in (await session.execute(stmt)).scalars()}
    missing = [i for i in ids if i not in tasks]
    if missing:
        raise NotFoundError(f"Task not found: {', '.join(missing)}")
    for position, task_id in enumerate(ids, start=1):
        tasks[task_id].priority = position
    await session.commit()
    client = await state.temporal_client()
    for task_id in ids:
        if tasks[task_id].state in LIVE_STATES:
            await commands.change_priority(
                client, task_id=task_id, priority=tasks[task_id].priority
            )
    return {"ok": True, "reordered": len(ids)}


def _moved_past(seq: int) -> Callable[[Task], bool]:
    return lambda task: task.transition_seq > seq


async def _in_states(session: SessionDep, workspace_id: str, states: set[str]) -> list[Task]:
    stmt = scoped_select(Task, workspace_id=workspace_id).where(Task.state.in_(states))
    return list((await session.execute(stmt)).scalars())


@router.post("/api/tasks/bulk/retry-failed", dependencies=[MEMBER], response_model=BulkRetried)
async def retry_failed(
    principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> dict[str, int]:
    failed = await _in_states(session, principal.workspace_id, {TaskState.FAILED})
    client = await state.temporal_client()
    retried = 0
    for task in failed:
        before = task.transition_seq
        await commands.retry(
            client, task=task, task_queue=state.settings.task_queue, user_id=principal.user_id
        )
        # Recorded before answering, so a second call finds nothing left to retry.
        await commands.settle(state.sessions, task_id=task.id, changed=_moved_past(before))
        retried += 1
    return {"retried": retried, "total": len(failed)}


@router.post("/api/tasks/bulk/cancel-active", dependencies=[MEMBER], response_model=BulkCancelled)
async def cancel_active(
    principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> dict[str, int]:
    # As the reference: running and queued tasks; one waiting on its PR or on a person
    # has work worth keeping.
    live = await _in_states(session, principal.workspace_id, set(CANCEL_ACTIVE_STATES))
    client = await state.temporal_client()
    cancelled = 0
    for task in live:
        await state.starts.ensure_started(task)  # a cancel must not overtake the start
        await commands.cancel(client, task=task)
        cancelled += 1
    return {"cancelled": cancelled, "total": len(live)}
