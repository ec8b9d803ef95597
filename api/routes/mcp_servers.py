"""MCP servers (inventory §3.21): workspace-wide or scoped to one repository."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.deps import CurrentPrincipal, SessionDep, require_role
from api.repo_urls import canonical_repo_url
from schemas.agents import McpServerCreate, McpServerPublic, McpServerUpdate
from schemas.envelopes import McpServerEnvelope, McpServersPublic
from store.agent_config import McpServer
from store.scoping import get_scoped, scoped_select

router = APIRouter(tags=["MCP servers & skills"])
ADMIN = require_role("admin")
LABEL = "MCP server"


def public(row: McpServer) -> dict[str, Any]:
    return McpServerPublic.model_validate(row).model_dump(mode="json", by_alias=True)


@router.get("/api/mcp-servers", response_model=McpServersPublic)
async def list_(
    principal: CurrentPrincipal, session: SessionDep, scope: str | None = None
) -> dict[str, Any]:
    """`scope`: "global", a repo URL, or absent for all."""
    stmt = scoped_select(McpServer, workspace_id=principal.workspace_id)
    if scope == "global":
        stmt = stmt.where(McpServer.repo_url.is_(None))
    elif scope:
        stmt = stmt.where(McpServer.repo_url == await canonical_repo_url(scope, field="scope"))
    rows = (await session.execute(stmt.order_by(McpServer.name))).scalars()
    return {"servers": [public(r) for r in rows]}


@router.get("/api/mcp-servers/{server_id}", response_model=McpServerEnvelope)
async def read(server_id: str, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    row = await get_scoped(
        session, McpServer, row_id=server_id, workspace_id=principal.workspace_id, label=LABEL
    )
    return {"server": public(row)}


@router.post(
    "/api/mcp-servers", status_code=201, dependencies=[ADMIN], response_model=McpServerEnvelope
)
async def create(
    body: McpServerCreate, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    repo_url = await canonical_repo_url(body.repo_url) if body.repo_url else None
    row = McpServer(
        workspace_id=principal.workspace_id,
        name=body.name,
        command=body.command,
        args=body.args or [],
        env=body.env or {},
        install_command=body.install_command,
        repo_url=repo_url,
        enabled=body.enabled,
    )
    session.add(row)
    await session.commit()
    return {"server": public(row)}


@router.patch(
    "/api/mcp-servers/{server_id}", dependencies=[ADMIN], response_model=McpServerEnvelope
)
async def update(
    server_id: str, body: McpServerUpdate, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    row = await get_scoped(
        session, McpServer, row_id=server_id, workspace_id=principal.workspace_id, label=LABEL
    )
    nullable = {"env", "install_command"}  # null clears them
    for name, value in body.model_dump(exclude_unset=True).items():
        if value is None and name not in nullable:
            continue
        if value is None:
            value = {} if name == "env" else None
        setattr(row, name, value)
    await session.commit()
    return {"server": public(row)}


@router.delete("/api/mcp-servers/{server_id}", status_code=204, dependencies=[ADMIN])
async def delete(server_id: str, principal: CurrentPrincipal, session: SessionDep) -> Response:
    row = await get_scoped(
        session, McpServer, row_id=server_id, workspace_id=principal.workspace_id, label=LABEL
    )
    await session.delete(row)
    await session.commit()
    return Response(status_code=204)
