"""Workspaces and their members; the last admin of a workspace cannot be removed."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ConflictError, NotFoundError
from store.changes import apply_changes
from store.models import User, Workspace, WorkspaceMember


async def list_workspaces(session: AsyncSession, *, user_id: str) -> list[tuple[Workspace, str]]:
    stmt = (
        select(Workspace, WorkspaceMember.role)
        .join(WorkspaceMember, WorkspaceMember.workspace_id == Workspace.id)
        .where(WorkspaceMember.user_id == user_id)
        .order_by(Workspace.created_at)
    )
    return [(ws, role) for ws, role in (await session.execute(stmt)).all()]


async def create_workspace(
    session: AsyncSession, *, user_id: str, name: str, slug: str, description: str | None
) -> Workspace:
    """The creator becomes its admin."""
    if await _slug_taken(session, slug):
        raise ConflictError(f"Workspace slug {slug!r} is taken")
    workspace = Workspace(name=name, slug=slug, description=description, created_by=user_id)
    session.add(workspace)
    await session.flush()
    session.add(WorkspaceMember(workspace_id=workspace.id, user_id=user_id, role="admin"))
    await session.flush()
    return workspace


async def update_workspace(
    session: AsyncSession, *, workspace_id: str, values: dict[str, object]
) -> Workspace:
    workspace = await session.get(Workspace, workspace_id)
    if workspace is None:
        raise NotFoundError("Workspace not found")
    slug = values.get("slug")
    if isinstance(slug, str) and slug != workspace.slug and await _slug_taken(session, slug):
        raise ConflictError(f"Workspace slug {slug!r} is taken")
    apply_changes(workspace, dict(values))
    await session.flush()
    return workspace


async def personal_workspace(session: AsyncSession, *, user: User) -> Workspace:
    """A first sign-in gets a workspace of one's own (as the reference does)."""
    workspace = await create_workspace(
        session, user_id=user.id, name="Default", slug=f"ws-{user.id[:8]}", description=None
    )
    user.default_workspace_id = workspace.id
    return workspace


async def list_members(
    session: AsyncSession, *, workspace_id: str
) -> list[tuple[WorkspaceMember, User]]:
    stmt = (
        select(WorkspaceMember, User)
        .join(User, User.id == WorkspaceMember.user_id)
        .where(WorkspaceMember.workspace_id == workspace_id)
        .order_by(WorkspaceMember.created_at)
    )
    return [(m, u) for m, u in (await session.execute(stmt)).all()]


async def add_member(
    session: AsyncSession, *, workspace_id: str, user_id: str, role: str
) -> WorkspaceMember:
    if await session.get(User, user_id) is None:
        raise NotFoundError("User not found")
    if await _member(session, workspace_id=workspace_id, user_id=user_id) is not None:
        raise ConflictError("User is already a member of this workspace")
    member = WorkspaceMember(workspace_id=workspace_id, user_id=user_id, role=role)
    session.add(member)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent add of the same user
        raise ConflictError("User is already a member of this workspace") from exc
    return member


async def change_role(
    session: AsyncSession, *, workspace_id: str, user_id: str, role: str
) -> WorkspaceMember:
    member = await _existing(session, workspace_id=workspace_id, user_id=user_id)
    if member.role == "admin" and role != "admin":
        await _keep_an_admin(session, workspace_id=workspace_id)
    member.role = role
    await session.flush()
    return member


async def remove_member(session: AsyncSession, *, workspace_id: str, user_id: str) -> None:
    member = await _existing(session, workspace_id=workspace_id, user_id=user_id)
    if member.role == "admin":
        await _keep_an_admin(session, workspace_id=workspace_id)
    await session.delete(member)
    await session.flush()


async def _keep_an_admin(session: AsyncSession, *, workspace_id: str) -> None:
    # Locked, so two admins demoting each other at once cannot both succeed (PostgreSQL).
    admins = (
        await session.execute(
            select(WorkspaceMember.id)
            .where(WorkspaceMember.workspace_id == workspace_id, WorkspaceMember.role == "admin")
            .with_for_update()
        )
    ).all()
    if len(admins) <= 1:
        raise ConflictError("A workspace must keep at least one admin")


async def _existing(session: AsyncSession, *, workspace_id: str, user_id: str) -> WorkspaceMember:
    member = await _member(session, workspace_id=workspace_id, user_id=user_id)
    if member is None:
        raise NotFoundError("Member not found")
    return member


async def _member(
    session: AsyncSession, *, workspace_id: str, user_id: str
) -> WorkspaceMember | None:
    stmt = select(WorkspaceMember).where(
        WorkspaceMember.workspace_id == workspace_id, WorkspaceMember.user_id == user_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def _slug_taken(session: AsyncSession, slug: str) -> bool:
    stmt = select(func.count()).select_from(Workspace).where(Workspace.slug == slug)
    return bool((await session.execute(stmt)).scalar_one())
