"""Custom skills (inventory §3.21): slash commands or SKILL.md directories for the agents."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.deps import CurrentPrincipal, SessionDep, require_role
from api.repo_urls import canonical_repo_url
from schemas.agents import SkillCreate, SkillPublic, SkillUpdate
from schemas.envelopes import SkillEnvelope, SkillsPublic
from store.agent_config import CustomSkill
from store.scoping import get_scoped, scoped_select

router = APIRouter(tags=["MCP servers & skills"])
ADMIN = require_role("admin")
LABEL = "Skill"


def public(row: CustomSkill) -> dict[str, Any]:
    return SkillPublic.model_validate(row).model_dump(mode="json", by_alias=True)


@router.get("/api/skills", response_model=SkillsPublic)
async def list_(
    principal: CurrentPrincipal, session: SessionDep, scope: str | None = None
) -> dict[str, Any]:
    """`scope`: "global", a repo URL, or absent for all."""
    stmt = scoped_select(CustomSkill, workspace_id=principal.workspace_id)
    if scope == "global":
        stmt = stmt.where(CustomSkill.repo_url.is_(None))
    elif scope:
        stmt = stmt.where(CustomSkill.repo_url == await canonical_repo_url(scope, field="scope"))
    rows = (await session.execute(stmt.order_by(CustomSkill.name))).scalars()
    return {"skills": [public(r) for r in rows]}


@router.get("/api/skills/{skill_id}", response_model=SkillEnvelope)
async def read(skill_id: str, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    row = await get_scoped(
        session, CustomSkill, row_id=skill_id, workspace_id=principal.workspace_id, label=LABEL
    )
    return {"skill": public(row)}


@router.post("/api/skills", status_code=201, dependencies=[ADMIN], response_model=SkillEnvelope)
async def create(
    body: SkillCreate, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    row = CustomSkill(
        workspace_id=principal.workspace_id,
        name=body.name,
        description=body.description,
        prompt=body.prompt,
        repo_url=await canonical_repo_url(body.repo_url) if body.repo_url else None,
        layout=body.layout,
        files=[f.model_dump() for f in body.files or []],
        agent_types=body.agent_types,
        enabled=body.enabled,
    )
    session.add(row)
    await session.commit()
    return {"skill": public(row)}


@router.patch("/api/skills/{skill_id}", dependencies=[ADMIN], response_model=SkillEnvelope)
async def update(
    skill_id: str, body: SkillUpdate, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    row = await get_scoped(
        session, CustomSkill, row_id=skill_id, workspace_id=principal.workspace_id, label=LABEL
    )
    nullable = {"description", "agent_types"}  # null clears them
    for name, value in body.model_dump(exclude_unset=True).items():
        if value is None and name not in nullable:
            continue
        setattr(row, name, value)
    await session.commit()
    return {"skill": public(row)}


@router.delete("/api/skills/{skill_id}", status_code=204, dependencies=[ADMIN])
async def delete(skill_id: str, principal: CurrentPrincipal, session: SessionDep) -> Response:
    row = await get_scoped(
        session, CustomSkill, row_id=skill_id, workspace_id=principal.workspace_id, label=LABEL
    )
    await session.delete(row)
    await session.commit()
    return Response(status_code=204)
