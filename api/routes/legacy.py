"""Legacy aliases (inventory §3.3, §3.4, §3.27): /api/task-configs/* for blueprints,
/api/jobs/* and /api/workflow-runs/* for standalone tasks, over the same code as /api/tasks.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from api import run_commands, task_kinds
from api import trigger_service as triggers
from api.contract import request_body
from api.deps import CurrentPrincipal, SessionDep, StateDep, require_role
from api.routes.blueprints import run_typed as run_public
from api.routes.tasks import typed as task_public
from core.errors import NotFoundError
from schemas.blueprints import (
    BlueprintCreate,
    BlueprintUpdate,
    RunCreate,
    RunLogPublic,
    StandaloneCreate,
    StandaloneUpdate,
    TriggerCreate,
    TriggerUpdate,
)
from schemas.envelopes import (
    JobEnvelope,
    JobsPublic,
    RunLogsOfWorkflowPublic,
    TaskConfigEnvelope,
    TaskConfigsPublic,
    WorkflowRunEnvelope,
    WorkflowRunsPublic,
)
from schemas.task_views import RepoTaskEnvelope, TriggerEnvelope, TriggersPublic
from store.blueprints import (
    StandaloneRun,
    StandaloneTask,
    TaskConfig,
    get_blueprint,
    get_standalone,
    get_trigger,
    list_kind,
    list_run_logs,
    list_runs,
)
from store.scoping import get_scoped

router = APIRouter(tags=["Workflows"])
MEMBER = require_role("member")
# (URL prefix, response key for one, response key for many, model, create model)
ALIASES = (
    ("/api/task-configs", "taskConfig", "taskConfigs", TaskConfig, BlueprintCreate),
    ("/api/jobs", "workflow", "workflows", StandaloneTask, StandaloneCreate),
)
# The answers of each alias: (one, many).
ANSWERS: dict[str, tuple[Any, Any]] = {
    "/api/task-configs": (TaskConfigEnvelope, TaskConfigsPublic),
    "/api/jobs": (JobEnvelope, JobsPublic),
}


async def _target(
    model: type[TaskConfig] | type[StandaloneTask], session: SessionDep, principal: Any, id: str
) -> TaskConfig | StandaloneTask:
    if model is TaskConfig:
        return await get_blueprint(session, config_id=id, workspace_id=principal.workspace_id)
    return await get_standalone(session, standalone_id=id, workspace_id=principal.workspace_id)


def _register(prefix: str, one: str, many: str, model: Any, create_model: Any) -> None:
    kind = "repo-blueprint" if model is TaskConfig else "standalone"
    answer_one, answer_many = ANSWERS[prefix]

    @router.get(prefix, name=f"{many}_list", response_model=answer_many)
    async def list_(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
        rows = await list_kind(
            session, model, workspace_id=principal.workspace_id, limit=1000, offset=0
        )
        return {many: [task_kinds.typed(r) for r in rows]}

    @router.post(
        prefix,
        status_code=201,
        dependencies=[MEMBER],
        name=f"{many}_create",
        response_model=answer_one,
        openapi_extra=request_body(create_model),
    )
    async def create(
        raw: Annotated[dict[str, Any], Body()],
        principal: CurrentPrincipal,
        session: SessionDep,
        state: StateDep,
    ) -> dict[str, Any]:
        body = {**raw, "type": kind}
        return {
            one: (await task_kinds.create_kind(session, principal, body, settings=state.settings))
        }

    @router.get(prefix + "/{id}", name=f"{many}_read", response_model=answer_one)
    async def read(id: str, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
        return {one: task_kinds.typed(await _target(model, session, principal, id))}

    @router.patch(
        prefix + "/{id}",
        dependencies=[MEMBER],
        name=f"{many}_update",
        response_model=answer_one,
        openapi_extra=request_body(BlueprintUpdate if model is TaskConfig else StandaloneUpdate),
    )
    async def update(
        id: str,
        raw: Annotated[dict[str, Any], Body()],
        principal: CurrentPrincipal,
        session: SessionDep,
        state: StateDep,
    ) -> dict[str, Any]:
        row = await _target(model, session, principal, id)
        updated = await task_kinds.update_kind(session, row, raw, settings=state.settings)
        return {one: updated}

    @router.delete(prefix + "/{id}", status_code=204, dependencies=[MEMBER], name=f"{many}_del")
    async def delete(
        id: str, principal: CurrentPrincipal, session: SessionDep, state: StateDep
    ) -> Response:
        await task_kinds.delete_kind(state, session, await _target(model, session, principal, id))
        return Response(status_code=204)

    @router.get(prefix + "/{id}/triggers", name=f"{many}_triggers", response_model=TriggersPublic)
    async def list_triggers(
        id: str, principal: CurrentPrincipal, session: SessionDep, state: StateDep
    ) -> dict[str, Any]:
        target = await _target(model, session, principal, id)
        return {"triggers": await triggers.list_for(state, session, target)}

    @router.post(
        prefix + "/{id}/triggers",
        status_code=201,
        dependencies=[MEMBER],
        name=f"{many}_trig_new",
        response_model=TriggerEnvelope,
    )
    async def create_trigger(
        id: str,
        body: TriggerCreate,
        principal: CurrentPrincipal,
        session: SessionDep,
        state: StateDep,
    ) -> dict[str, Any]:
        target = await _target(model, session, principal, id)
        return {
            "trigger": await triggers.create(
                state, session, target, body, admin=principal.role == "admin"
            )
        }

    @router.patch(
        prefix + "/{id}/triggers/{trigger_id}",
        dependencies=[MEMBER],
        name=f"{many}_trig_upd",
        response_model=TriggerEnvelope,
    )
    async def update_trigger(
        id: str,
        trigger_id: str,
        body: TriggerUpdate,
        principal: CurrentPrincipal,
        session: SessionDep,
        state: StateDep,
    ) -> dict[str, Any]:
        target = await _target(model, session, principal, id)
        trigger = await get_trigger(
            session, target_id=target.id, trigger_id=trigger_id, workspace_id=target.workspace_id
        )
        return {
            "trigger": await triggers.update(
                state, session, target, trigger, body, admin=principal.role == "admin"
            )
        }

    @router.delete(
        prefix + "/{id}/triggers/{trigger_id}",
        status_code=204,
        dependencies=[MEMBER],
        name=f"{many}_trig_del",
    )
    async def delete_trigger(
        id: str, trigger_id: str, principal: CurrentPrincipal, session: SessionDep, state: StateDep
    ) -> Response:
        target = await _target(model, session, principal, id)
        trigger = await get_trigger(
            session, target_id=target.id, trigger_id=trigger_id, workspace_id=target.workspace_id
        )
        await triggers.delete(state, session, trigger)
        return Response(status_code=204)


for alias in ALIASES:
    _register(*alias)


@router.post(
    "/api/task-configs/{id}/run",
    status_code=202,
    dependencies=[MEMBER],
    response_model=RepoTaskEnvelope,
)
async def run_blueprint(
    id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
    body: Annotated[RunCreate | None, Body()] = None,
) -> dict[str, Any]:
    config = await get_blueprint(session, config_id=id, workspace_id=principal.workspace_id)
    task = await run_commands.start_blueprint_run(
        state=state,
        session=session,
        config=config,
        trigger_id=body.trigger_id if body else None,
        params=(body.params if body else None) or {},
        source="manual",
    )
    return {"task": task_public(task)}


@router.get("/api/jobs/{id}/runs", response_model=WorkflowRunsPublic)
async def job_runs(id: str, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    job = await get_standalone(session, standalone_id=id, workspace_id=principal.workspace_id)
    return {"runs": [run_public(r) for r in await list_runs(session, standalone_id=job.id)]}


@router.post(
    "/api/jobs/{id}/runs",
    status_code=201,
    dependencies=[MEMBER],
    response_model=WorkflowRunEnvelope,
)
async def job_run(
    id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
    body: Annotated[RunCreate | None, Body()] = None,
) -> dict[str, Any]:
    job = await get_standalone(session, standalone_id=id, workspace_id=principal.workspace_id)
    run = await run_commands.start_standalone_run(
        state=state,
        session=session,
        job=job,
        trigger_id=body.trigger_id if body else None,
        params=(body.params if body else None) or {},
    )
    return {"run": run_public(run)}


async def _run(session: SessionDep, principal: Any, id: str) -> StandaloneRun:
    try:
        return await get_scoped(
            session, StandaloneRun, row_id=id, workspace_id=principal.workspace_id, label="Run"
        )
    except NotFoundError:
        raise NotFoundError("Run not found") from None


@router.get("/api/workflow-runs/{id}", response_model=WorkflowRunEnvelope)
async def workflow_run(id: str, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    return {"run": run_public(await _run(session, principal, id))}


@router.get("/api/workflow-runs/{id}/logs", response_model=RunLogsOfWorkflowPublic)
async def workflow_run_logs(
    id: str, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    run = await _run(session, principal, id)
    rows = await list_run_logs(session, run_id=run.id)
    return {"logs": [RunLogPublic.model_validate(r) for r in rows]}
