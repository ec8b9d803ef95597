"""Runs of blueprints and standalone tasks under /api/tasks/:id/runs (inventory §3.2)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from sqlalchemy import select

from api import run_commands
from api.deps import CurrentPrincipal, SessionDep, StateDep, require_role
from api.routes.tasks import typed as task_public
from core.errors import NotFoundError, OptioError
from schemas.blueprints import RunCreate, RunLogPublic, StandaloneRunPublic
from schemas.task_views import RunEnvelope, RunLogsPublic, RunsPublic, RunStarted
from store.blueprints import (
    StandaloneRun,
    StandaloneTask,
    TaskConfig,
    find_kind,
    list_run_logs,
    list_runs,
)
from store.models import Task
from store.tasks import get_task

router = APIRouter(tags=["Tasks"])
MEMBER = require_role("member")


class MethodNotAllowedError(OptioError):
    status_code = 405


def run_public(run: StandaloneRun) -> dict[str, Any]:
    return run_typed(run).model_dump(mode="json", by_alias=True)


def run_typed(run: StandaloneRun) -> StandaloneRunPublic:
    return StandaloneRunPublic.model_validate(run)


async def target_of(
    session: SessionDep, principal: CurrentPrincipal, task_id: str
) -> TaskConfig | StandaloneTask:
    """The blueprint or standalone task; a repo task answers 405, anything else 404."""
    found = await find_kind(session, row_id=task_id, workspace_id=principal.workspace_id)
    if found is not None:
        return found
    await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)  # 404s
    raise MethodNotAllowedError("Repo tasks have no runs or triggers; create a blueprint")


def blueprint_runs_query(config_id: str) -> Any:
    return select(Task).where(Task.metadata_["taskConfigId"].as_string() == config_id)


@router.get("/api/tasks/{task_id}/runs", response_model=RunsPublic)
async def list_(
    task_id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    found = await find_kind(session, row_id=task_id, workspace_id=principal.workspace_id)
    if found is None:
        await get_task(session, task_id=task_id, workspace_id=principal.workspace_id)
        return {"runs": []}  # an ad-hoc repo task has no runs (reference behaviour)
    if isinstance(found, StandaloneTask):
        return {"runs": [run_typed(r) for r in await list_runs(session, standalone_id=found.id)]}
    stmt = blueprint_runs_query(found.id).order_by(Task.created_at.desc()).limit(limit)
    return {"runs": [task_public(t) for t in (await session.execute(stmt)).scalars()]}


@router.post(
    "/api/tasks/{task_id}/runs", status_code=202, dependencies=[MEMBER], response_model=RunStarted
)
async def create(
    task_id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
    body: Annotated[RunCreate | None, Body()] = None,
) -> dict[str, Any]:
    target = await target_of(session, principal, task_id)
    params = (body.params if body else None) or {}
    trigger_id = body.trigger_id if body else None
    if isinstance(target, TaskConfig):
        task = await run_commands.start_blueprint_run(
            state=state,
            session=session,
            config=target,
            trigger_id=trigger_id,
            params=params,
            source="manual",
        )
        return {"runId": task.id, "type": "repo-task", "task": task_public(task)}
    run = await run_commands.start_standalone_run(
        state=state, session=session, job=target, trigger_id=trigger_id, params=params
    )
    return {"runId": run.id, "type": "workflow-run", "run": run_typed(run)}


@router.get("/api/tasks/{task_id}/runs/{run_id}", response_model=RunEnvelope)
async def read(
    task_id: str, run_id: str, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    target = await target_of(session, principal, task_id)
    if isinstance(target, StandaloneTask):
        run = await session.get(StandaloneRun, run_id)
        if run is None or run.workflow_id != target.id:
            raise NotFoundError("Run not found")
        return {"run": run_typed(run)}
    stmt = blueprint_runs_query(target.id).where(Task.id == run_id)
    task = (await session.execute(stmt)).scalar_one_or_none()
    if task is None:
        raise NotFoundError("Run not found")
    return {"run": task_public(task)}


@router.get("/api/tasks/{task_id}/runs/{run_id}/logs", response_model=RunLogsPublic)
async def logs(
    task_id: str, run_id: str, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    target = await target_of(session, principal, task_id)
    run = await session.get(StandaloneRun, run_id)
    if run is None or run.workflow_id != target.id:
        raise NotFoundError("Run not found")  # blueprint runs are tasks: /api/tasks/:id/logs
    rows = await list_run_logs(session, run_id=run.id)
    return {"logs": [RunLogPublic.model_validate(r) for r in rows]}
