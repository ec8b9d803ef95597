"""Secrets: names and scopes go out, values never do (inventory §3.11)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api.deps import CurrentPrincipal, SessionDep, StateDep
from core.errors import NotFoundError
from schemas.identity import SecretCreate, SecretEnvelope, SecretPublic, SecretsPublic
from store.secrets import SecretInfo, delete_secret, list_secrets, secret_key, upsert_secret

router = APIRouter(tags=["Setup & Settings"])


def public(info: SecretInfo) -> dict[str, Any]:
    return SecretPublic.model_validate(info).model_dump(mode="json", by_alias=True)


@router.get("/api/secrets")
async def list_(
    principal: CurrentPrincipal,
    session: SessionDep,
    scope: Annotated[str | None, Query(max_length=1000)] = None,
) -> SecretsPublic:
    rows = await list_secrets(
        session, workspace_id=principal.workspace_id, user_id=principal.user_id, scope=scope
    )
    return SecretsPublic(secrets=[SecretPublic.model_validate(r) for r in rows])


@router.post(
    "/api/secrets",
    status_code=201,
    responses={200: {"model": SecretEnvelope, "description": "An existing secret replaced"}},
)
async def put(
    body: SecretCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
    response: Response,
) -> SecretEnvelope:
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
    return SecretEnvelope(
        secret=SecretPublic.model_validate(info), name=info.name, scope=info.scope
    )


@router.delete("/api/secrets/{name}", status_code=204)
async def remove(
    name: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    scope: Annotated[str | None, Query(max_length=1000)] = None,
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
