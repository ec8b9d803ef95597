"""Secrets: names and scopes go out, values never do (inventory §3.11)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.deps import CurrentPrincipal, SessionDep, StateDep
from core.errors import NotFoundError
from schemas.identity import SecretCreate, SecretPublic
from store.secrets import SecretInfo, delete_secret, list_secrets, secret_key, upsert_secret

router = APIRouter(tags=["Setup & Settings"])


def public(info: SecretInfo) -> dict[str, Any]:
    return SecretPublic.model_validate(info).model_dump(mode="json", by_alias=True)


@router.get("/api/secrets")
async def list_(
    principal: CurrentPrincipal, session: SessionDep, scope: str | None = None
) -> dict[str, Any]:
    rows = await list_secrets(
        session, workspace_id=principal.workspace_id, user_id=principal.user_id, scope=scope
    )
    return {"secrets": [public(r) for r in rows]}


@router.post("/api/secrets", status_code=201)
async def put(
    body: SecretCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
    response: Response,
) -> dict[str, Any]:
    info, created = await upsert_secret(
        session,
        key=secret_key(state.settings),
        workspace_id=principal.workspace_id,
        name=body.name,
        value=body.value.get_secret_value(),
        scope=body.scope,
        user_id=principal.user_id,
    )
    await session.commit()
    if not created:
        response.status_code = 200
    return {"secret": public(info), "name": info.name, "scope": info.scope}


@router.delete("/api/secrets/{name}", status_code=204)
async def remove(
    name: str, principal: CurrentPrincipal, session: SessionDep, scope: str | None = None
) -> Response:
    deleted = await delete_secret(
        session,
        workspace_id=principal.workspace_id,
        name=name,
        scope=scope,
        user_id=principal.user_id,
    )
    if not deleted:
        raise NotFoundError("Secret not found")
    await session.commit()
    return Response(status_code=204)
