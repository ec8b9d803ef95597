"""Which forge client serves a task's repository, with which credential."""

from __future__ import annotations

from datetime import timedelta

import httpx

from integrations.forges.base import EtagCache, Forge, RepoRef
from integrations.forges.github import GitHubForge
from integrations.forges.gitlab import GitLabForge
from store.forge_credentials import TOKEN_NAMES, forge_token
from store.models import Repo
from store.types import utcnow

WEBHOOKS_FRESH = timedelta(hours=24)


def is_remote(repo: Repo | None) -> bool:
    return repo is not None and repo.git_platform in TOKEN_NAMES


def webhooks_active(repo: Repo) -> bool:
    seen = repo.webhook_seen_at
    return seen is not None and utcnow() - seen < WEBHOOKS_FRESH


def build_forge(
    *,
    repo: Repo,
    token: str | None,
    cache: EtagCache,
    transport: httpx.AsyncBaseTransport | None = None,
) -> GitHubForge | GitLabForge:
    ref = RepoRef.parse(repo.repo_url)
    if repo.git_platform == "gitlab":
        return GitLabForge(
            ref=ref, token=token, cache=cache, api_url=repo.forge_api_url, transport=transport
        )
    return GitHubForge(
        ref=ref, token=token, cache=cache, api_url=repo.forge_api_url, transport=transport
    )


__all__ = ["Forge", "build_forge", "forge_token", "is_remote", "webhooks_active"]
