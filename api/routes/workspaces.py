"""Workspaces, members and the active workspace (inventory §3.13).

Routes with `{workspace_id}` act in that workspace: api/deps.py answers 404 to a
non-member and checks the role there, per api/roles.py.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import select

from api.deps import CurrentPrincipal, SessionDep
from core.errors import NotFoundError
from schemas.identity import (
    MemberAdd,
    MembersPublic,
    MemberUpdate,
    UserLookupPublic,
    WorkspaceCreate,
    WorkspaceEnvelope,
    WorkspacePublic,
    WorkspaceRoleEnvelope,
    WorkspacesPublic,
    WorkspaceSwitched,
    WorkspaceUpdate,
)
from schemas.task_views import Ok
from store.auth import local_admin_id
from store.models import User, Workspace, WorkspaceMember
from store.workspaces import (
    add_member,
    change_role,
    create_workspace,
    list_members,
    list_workspaces,
    remove_member,
    update_workspace,
)

router = APIRouter(tags=["Workspaces"])


def public(workspace: Workspace) -> dict[str, Any]:
    return WorkspacePublic.model_validate(workspace).model_dump(mode="json", by_alias=True)


def member_public(member: WorkspaceMember, user: User) -> dict[str, Any]:
    return {
        "userId": user.id,
        "role": member.role,
        "email": user.email,
        "displayName": user.display_name,
        "avatarUrl": user.avatar_url,
        "createdAt": member.created_at.isoformat(),
    }


@router.get("/api/workspaces", response_model=WorkspacesPublic)
async def list_(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    rows = await list_workspaces(session, user_id=principal.user_id)
    return {
        "workspaces": [{**public(ws), "role": role} for ws, role in rows],
        "activeWorkspaceId": principal.workspace_id,
    }


@router.post("/api/workspaces", status_code=201, response_model=WorkspaceRoleEnvelope)
async def create(
    body: WorkspaceCreate, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    workspace = await create_workspace(
        session,
        user_id=principal.user_id,
        name=body.name,
        slug=body.slug,
        description=body.description,
    )
    await session.commit()
    return {"workspace": public(workspace), "role": "admin"}


@router.get("/api/workspaces/{workspace_id}", response_model=WorkspaceRoleEnvelope)
async def read(
    workspace_id: str, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    workspace = await session.get(Workspace, principal.workspace_id)
    if workspace is None:
        raise NotFoundError("Workspace not found")
    return {"workspace": public(workspace), "role": principal.role}


@router.patch("/api/workspaces/{workspace_id}", response_model=WorkspaceEnvelope)
async def update(
    workspace_id: str, body: WorkspaceUpdate, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True)
    workspace = await update_workspace(session, workspace_id=principal.workspace_id, values=values)
    await session.commit()
    return {"workspace": public(workspace)}


@router.post("/api/workspaces/{workspace_id}/switch", response_model=WorkspaceSwitched)
async def switch(
    workspace_id: str, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    user = await session.get(User, principal.user_id)
    assert user is not None
    user.default_workspace_id = principal.workspace_id
    await session.commit()
    return {"ok": True, "workspaceId": principal.workspace_id}


@router.get("/api/workspaces/{workspace_id}/members", response_model=MembersPublic)
async def members(
    workspace_id: str, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    rows = await list_members(session, workspace_id=principal.workspace_id)
    return {"members": [member_public(m, u) for m, u in rows]}


@router.post("/api/workspaces/{workspace_id}/members", status_code=201, response_model=Ok)
async def invite(
    workspace_id: str, body: MemberAdd, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    await add_member(
        session, workspace_id=principal.workspace_id, user_id=body.user_id, role=body.role
    )
    await session.commit()
    return {"ok": True}


@router.patch("/api/workspaces/{workspace_id}/members/{user_id}", response_model=Ok)
async def set_role(
    workspace_id: str,
    user_id: str,
    body: MemberUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> dict[str, Any]:
    await change_role(session, workspace_id=principal.workspace_id, user_id=user_id, role=body.role)
    await session.commit()
    return {"ok": True}


@router.delete("/api/workspaces/{workspace_id}/members/{user_id}", status_code=204)
async def remove(
    workspace_id: str, user_id: str, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    await remove_member(session, workspace_id=principal.workspace_id, user_id=user_id)
    await session.commit()
    return Response(status_code=204)


@router.get("/api/users/lookup", response_model=UserLookupPublic)
async def lookup(email: str, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """Only people the caller already shares a workspace with (the instance's local admin
    sees everyone): anybody can make a workspace and be its admin, and must not learn
    from it who else uses this instance."""
    stmt = select(User).where(User.email == email)
    if principal.user_id != await local_admin_id(session):
        mine = select(WorkspaceMember.workspace_id).where(
            WorkspaceMember.user_id == principal.user_id
        )
        shared = select(WorkspaceMember.user_id).where(WorkspaceMember.workspace_id.in_(mine))
        stmt = stmt.where(User.id.in_(shared))
    user = (await session.execute(stmt.limit(1))).scalar_one_or_none()
    if user is None:
        raise NotFoundError("User not found")
    return {
        "user": {
            "id": user.id,
            "email": user.email,
            "displayName": user.display_name,
            "avatarUrl": user.avatar_url,
        }
    }
