"""Repo tasks: create, read, update, delete and the lifecycle commands (inventory §3.1, §3.9)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response
from pydantic import TypeAdapter
from sqlalchemy.exc import IntegrityError

from api import task_commands as commands
from api import task_insight as insight
from api import task_kinds as kinds
from api.budgets import refuse_over_monthly_budget
from api.contract import request_body
from api.deps import CurrentPrincipal, ReadDep, SessionDep, StateDep, require_role
from api.paging import Offset
from api.repo_access import usable_repo
from api.row_json import RowJson, json_response
from core.errors import InvalidInputError, NotFoundError
from core.states import LIVE_STATES, TaskState
from integrations.agents.models import task_model, unknown_model_error
from schemas.task_views import (
    TASK_KINDS,
    AnyTaskCreate,
    AnyTaskPublic,
    AnyTaskUpdate,
    TaskDetailPublic,
    TaskEnvelope,
    TaskEventsPublic,
    TaskLogsPublic,
    TasksPublic,
)
from schemas.tasks import (
    MODEL_NAME,
    ResumeBody,
    TaskCreate,
    TaskEventPublic,
    TaskKind,
    TaskLogPublic,
    TaskPublic,
    TaskUpdate,
)
from store import live
from store.blueprints import StandaloneTask, TaskConfig, find_kind, list_kind
from store.changes import apply_changes
from store.db import orm_session
from store.graph import add_dependencies
from store.models import Task
from store.tasks import (
    HAS_STEPS,
    TASK_PAGE_KEYS,
    find_by_idempotency_key,
    get_task,
    list_events,
    list_logs,
    list_tasks,
    read_task_row,
)
from store.types import utcnow

router = APIRouter(tags=["Tasks"])
# A page of tasks is validated and dumped in one call each (not one per task).
TASK_LIST = TypeAdapter(list[TaskPublic])
TASK_ROWS = RowJson(TaskPublic, TASK_PAGE_KEYS)
MEMBER = require_role("member")


def public(task: Task) -> dict[str, Any]:
    return TaskPublic.model_validate(task).model_dump(mode="json", by_alias=True)


def typed(task: Task) -> TaskPublic:
    return TaskPublic.model_validate(task)


def one(task: Task) -> TaskEnvelope:
    return TaskEnvelope(task=TaskPublic.model_validate(task))


@router.get("/api/tasks", response_model=TasksPublic)
async def list_(
    principal: CurrentPrincipal,
    connection: ReadDep,
    type: Annotated[
        str, Query(pattern="^(repo-task|repo-blueprint|standalone|all)$")
    ] = "repo-task",
    state: Annotated[TaskState | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Offset = 0,
) -> TasksPublic | Response:
    rows: list[AnyTaskPublic] = []
    if type in ("repo-task", "all"):
        tasks = await list_tasks(
            connection,
            workspace_id=principal.workspace_id,
            state=state.value if state else None,
            limit=limit,
            offset=offset,
        )
        if type == "repo-task":
            # The page as TasksPublic's JSON straight from the rows (api/row_json.py).
            page = {"tasks": TASK_ROWS.objects(tasks), "limit": limit, "offset": offset}
            return json_response(page)
        # One validation call for the page; FastAPI then serialises the models once.
        rows += TASK_LIST.validate_python(tasks)
    for kind, model in (("repo-blueprint", TaskConfig), ("standalone", StandaloneTask)):
        if type in (kind, "all") and state is None:
            async with orm_session(connection) as session:
                found = await list_kind(
                    session, model, workspace_id=principal.workspace_id, limit=limit, offset=offset
                )
                rows += [kinds.typed(r) for r in found]
    return TasksPublic(tasks=rows, limit=limit, offset=offset)


@router.post(
    "/api/tasks",
    status_code=201,
    dependencies=[MEMBER],
    responses={200: {"model": TaskEnvelope, "description": "The task an Idempotency-Key made"}},
    openapi_extra=request_body(
        AnyTaskCreate,
        description="`type` picks the kind; absent, it is a repo task",
        discriminator=TASK_KINDS,
    ),
)
async def create(
    raw: Annotated[dict[str, Any], Body()],
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> TaskEnvelope:
    # `type` picks the kind; the body is then validated against that kind's model.
    kind = kinds.parse(TaskKind, {"type": raw.get("type", "repo-task")}).type
    if kind != "repo-task":
        created = await kinds.create_kind(session, principal, raw, settings=state.settings)
        return TaskEnvelope(task=created)
    body: TaskCreate = kinds.parse(TaskCreate, raw)
    repo_url, repo = await usable_repo(
        session, settings=state.settings, workspace_id=principal.workspace_id, value=body.repo_url
    )
    if idempotency_key:
        existing = await find_by_idempotency_key(
            session, workspace_id=principal.workspace_id, key=idempotency_key
        )
        if existing is not None:
            response.status_code = 200
            return one(existing)
    await refuse_over_monthly_budget(state, session, workspace_id=principal.workspace_id)
    agent_type = body.agent_type or (repo.default_agent_type if repo else "claude-code")
    metadata = _with_model(body, agent_type, state.settings.agents_bin_dir)
    task = Task(
        workspace_id=principal.workspace_id,
        title=body.title,
        prompt=body.prompt,
        repo_url=repo_url,
        repo_branch=body.repo_branch or (repo.default_branch if repo else "main"),
        agent_type=agent_type,
        priority=body.priority,
        max_retries=body.max_retries,
        metadata_=metadata,
        max_cost_usd=body.max_cost_usd,
        created_by=principal.user_id,
        state=TaskState.PENDING,
        idempotency_key=idempotency_key,
        start_requested_at=utcnow(),
    )
    session.add(task)
    try:
        await session.flush()
        if body.depends_on:
            await add_dependencies(session, task=task, depends_on_ids=body.depends_on)
        task_public = typed(task)  # validated once: for the event and for the answer
        live.publish(
            session, workspace_id=task.workspace_id, topic=live.task_topic(task.id),
            type="task:created",
            payload={"taskId": task.id, "task": task_public.model_dump(mode="json", by_alias=True)},
        )  # fmt: skip
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise InvalidInputError("A task with this Idempotency-Key is being created") from exc
    # Committed with start_requested_at: the workflow starts right after this answer,
    # and a lost start is made again by the sweep (api/task_starts.py).
    state.starts.request(task)
    return TaskEnvelope(task=task_public)


def _with_model(body: TaskCreate, agent_type: str, agents_bin_dir: Path) -> dict[str, Any] | None:
    """The task's metadata with its model, refused when the agent's CLI would refuse it."""
    model = body.model or task_model(body.metadata)
    if model is None:
        return body.metadata
    _check_model(agent_type, model, agents_bin_dir)
    return {**(body.metadata or {}), "model": model}


def _check_model(agent_type: str, model: str | None, agents_bin_dir: Path) -> None:
    if model is None:
        return
    if not MODEL_NAME.fullmatch(model):
        raise InvalidInputError(f"'{model}' is not a model name")
    error = unknown_model_error(agent_type, model, agents_bin_dir)
    if error is not None:
        raise InvalidInputError(error)


async def _other_kind(
    session: SessionDep, principal: CurrentPrincipal, task_id: str
) -> kinds.Kind | None:
    """A blueprint or standalone task with this id; None means: look among repo tasks."""
    if await session.get(Task, task_id) is not None:
        return None
    return await find_kind(session, row_id=task_id, workspace_id=principal.workspace_id)


@router.get("/api/tasks/{task_id}")
async def read(
    task_id: str, principal: CurrentPrincipal, connection: ReadDep, state: StateDep
) -> TaskDetailPublic:
    # A repo task is read as one row (with whether it has pipeline steps) into the
    # response model, without an ORM object or session: store/row_dicts.py. The other
    # kinds, the steps and a running task's stall are read by the ORM, when there are some.
    row = await read_task_row(connection, task_id=task_id)
    if row is None:
        async with orm_session(connection) as session:
            other = await find_kind(session, row_id=task_id, workspace_id=principal.workspace_id)
            if other is None:
                raise NotFoundError("Task not found")
            typed_other = kinds.typed(other)
        return TaskDetailPublic(
            task=typed_other, pending_reason=None, pipeline_progress=None, stall_info=None
        )
    if row["workspace_id"] != principal.workspace_id:
        raise NotFoundError("Task not found")
    has_steps = row.pop(HAS_STEPS)
    task = TaskPublic.model_validate(row)
    reason = None
    if task.state == TaskState.QUEUED:
        reason = await commands.pending_reason(await state.temporal_client(), task_id=task.id)
    progress = stall = None
    if has_steps or task.state == TaskState.RUNNING:
        async with orm_session(connection) as session:
            if has_steps:
                progress = await insight.pipeline_progress(session, task_id=task.id)
            stall = await insight.stall_info(session, task=task, settings=state.settings)
    return TaskDetailPublic(
        task=task, pending_reason=reason, pipeline_progress=progress, stall_info=stall
    )


@router.patch(
    "/api/tasks/{task_id}", dependencies=[MEMBER], openapi_extra=request_body(AnyTaskUpdate)
)
async def update(
    task_id: str,
    raw: Annotated[dict[str, Any], Body()],
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
) -> TaskEnvelope:
    other = await _other_kind(session, principal, task_id)
    if other is not None:
        updated = await kinds.update_kind(session, other, raw, settings=state.settings)
        return TaskEnvelope(task=updated)
    body: TaskUpdate = kinds.parse(TaskUpdate, raw)
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    await state.starts.ensure_started(task)
    changes = body.model_dump(exclude_unset=True)
    if "metadata" in changes:  # metadata.model picks the task's model: the same check
        _check_model(
            task.agent_type, task_model(changes["metadata"]), state.settings.agents_bin_dir
        )
    apply_changes(task, changes, columns={"metadata": "metadata_"})
    await session.commit()
    if "priority" in changes and task.state in LIVE_STATES:
        await commands.change_priority(
            await state.temporal_client(), task_id=task.id, priority=task.priority
        )
    return one(task)


@router.delete("/api/tasks/{task_id}", status_code=204, dependencies=[MEMBER])
async def delete(
    task_id: str, principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> Response:
    other = await _other_kind(session, principal, task_id)
    if other is not None:
        await kinds.delete_kind(state, session, other)
        return Response(status_code=204)
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    await state.starts.ensure_started(task)
    client = await state.temporal_client()
    carrier = commands.workflow_id_of(task)
    if await commands.is_running(client, task.id, workflow=carrier):
        await client.get_workflow_handle(carrier).cancel()
        await commands.wait_closed(client, task_id=task.id, workflow=carrier)
    await session.refresh(task)
    await session.delete(task)
    await session.commit()
    return Response(status_code=204)


@router.get("/api/tasks/{task_id}/events")
async def events(
    task_id: str, principal: CurrentPrincipal, session: SessionDep
) -> TaskEventsPublic:
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    rows = await list_events(session, task_id=task.id)
    return TaskEventsPublic(events=[TaskEventPublic.model_validate(e) for e in rows])


@router.get("/api/tasks/{task_id}/logs")
async def logs(
    task_id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=10000)] = 200,
    offset: Offset = 0,
    search: Annotated[str | None, Query(max_length=500)] = None,
    log_type: Annotated[str | None, Query(alias="logType", max_length=20)] = None,
) -> TaskLogsPublic:
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    rows = await list_logs(
        session, task_id=task.id, limit=limit, offset=offset, search=search, log_type=log_type
    )
    return TaskLogsPublic(logs=[TaskLogPublic.model_validate(r) for r in rows])


@router.post("/api/tasks/{task_id}/cancel", dependencies=[MEMBER])
async def cancel(
    task_id: str, principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> TaskEnvelope:
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    await state.starts.ensure_started(task)
    if task.state == TaskState.CANCELLED:
        return one(task)  # a retried cancel is a no-op
    await commands.cancel(await state.temporal_client(), task=task)
    settled = await commands.settle(
        state.sessions, task_id=task.id, changed=lambda t: t.state not in LIVE_STATES
    )
    return one(settled or task)


@router.post("/api/tasks/{task_id}/retry", dependencies=[MEMBER])
async def retry(
    task_id: str, principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> TaskEnvelope:
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    await refuse_over_monthly_budget(state, session, workspace_id=principal.workspace_id)
    await state.starts.ensure_started(task)
    before = task.transition_seq
    await commands.retry(
        await state.temporal_client(),
        task=task,
        task_queue=state.settings.task_queue,
        user_id=principal.user_id,
    )
    return await _settled(state, task, before)


@router.post("/api/tasks/{task_id}/resume", dependencies=[MEMBER])
async def resume(
    task_id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
    body: Annotated[ResumeBody | None, Body()] = None,
) -> TaskEnvelope:
    return await _resume(task_id, principal, session, state, body, force_restart=False)


@router.post("/api/tasks/{task_id}/force-restart", dependencies=[MEMBER])
async def force_restart(
    task_id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
    body: Annotated[ResumeBody | None, Body()] = None,
) -> TaskEnvelope:
    return await _resume(task_id, principal, session, state, body, force_restart=True)


async def _resume(
    task_id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
    body: ResumeBody | None,
    *,
    force_restart: bool,
) -> TaskEnvelope:
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    await refuse_over_monthly_budget(state, session, workspace_id=principal.workspace_id)
    await state.starts.ensure_started(task)
    before = task.transition_seq
    await commands.resume(
        await state.temporal_client(),
        task=task,
        task_queue=state.settings.task_queue,
        prompt=body.prompt if body else None,
        user_id=principal.user_id,
        force_restart=force_restart,
    )
    return await _settled(state, task, before)


@router.post("/api/tasks/{task_id}/force-redo", dependencies=[MEMBER])
async def force_redo(
    task_id: str, principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> TaskEnvelope:
    task = await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
    await state.starts.ensure_started(task)
    await commands.force_redo(
        await state.temporal_client(),
        task=task,
        task_queue=state.settings.task_queue,
        user_id=principal.user_id,
    )
    settled = await commands.settle(
        state.sessions,
        task_id=task.id,
        changed=lambda t: t.pr_url is None and t.state != "cancelled",
    )
    return one(settled or task)


async def _settled(state: StateDep, task: Task, before: int) -> TaskEnvelope:
    settled = await commands.settle(
        state.sessions, task_id=task.id, changed=lambda t: t.transition_seq > before
    )
    return one(settled or task)
