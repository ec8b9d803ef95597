"""Users, workspaces and credentials."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.tokens import hash_token, new_api_token, token_prefix
from schemas.auth import Principal, Role
from store.models import ApiKey, AuthSession, User, Workspace, WorkspaceMember
from store.types import utcnow

LOCAL_ADMIN_EXTERNAL_ID = "local-admin"


@dataclass(frozen=True)
class Bootstrap:
    created: bool
    user_id: str
    workspace_id: str
    token: str | None


async def bootstrap_local_admin(session: AsyncSession) -> Bootstrap:
    """On first start: workspace "Default", a local admin and one API token (shown once)."""
    existing = (
        await session.execute(
            select(User).where(
                User.provider == "local", User.external_id == LOCAL_ADMIN_EXTERNAL_ID
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        return Bootstrap(
            created=False,
            user_id=existing.id,
            workspace_id=existing.default_workspace_id or "",
            token=None,
        )
    workspace = Workspace(name="Default", slug="default", description="Created on first start")
    session.add(workspace)
    await session.flush()
    user = User(
        provider="local",
        external_id=LOCAL_ADMIN_EXTERNAL_ID,
        display_name="Local admin",
        default_workspace_id=workspace.id,
    )
    session.add(user)
    await session.flush()
    workspace.created_by = user.id
    session.add(WorkspaceMember(workspace_id=workspace.id, user_id=user.id, role="admin"))
    token = await create_api_token(session, user_id=user.id, name="optio up (first start)")
    return Bootstrap(created=True, user_id=user.id, workspace_id=workspace.id, token=token)


async def create_api_token(session: AsyncSession, *, user_id: str, name: str) -> str:
    token = new_api_token()
    session.add(
        ApiKey(user_id=user_id, name=name, prefix=token_prefix(token), hashed_key=hash_token(token))
    )
    await session.flush()
    return token


async def local_admin_id(session: AsyncSession) -> str | None:
    return (
        await session.execute(
            select(User.id).where(
                User.provider == "local", User.external_id == LOCAL_ADMIN_EXTERNAL_ID
            )
        )
    ).scalar_one_or_none()


async def resolve_credential(
    session: AsyncSession, *, token: str, requested_workspace_id: str | None
) -> Principal | None:
    """Map a raw token (PAT or session) to a principal, or None when it is not valid."""
    digest = hash_token(token)
    now = utcnow()
    user_id = (
        await session.execute(
            select(ApiKey.user_id).where(
                ApiKey.hashed_key == digest,
                ApiKey.revoked_at.is_(None),
                (ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > now),
            )
        )
    ).scalar_one_or_none()
    if user_id is not None:
        await session.execute(
            update(ApiKey).where(ApiKey.hashed_key == digest).values(last_used_at=now)
        )
    else:
        user_id = (
            await session.execute(
                select(AuthSession.user_id).where(
                    AuthSession.token_hash == digest, AuthSession.expires_at > now
                )
            )
        ).scalar_one_or_none()
    if user_id is None:
        return None
    user = await session.get(User, user_id)
    if user is None:
        return None
    membership = await _membership(session, user=user, requested=requested_workspace_id)
    if membership is None:
        return None
    workspace_id, role = membership
    return Principal(
        user_id=user.id, workspace_id=workspace_id, role=role, display_name=user.display_name
    )


async def _membership(
    session: AsyncSession, *, user: User, requested: str | None
) -> tuple[str, Role] | None:
    # A workspace the user is not a member of silently falls back to the default (reference).
    for candidate in (requested, user.default_workspace_id):
        if not candidate:
            continue
        role = (
            await session.execute(
                select(WorkspaceMember.role).where(
                    WorkspaceMember.workspace_id == candidate,
                    WorkspaceMember.user_id == user.id,
                )
            )
        ).scalar_one_or_none()
        if role is not None:
            return candidate, role  # type: ignore[return-value]
    first = (
        await session.execute(
            select(WorkspaceMember.workspace_id, WorkspaceMember.role)
            .where(WorkspaceMember.user_id == user.id)
            .order_by(WorkspaceMember.created_at)
            .limit(1)
        )
    ).first()
    return (first[0], first[1]) if first else None  # type: ignore[return-value]


async def count_users(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(User))).scalar_one())
