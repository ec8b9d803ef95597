"""Triggers under /api/tasks/:id/triggers (inventory §3.2, §3.5)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api import trigger_service as triggers
from api.deps import CurrentPrincipal, SessionDep, StateDep, require_role
from api.routes.blueprints import target_of
from schemas.blueprints import TriggerCreate, TriggerUpdate
from schemas.task_views import TriggerEnvelope, TriggersPublic
from store.blueprints import get_trigger

router = APIRouter(tags=["Tasks"])
MEMBER = require_role("member")


@router.get("/api/tasks/{task_id}/triggers", response_model=TriggersPublic)
async def list_(
    task_id: str, principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> dict[str, Any]:
    target = await target_of(session, principal, task_id)
    return {"triggers": await triggers.list_for(state, session, target)}


@router.post(
    "/api/tasks/{task_id}/triggers",
    status_code=201,
    dependencies=[MEMBER],
    response_model=TriggerEnvelope,
)
async def create(
    task_id: str,
    body: TriggerCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
) -> dict[str, Any]:
    target = await target_of(session, principal, task_id)
    return {
        "trigger": await triggers.create(
            state, session, target, body, admin=principal.role == "admin"
        )
    }


@router.patch(
    "/api/tasks/{task_id}/triggers/{trigger_id}",
    dependencies=[MEMBER],
    response_model=TriggerEnvelope,
)
async def update(
    task_id: str,
    trigger_id: str,
    body: TriggerUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
) -> dict[str, Any]:
    target = await target_of(session, principal, task_id)
    trigger = await get_trigger(
        session, target_id=target.id, trigger_id=trigger_id, workspace_id=principal.workspace_id
    )
    return {
        "trigger": await triggers.update(
            state, session, target, trigger, body, admin=principal.role == "admin"
        )
    }


@router.delete("/api/tasks/{task_id}/triggers/{trigger_id}", status_code=204, dependencies=[MEMBER])
async def delete(
    task_id: str,
    trigger_id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
) -> Response:
    target = await target_of(session, principal, task_id)
    trigger = await get_trigger(
        session, target_id=target.id, trigger_id=trigger_id, workspace_id=principal.workspace_id
    )
    await triggers.delete(state, session, trigger)
    return Response(status_code=204)
