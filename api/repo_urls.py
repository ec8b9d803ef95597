"""Validation and canonical form of `repoUrl`."""

from __future__ import annotations

import asyncio

from core.errors import InvalidInputError
from integrations.git import is_git_url, resolve_local_repo


async def canonical_repo_url(value: str, *, field: str = "repoUrl") -> str:
    """A local repository becomes `file://<absolute path>`; a git URL stays as given.

    `field` names the request field the value came from, for the 400."""
    # In a thread: the file system (and maybe `git rev-parse`) answers for a local path.
    return await asyncio.to_thread(canonical_repo_url_blocking, value, field=field)


def canonical_repo_url_blocking(value: str, *, field: str = "repoUrl") -> str:
    """`canonical_repo_url`, on the calling thread."""
    value = value.strip()
    local = resolve_local_repo(value)
    if local is not None:
        return f"file://{local.resolve()}"
    if is_git_url(value) and not value.startswith("file://"):
        return value.rstrip("/")
    raise InvalidInputError(
        f"Invalid fields: {field}",
        details=[
            {
                "field": field,
                "message": "must be a git URL (https://, ssh://, git@host:owner/repo) "
                "or the path of an existing git repository",
            }
        ],
    )


def full_name_of(repo_url: str) -> str:
    path = repo_url.split("://", 1)[-1].split(":", 1)[-1].rstrip("/")
    if path.endswith(".git"):
        path = path[:-4]
    parts = [p for p in path.split("/") if p]
    return "/".join(parts[-2:]) if parts else repo_url
