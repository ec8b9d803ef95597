"""The one seam for forge credentials: a workspace secret, else the settings' token."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from store.secrets import resolve_secret

TOKEN_NAMES = {"github": "GITHUB_TOKEN", "gitlab": "GITLAB_TOKEN"}


async def forge_token(
    session: AsyncSession,
    *,
    settings: Settings,
    platform: str,
    workspace_id: str,
    repo_url: str,
    user_id: str | None,
) -> str | None:
    """The one seam for forge credentials: the workspace's secret, else the settings' token.

    Call it right before use; the value never goes into a workflow payload, log or error.
    """
    name = TOKEN_NAMES.get(platform)
    if name is None:
        return None
    value = await resolve_secret(
        session,
        workspace_id=workspace_id,
        name=name,
        repo_url=repo_url,
        user_id=user_id,
        settings=settings,
    )
    if value:
        return value
    fallback = settings.github_token if platform == "github" else settings.gitlab_token
    return fallback.get_secret_value() if fallback is not None else None
