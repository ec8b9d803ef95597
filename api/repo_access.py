"""Which repositories a workspace may name (docs/configuration.md, "Local repositories").

A remote URL is the forge's business: its own credentials decide who reads it. A local
repository is a path on this machine, so Optio decides: it must lie under one of
`OPTIO_LOCAL_REPO_ROOTS`, never inside the data dir (mirrors, worktrees, run dirs, the
database), and it belongs to the first workspace that connects or uses it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from api.repo_urls import canonical_repo_url, canonical_repo_url_blocking
from core.local_repos import LOCAL_PREFIX, check_local_path
from core.settings import Settings
from store.models import Repo
from store.repo_claims import check_repo_use, repo_to_use

__all__ = ["check_repo_use", "usable_repo", "usable_repo_url"]


async def usable_repo_url(
    session: AsyncSession, *, settings: Settings, workspace_id: str, value: str
) -> str:
    """The canonical URL of `value`, refused unless this workspace may work on it."""
    repo_url = await canonical_repo_url(value)
    await check_repo_use(session, settings=settings, workspace_id=workspace_id, repo_url=repo_url)
    return repo_url


async def usable_repo(
    session: AsyncSession, *, settings: Settings, workspace_id: str, value: str
) -> tuple[str, Repo | None]:
    """`usable_repo_url`, and the workspace's connected repository for it, if any."""
    # The file system's part in one thread round trip (`POST /api/tasks` made two).
    repo_url = await asyncio.to_thread(_canonical_and_allowed, value, settings)
    repo = await repo_to_use(session, workspace_id=workspace_id, repo_url=repo_url)
    return repo_url, repo


def _canonical_and_allowed(value: str, settings: Settings) -> str:
    repo_url = canonical_repo_url_blocking(value)
    if repo_url.startswith(LOCAL_PREFIX):
        check_local_path(Path(repo_url[len(LOCAL_PREFIX) :]), settings)
    return repo_url
