"""Who holds a local repository: the workspace that connected it, else the one using it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ForbiddenError
from core.local_repos import LOCAL_PREFIX, check_local_path
from core.settings import Settings
from store.blueprints import TaskConfig
from store.models import Repo, Task


async def check_repo_use(
    session: AsyncSession, *, settings: Settings, workspace_id: str, repo_url: str
) -> None:
    """Refuse a canonical local `repo_url` outside the roots or claimed by another workspace."""
    if not repo_url.startswith(LOCAL_PREFIX):
        return
    await asyncio.to_thread(check_local_path, Path(repo_url[len(LOCAL_PREFIX) :]), settings)
    if await claimed_elsewhere(session, workspace_id=workspace_id, repo_url=repo_url):
        raise ForbiddenError(
            f"The local repository {repo_url} belongs to another workspace; "
            "connect a repository of your own"
        )


async def repo_to_use(session: AsyncSession, *, workspace_id: str, repo_url: str) -> Repo | None:
    """The database half of `check_repo_use` (the caller checks a local path with
    `check_local_path`), and this workspace's connected repository for the canonical
    `repo_url` (None when it connected none): for a local repository already connected
    here, one query answers both (`POST /api/tasks` made three)."""
    if not repo_url.startswith(LOCAL_PREFIX):
        mine = select(Repo).where(Repo.repo_url == repo_url, Repo.workspace_id == workspace_id)
        return (await session.execute(mine)).scalar_one_or_none()
    rows = (await session.execute(select(Repo).where(Repo.repo_url == repo_url))).scalars().all()
    repo = next((r for r in rows if r.workspace_id == workspace_id), None)
    # As `claimed_elsewhere`: connected here, only another connection counts against it.
    other = any(r.workspace_id != workspace_id for r in rows)
    if not other and repo is None:
        for model in (TaskConfig, Task):
            if await _other(session, model, workspace_id=workspace_id, repo_url=repo_url):
                other = True
                break
    if other:
        raise ForbiddenError(
            f"The local repository {repo_url} belongs to another workspace; "
            "connect a repository of your own"
        )
    return repo


async def claimed_elsewhere(session: AsyncSession, *, workspace_id: str, repo_url: str) -> bool:
    """True when another workspace connected `repo_url`, or (unless this workspace did)
    has tasks or blueprints on it: a local repository has one workspace."""
    mine = select(Repo.id).where(Repo.repo_url == repo_url, Repo.workspace_id == workspace_id)
    if (await session.execute(mine.limit(1))).first() is not None:
        return await _other(session, Repo, workspace_id=workspace_id, repo_url=repo_url)
    for model in (Repo, TaskConfig, Task):
        if await _other(session, model, workspace_id=workspace_id, repo_url=repo_url):
            return True
    return False


async def _other(
    session: AsyncSession,
    model: type[Repo] | type[TaskConfig] | type[Task],
    *,
    workspace_id: str,
    repo_url: str,
) -> bool:
    stmt = select(model.id).where(model.repo_url == repo_url, model.workspace_id != workspace_id)
    return (await session.execute(stmt.limit(1))).first() is not None
