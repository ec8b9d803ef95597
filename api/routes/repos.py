"""Connected repositories and the settings the lifecycle reads (inventory §3.10)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Response
from pydantic import TypeAdapter
from sqlalchemy.exc import IntegrityError

from api.deps import CurrentPrincipal, ReadDep, SessionDep, StateDep, require_role
from api.repo_access import usable_repo_url
from api.repo_urls import full_name_of
from core.errors import ConflictError, InvalidInputError
from integrations.agents.models import REPO_MODEL_FIELDS, unknown_model_error
from schemas.repos import RepoCreate, RepoEnvelope, RepoPublic, ReposPublic, RepoUpdate
from store.models import Repo
from store.scoping import get_scoped
from store.tasks import find_repo, list_repos

router = APIRouter(tags=["Repos & Integrations"])
REPO_LIST = TypeAdapter(list[RepoPublic])
ADMIN = require_role("admin")


def check_repo_models(body: RepoCreate | RepoUpdate, agents_bin_dir: Path) -> None:
    """A model the agent's CLI would refuse is refused now, with what it accepts."""
    for agent_type, field in REPO_MODEL_FIELDS.items():
        model = getattr(body, field)
        if model and (error := unknown_model_error(agent_type, model, agents_bin_dir)):
            raise InvalidInputError(error)


def public(repo: Repo) -> dict[str, Any]:
    return RepoPublic.model_validate(repo).model_dump(mode="json", by_alias=True)


def one(repo: Repo) -> RepoEnvelope:
    return RepoEnvelope(repo=RepoPublic.model_validate(repo))


@router.get("/api/repos")
async def list_(principal: CurrentPrincipal, connection: ReadDep) -> ReposPublic:
    rows = await list_repos(connection, workspace_id=principal.workspace_id)
    # One validation call for the list; FastAPI then serialises the model once.
    return ReposPublic(repos=REPO_LIST.validate_python(rows))


@router.post("/api/repos", status_code=201, dependencies=[ADMIN])
async def create(
    body: RepoCreate, principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> RepoEnvelope:
    repo_url = await usable_repo_url(
        session, settings=state.settings, workspace_id=principal.workspace_id, value=body.repo_url
    )
    if await find_repo(session, workspace_id=principal.workspace_id, repo_url=repo_url):
        raise ConflictError(f"Repository {repo_url} is already connected")
    check_repo_models(body, state.settings.agents_bin_dir)
    values = body.model_dump(exclude_unset=True, exclude={"repo_url", "full_name", "git_platform"})
    repo = Repo(
        workspace_id=principal.workspace_id,
        repo_url=repo_url,
        full_name=body.full_name or full_name_of(repo_url),
        git_platform="local"
        if repo_url.startswith("file://")
        else body.git_platform or _platform(repo_url),
        **{k: v for k, v in values.items() if v is not None},
    )
    session.add(repo)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise ConflictError(f"Repository {repo_url} is already connected") from exc
    return one(repo)


def _platform(repo_url: str) -> str:
    return "gitlab" if "gitlab" in repo_url else "github"


@router.get("/api/repos/{repo_id}")
async def read(repo_id: str, principal: CurrentPrincipal, session: SessionDep) -> RepoEnvelope:
    repo = await get_scoped(
        session, Repo, row_id=repo_id, workspace_id=principal.workspace_id, label="Repository"
    )
    return one(repo)


@router.patch("/api/repos/{repo_id}", dependencies=[ADMIN])
async def update(
    repo_id: str,
    body: RepoUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
) -> RepoEnvelope:
    repo = await get_scoped(
        session, Repo, row_id=repo_id, workspace_id=principal.workspace_id, label="Repository"
    )
    nullable = {
        "test_command",
        "max_auto_resumes",
        "stall_threshold_ms",
        "max_turns_coding",
        "review_trigger",
        "review_prompt_template",
        "forge_api_url",
        "max_cost_usd",
        "slack_notify_on",
        *REPO_MODEL_FIELDS.values(),
    }
    check_repo_models(body, state.settings.agents_bin_dir)
    for name, value in body.model_dump(exclude_unset=True).items():
        if value is None and name not in nullable:
            continue
        setattr(repo, name, value)
    await session.commit()
    return one(repo)


@router.delete("/api/repos/{repo_id}", status_code=204, dependencies=[ADMIN])
async def delete(repo_id: str, principal: CurrentPrincipal, session: SessionDep) -> Response:
    repo = await get_scoped(
        session, Repo, row_id=repo_id, workspace_id=principal.workspace_id, label="Repository"
    )
    await session.delete(repo)
    await session.commit()
    return Response(status_code=204)
