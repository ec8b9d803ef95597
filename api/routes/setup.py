"""The setup wizard's state (inventory §3.24): which credentials exist, never their values.

`POST /api/setup/complete` is open to anonymous callers only until setup is complete;
afterwards it needs a workspace admin, like every other setup write.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep, StateDep, get_principal
from core.settings import Settings
from schemas.setup import SetupCompleted, SetupStatusPublic
from store.secrets import Secret, secret_names
from store.setup import mark_setup_completed, setup_completed_at

router = APIRouter(tags=["Setup & Settings"])

# agent -> (secret name, settings field) pairs any one of which lets it run.
AGENT_CREDENTIALS: dict[str, tuple[tuple[str, str], ...]] = {
    "claude-code": (
        ("ANTHROPIC_API_KEY", "anthropic_api_key"),
        ("CLAUDE_CODE_OAUTH_TOKEN", "claude_code_oauth_token"),
    ),
    "codex": (("OPENAI_API_KEY", "openai_api_key"),),
    "gemini": (("GEMINI_API_KEY", "gemini_api_key"),),
    "copilot": (
        ("COPILOT_GITHUB_TOKEN", "copilot_github_token"),
        ("COPILOT_PROVIDER_API_KEY", "copilot_provider_api_key"),
    ),
}
GIT_CREDENTIALS = ("GITHUB_TOKEN", "GITLAB_TOKEN")
ALL_NAMES = {n for pairs in AGENT_CREDENTIALS.values() for n, _ in pairs} | set(GIT_CREDENTIALS)


async def workspace_secret_names(session: AsyncSession, *, workspace_id: str) -> set[str]:
    stmt = select(Secret.name).where(
        Secret.workspace_id == workspace_id, Secret.name.in_(ALL_NAMES)
    )
    return set((await session.execute(stmt)).scalars())


def agent_credentials(settings: Settings, names: set[str]) -> dict[str, dict[str, Any]]:
    """Per agent: whether a credential is configured and where (a secret or the settings)."""
    state: dict[str, dict[str, Any]] = {}
    for agent, pairs in AGENT_CREDENTIALS.items():
        source = None
        for secret_name, field in pairs:
            if secret_name in names:
                source = "secret"
                break
            if getattr(settings, field, None) is not None:
                source = "settings"
                break
        state[agent] = {"configured": source is not None, "source": source}
    return state


async def setup_state(session: AsyncSession, settings: Settings) -> dict[str, Any]:
    names = await secret_names(session, names=ALL_NAMES)
    agents = agent_credentials(settings, names)
    git_done = bool(names & set(GIT_CREDENTIALS))
    any_agent = any(a["configured"] for a in agents.values())
    completed_at = await setup_completed_at(session)
    return {
        "isSetUp": completed_at is not None or (git_done and any_agent),
        "completedAt": completed_at,
        "steps": {
            "gitToken": {
                "done": git_done,
                "label": "Git credential (GITHUB_TOKEN or GITLAB_TOKEN)",
            },
            "anyAgentKey": {"done": any_agent, "label": "At least one agent credential"},
            **{
                agent: {"done": a["configured"], "label": f"{agent} credential"}
                for agent, a in agents.items()
            },
        },
    }


@router.get("/api/setup/status", response_model=SetupStatusPublic)
async def status(session: SessionDep, state: StateDep) -> dict[str, Any]:
    return await setup_state(session, state.settings)


@router.post("/api/setup/complete", response_model=SetupCompleted)
async def complete(request: Request, session: SessionDep, state: StateDep) -> dict[str, Any]:
    current = await setup_state(session, state.settings)
    if current["isSetUp"]:
        # Closed to anonymous writes from now on: an admin credential is required.
        await get_principal(request)
    completed_at = await mark_setup_completed(session)
    await session.commit()
    return {"ok": True, "completedAt": completed_at}
