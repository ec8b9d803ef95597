"""Single-use WebSocket tokens (inventory §3.19, `POST /api/auth/ws-token`).

A browser cannot set headers on a WebSocket, and a long-lived credential in a
subprotocol may end up in logs: a page asks for a token good for one connection and a
minute, and offers it as `optio-auth-<token>`. Only its hash is stored; redeeming it
marks it used in the same statement, so two connections can never share it.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.tokens import hash_token
from schemas.auth import Principal
from store.models import User, WorkspaceMember
from store.sessions import WsToken
from store.types import utcnow

WS_TOKEN_PREFIX = "optio_ws_"


def is_ws_token(token: str) -> bool:
    return token.startswith(WS_TOKEN_PREFIX)


async def mint_ws_token(
    session: AsyncSession, *, principal: Principal, ttl: timedelta
) -> tuple[str, datetime]:
    now = utcnow()
    # Expired ones go as new ones are made: the table stays the size of a minute's use.
    await session.execute(delete(WsToken).where(WsToken.expires_at < now))
    token = WS_TOKEN_PREFIX + secrets.token_hex(32)
    expires = now + ttl
    session.add(
        WsToken(token_hash=hash_token(token), user_id=principal.user_id,
                workspace_id=principal.workspace_id, expires_at=expires)
    )  # fmt: skip
    return token, expires


async def redeem_ws_token(session: AsyncSession, *, token: str) -> Principal | None:
    """The principal the token was minted for, once; None if unknown, used or expired."""
    now = utcnow()
    digest = hash_token(token)
    used = await session.execute(
        update(WsToken)
        .where(WsToken.token_hash == digest, WsToken.used_at.is_(None), WsToken.expires_at > now)
        .values(used_at=now)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        return None
    row = await session.get(WsToken, digest)
    if row is None:
        return None
    member = (
        await session.execute(
            select(WorkspaceMember.role, User.display_name)
            .join(User, User.id == WorkspaceMember.user_id)
            .where(
                WorkspaceMember.user_id == row.user_id,
                WorkspaceMember.workspace_id == row.workspace_id,
            )
        )
    ).one_or_none()
    if member is None:  # no longer a member of the workspace it was minted in
        return None
    return Principal.model_validate(
        {"user_id": row.user_id, "workspace_id": row.workspace_id, "role": member.role,
         "display_name": member.display_name}
    )  # fmt: skip
