"""POST /api/auth/ws-token: a credential for one WebSocket connection (store/ws_tokens.py)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from api.deps import CurrentPrincipal, SessionDep, StateDep
from schemas.common import ApiOut
from store.ws_tokens import mint_ws_token

router = APIRouter(tags=["Auth"])


class WsTokenOut(ApiOut):
    token: str
    expires_at: str


@router.post("/api/auth/ws-token", response_model=WsTokenOut)
async def ws_token(principal: CurrentPrincipal, session: SessionDep, state: StateDep) -> WsTokenOut:
    """Offer it as the subprotocol `optio-auth-<token>` next to `optio-ws-v1`, within
    `OPTIO_WS_TOKEN_TTL_SECONDS` (60 s); it opens one connection."""
    ttl = timedelta(seconds=state.settings.ws_token_ttl_seconds)
    token, expires = await mint_ws_token(session, principal=principal, ttl=ttl)
    await session.commit()
    return WsTokenOut(token=token, expires_at=expires.isoformat())
