"""Users, workspaces and credentials."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.tokens import hash_token, new_api_token, token_prefix
from schemas.auth import Principal, Role
from store.models import ApiKey, AuthSession, User, Workspace, WorkspaceMember
from store.types import utcnow
from store.workspaces import personal_workspace

LOCAL_ADMIN_EXTERNAL_ID = "local-admin"
# A browser session lives a week past its last use, and never beyond a month.
SESSION_SLIDING = timedelta(days=7)
SESSION_ABSOLUTE = timedelta(days=30)
# Extend at most once an hour: a write on every request would serialise SQLite.
SESSION_REFRESH_AFTER = timedelta(hours=1)


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


async def create_api_token(
    session: AsyncSession, *, user_id: str, name: str, expires_at: datetime | None = None
) -> str:
    token, _ = await create_api_key(session, user_id=user_id, name=name, expires_at=expires_at)
    return token


async def create_api_key(
    session: AsyncSession, *, user_id: str, name: str, expires_at: datetime | None = None
) -> tuple[str, ApiKey]:
    """A new personal access token: the raw value is returned once, only its hash is kept."""
    token = new_api_token()
    key = ApiKey(
        user_id=user_id,
        name=name,
        prefix=token_prefix(token),
        hashed_key=hash_token(token),
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    return token, key


async def list_api_keys(session: AsyncSession, *, user_id: str) -> list[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at)
    return list((await session.execute(stmt)).scalars())


async def revoke_api_key(session: AsyncSession, *, user_id: str, key_id: str) -> bool:
    """False when the key is not the caller's (the route answers 404 either way)."""
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(getattr(result, "rowcount", 0))


async def create_session(session: AsyncSession, *, user_id: str) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        AuthSession(
            user_id=user_id, token_hash=hash_token(token), expires_at=utcnow() + SESSION_SLIDING
        )
    )
    await session.flush()
    return token


async def revoke_session(session: AsyncSession, *, token: str) -> bool:
    result = await session.execute(
        delete(AuthSession).where(AuthSession.token_hash == hash_token(token))
    )
    return bool(getattr(result, "rowcount", 0))


async def upsert_oauth_user(
    session: AsyncSession,
    *,
    provider: str,
    external_id: str,
    email: str | None,
    display_name: str,
    avatar_url: str | None,
) -> User:
    """Find or create the user behind an identity; a new user gets a workspace of their own."""
    user = (
        await session.execute(
            select(User).where(User.provider == provider, User.external_id == external_id)
        )
    ).scalar_one_or_none()
    now = utcnow()
    if user is None:
        user = User(provider=provider, external_id=external_id, display_name=display_name)
        session.add(user)
        await session.flush()
        await personal_workspace(session, user=user)
    user.email = email
    user.display_name = display_name
    user.avatar_url = avatar_url
    user.last_login_at = now
    await session.flush()
    return user


async def local_admin_id(session: AsyncSession) -> str | None:
    return (
        await session.execute(
            select(User.id).where(
                User.provider == "local", User.external_id == LOCAL_ADMIN_EXTERNAL_ID
            )
        )
    ).scalar_one_or_none()


LAST_USED_RESOLUTION = timedelta(minutes=1)


def _stale(last_used_at: datetime | None, now: datetime) -> bool:
    if last_used_at is None:
        return True
    return now - last_used_at >= LAST_USED_RESOLUTION


async def resolve_credential(
    session: AsyncSession, *, token: str, requested_workspace_id: str | None
) -> Principal | None:
    """Map a raw token (PAT or session) to a principal, or None when it is not valid."""
    found = await resolve_credential_until(
        session, digest=hash_token(token), requested_workspace_id=requested_workspace_id
    )
    return found[0] if found else None


async def resolve_credential_until(
    session: AsyncSession, *, digest: str, requested_workspace_id: str | None
) -> tuple[Principal, datetime | None] | None:
    """The principal of a token (by its hash) and when the credential expires (None:
    never), or None when it is not valid. A key, then a session: one query each, then
    the user and the membership."""
    now = utcnow()
    key = (
        await session.execute(
            select(ApiKey.user_id, ApiKey.last_used_at, ApiKey.expires_at).where(
                ApiKey.hashed_key == digest,
                ApiKey.revoked_at.is_(None),
                (ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > now),
            )
        )
    ).one_or_none()
    expires_at: datetime | None = None
    if key is not None:
        user_id: str | None = key.user_id
        expires_at = key.expires_at
    else:
        found = await _session_user(session, digest=digest, now=now)
        if found is None:
            return None
        user_id, expires_at = found
    user = (
        await session.execute(
            select(User.id, User.display_name, User.default_workspace_id).where(User.id == user_id)
        )
    ).one_or_none()
    if user is None:
        return None
    membership = await _membership(
        session,
        user_id=user.id,
        default=user.default_workspace_id,
        requested=requested_workspace_id,
    )
    if membership is None:
        return None
    workspace_id, role = membership
    if key is not None and _stale(key.last_used_at, now):
        # Last, and at most once a minute per key: every request writing it would make
        # all API calls queue for SQLite's single writer.
        await session.execute(
            update(ApiKey).where(ApiKey.hashed_key == digest).values(last_used_at=now)
        )
    principal = Principal(
        user_id=user.id, workspace_id=workspace_id, role=role, display_name=user.display_name
    )
    return principal, expires_at


async def _session_user(
    session: AsyncSession, *, digest: str, now: datetime
) -> tuple[str, datetime] | None:
    row = (
        await session.execute(
            select(AuthSession).where(
                AuthSession.token_hash == digest, AuthSession.expires_at > now
            )
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    extended = min(now + SESSION_SLIDING, row.created_at + SESSION_ABSOLUTE)
    if extended - row.expires_at > SESSION_REFRESH_AFTER:
        row.expires_at = extended
    return row.user_id, row.expires_at


async def _membership(
    session: AsyncSession, *, user_id: str, default: str | None, requested: str | None
) -> tuple[str, Role] | None:
    # A workspace the user is not a member of silently falls back to the default (reference).
    for candidate in (requested, default):
        if not candidate:
            continue
        role = (
            await session.execute(
                select(WorkspaceMember.role).where(
                    WorkspaceMember.workspace_id == candidate,
                    WorkspaceMember.user_id == user_id,
                )
            )
        ).scalar_one_or_none()
        if role is not None:
            return candidate, role  # type: ignore[return-value]
    first = (
        await session.execute(
            select(WorkspaceMember.workspace_id, WorkspaceMember.role)
            .where(WorkspaceMember.user_id == user_id)
            .order_by(WorkspaceMember.created_at)
            .limit(1)
        )
    ).first()
    return (first[0], first[1]) if first else None  # type: ignore[return-value]


async def count_users(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(User))).scalar_one())
