from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentPrincipal, SessionDep
from store.models import User

router = APIRouter(tags=["Auth & Sessions"])


@router.get("/api/auth/providers")
async def providers() -> dict[str, list[dict[str, str]]]:
    # OAuth providers arrive with the identity issue; until then only local tokens exist.
    return {"providers": []}


@router.get("/api/auth/me")
async def me(principal: CurrentPrincipal, session: SessionDep) -> dict[str, object]:
    user = await session.get(User, principal.user_id)
    assert user is not None
    return {
        "user": {
            "id": user.id,
            "provider": user.provider,
            "email": user.email,
            "displayName": user.display_name,
            "avatarUrl": user.avatar_url,
            "workspaceId": principal.workspace_id,
            "workspaceRole": principal.role,
        },
        "authDisabled": False,
    }
