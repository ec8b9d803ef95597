"""Which repositories a workspace may name (docs/configuration.md, "Local repositories").

A remote URL is the forge's business: its own credentials decide who reads it. A local
repository is a path on this machine, so Optio decides: it must lie under one of
`OPTIO_LOCAL_REPO_ROOTS`, never inside the data dir (mirrors, worktrees, run dirs, the
database), and it belongs to the first workspace that connects or uses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from api.repo_urls import canonical_repo_url
from core.errors import ForbiddenError, InvalidInputError
from core.settings import Settings
from store.repo_claims import claimed_elsewhere

LOCAL_PREFIX = "file://"


async def usable_repo_url(
    session: AsyncSession, *, settings: Settings, workspace_id: str, value: str
) -> str:
    """The canonical URL of `value`, refused unless this workspace may work on it."""
    repo_url = await canonical_repo_url(value)
    await check_repo_use(session, settings=settings, workspace_id=workspace_id, repo_url=repo_url)
    return repo_url


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


def check_local_path(path: Path, settings: Settings) -> None:
    resolved = path.resolve()
    data_dir = settings.data_dir.resolve()
    if any(_within(p, data_dir) for p in _git_locations(resolved)):
        raise _refused("is inside Optio's data directory, which no task may use")
    roots = [root.expanduser().resolve() for root in settings.local_repo_roots]
    if not any(_within(resolved, root) for root in roots):
        allowed = ", ".join(str(r) for r in roots) or "none"
        raise _refused(
            f"is outside the folders local repositories may live in ({allowed}); "
            "an operator can allow more with OPTIO_LOCAL_REPO_ROOTS"
        )


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _git_locations(repo: Path) -> Iterator[Path]:
    """The repository and every place git would read its objects from: a linked
    worktree's git dir, its common dir and object alternates could all point into the
    data dir (a task worktree, a mirror) from a folder that looks innocent."""
    yield repo
    git_dir = repo / ".git"
    if git_dir.is_file():
        text = _read(git_dir).strip()
        if text.startswith("gitdir:"):
            git_dir = (repo / text.removeprefix("gitdir:").strip()).resolve()
            yield git_dir
    elif not git_dir.is_dir():
        git_dir = repo  # bare
    common = git_dir / "commondir"
    if common.is_file():
        git_dir = (git_dir / _read(common).strip()).resolve()
        yield git_dir
    alternates = git_dir / "objects" / "info" / "alternates"
    if alternates.is_file():
        for line in _read(alternates).splitlines():
            if line.strip() and not line.startswith("#"):
                yield (git_dir / "objects" / line.strip()).resolve()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        # Unreadable to us is unreadable to git run as us: nothing it could point at.
        return ""


def _refused(problem: str) -> InvalidInputError:
    return InvalidInputError(
        f"Invalid fields: repoUrl ({problem})",
        details=[{"field": "repoUrl", "message": problem}],
    )
