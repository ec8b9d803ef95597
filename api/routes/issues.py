"""Issues: GitHub/GitLab issues of the workspace's repositories plus the tickets of its
other providers, with the Optio task each became (inventory §3.18); assigning one to Optio.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import CurrentPrincipal, SessionDep, StateDep
from api.routes.tasks import public as task_public
from core.errors import InvalidInputError, NotFoundError, ServiceUnavailableError
from core.settings import Settings
from core.tickets import build_prompt, repo_path, started_comment
from integrations.tickets import (
    ClientOptions,
    Ticket,
    TicketAuthError,
    TicketError,
    build_client,
    forge_api_url,
    forge_client,
)
from integrations.tickets.forges import GitHubTickets, GitLabTickets
from schemas.task_views import RepoTaskEnvelope
from schemas.tickets import IssueAssign, IssuesPublic
from store.forge_credentials import TOKEN_NAMES, forge_token
from store.models import Repo, Task
from store.scoping import get_scoped, scoped_select
from store.tickets import (
    TicketLink,
    find_link,
    linked_tasks,
    list_providers,
    new_ticket_task,
    provider_access,
)
from store.types import utcnow

router = APIRouter(tags=["Tickets"])
log = logging.getLogger(__name__)
OPTIO_LABEL = "optio"
NON_GIT = ("jira", "linear", "notion")
FORGE_STATES = {
    "github": {"open": "open", "closed": "closed", "all": "all"},
    "gitlab": {"open": "opened", "closed": "closed", "all": "all"},
}


def _options(settings: Settings) -> ClientOptions:
    # An API request waits out no long rate limit: it reports the provider instead.
    return ClientOptions(
        max_wait=min(settings.ticket_max_retry_after_seconds, 5.0),
        github_api_url=settings.github_api_url,
        linear_api_url=settings.linear_api_url,
        notion_api_url=settings.notion_api_url,
    )


async def _repo_client(
    session: AsyncSession, settings: Settings, repo: Repo
) -> GitHubTickets | GitLabTickets | None:
    token = await forge_token(
        session,
        settings=settings,
        platform=repo.git_platform,
        workspace_id=repo.workspace_id,
        repo_url=repo.repo_url,
        user_id=None,
    )
    if not token:
        return None
    return forge_client(
        repo.git_platform,
        api_url=forge_api_url(repo.git_platform, repo.repo_url, repo.forge_api_url),
        token=token,
        options=_options(settings),
    )


def _issue(
    ticket: Ticket,
    *,
    repo: Repo | None,
    provider_id: str | None,
    link: tuple[TicketLink, Task] | None,
) -> dict[str, Any]:
    return {
        "id": f"{ticket.source}:{ticket.external_id}",
        "number": ticket.number,
        "externalId": ticket.external_id,
        "source": ticket.source,
        "title": ticket.title,
        "body": ticket.body,
        "state": ticket.state,
        "url": ticket.url,
        "labels": ticket.labels,
        "hasOptioLabel": any(label.lower() == OPTIO_LABEL for label in ticket.labels),
        "author": ticket.author,
        "assignee": ticket.assignee,
        "repo": {
            "id": repo.id if repo else None,
            "fullName": repo.full_name if repo else None,
            "repoUrl": repo.repo_url if repo else None,
            "providerId": provider_id,
        },
        "createdAt": ticket.created_at,
        "updatedAt": ticket.updated_at,
        "optioTask": {"taskId": link[1].id, "state": link[1].state} if link else None,
    }


@router.get("/api/issues", response_model=IssuesPublic)
async def list_issues(
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
    repo_id: Annotated[str | None, Query(alias="repoId")] = None,
    issue_state: Annotated[Literal["open", "closed", "all"], Query(alias="state")] = "open",
) -> dict[str, Any]:
    """Live from each forge and provider; one that fails is reported, not fatal."""
    settings = state.settings
    if repo_id is not None:
        repos = [
            await get_scoped(
                session, Repo, row_id=repo_id, workspace_id=principal.workspace_id, label="Repo"
            )
        ]
    else:
        stmt = scoped_select(Repo, workspace_id=principal.workspace_id).order_by(Repo.created_at)
        repos = list((await session.execute(stmt)).scalars())
    repos = [r for r in repos if r.git_platform in TOKEN_NAMES]
    links = await linked_tasks(session, workspace_id=principal.workspace_id)
    jobs: list[tuple[str, Any]] = []
    for repo in repos:
        client = await _repo_client(session, settings, repo)
        path = repo_path(repo.repo_url)
        if client is None or path is None:
            jobs.append((repo.full_name, None))
            continue
        wanted = FORGE_STATES[repo.git_platform][issue_state]
        jobs.append(
            (
                repo.full_name,
                (
                    client,
                    client.issues(path, state=wanted, label=None, with_comments=False),
                    repo,
                    None,
                ),
            )
        )
    if repo_id is None:
        for provider in await list_providers(session, workspace_id=principal.workspace_id):
            if provider.source not in NON_GIT or not provider.enabled:
                continue
            access = await provider_access(session, settings=settings, provider=provider)
            other = build_client(access.source, access.config, access.secrets, _options(settings))
            jobs.append(
                (provider.name or provider.source, (other, other.actionable(), None, provider))
            )
    await session.close()  # forge calls take a while: hold no connection meanwhile

    async def run(job: Any) -> tuple[list[Ticket], str | None]:
        client, call, _, _ = job
        try:
            return await call, None
        except TicketAuthError:
            return [], "the provider refused the credentials"
        except TicketError as exc:
            return [], str(exc)
        finally:
            await client.http.aclose()

    issues: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    outcomes = await asyncio.gather(*(run(job) for _, job in jobs if job is not None))
    done = iter(outcomes)
    for name, job in jobs:
        if job is None:
            errors.append({"source": name, "error": "no forge token for this repository"})
            continue
        tickets, error = next(done)
        if error:
            errors.append({"source": name, "error": error})
        _, _, repo, provider = job
        for ticket in tickets:
            link = links.get((ticket.source, ticket.external_id))
            issues.append(
                _issue(ticket, repo=repo, provider_id=provider.id if provider else None, link=link)
            )
    return {"issues": issues, "errors": errors}


@router.post(
    "/api/issues/assign",
    status_code=201,
    response_model=RepoTaskEnvelope,
    responses={200: {"model": RepoTaskEnvelope, "description": "The issue's task already"}},
)
async def assign(
    body: IssueAssign,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
    response: Response,
) -> dict[str, Any]:
    """Label the issue, make it a task (queued by `issue_assigned`) and say so on it."""
    repo = await get_scoped(
        session, Repo, row_id=body.repo_id, workspace_id=principal.workspace_id, label="Repo"
    )
    path = repo_path(repo.repo_url)
    if repo.git_platform not in TOKEN_NAMES or path is None:
        raise InvalidInputError("Only GitHub and GitLab repositories have issues to assign")
    external_id = f"{path}#{body.issue_number}"
    existing = await _linked(session, principal.workspace_id, repo, external_id)
    if existing is not None:
        response.status_code = 200
        return {"task": task_public(existing)}
    client = await _repo_client(session, state.settings, repo)
    if client is None:
        raise ServiceUnavailableError(
            f"No {TOKEN_NAMES[repo.git_platform]} for this repository: add one as a secret"
        )
    try:
        try:
            ticket = await client.get(external_id)
        except TicketError as exc:
            if exc.status == 404:
                raise NotFoundError(f"Issue #{body.issue_number} not found") from exc
            raise
        await client.add_label(external_id, OPTIO_LABEL)
        title = body.title or ticket.title
        task = new_ticket_task(
            workspace_id=principal.workspace_id,
            source=repo.git_platform,
            external_id=external_id,
            title=title,
            prompt=build_prompt(title, body.body or ticket.body, ticket.comments),
            url=ticket.url,
            labels=[*ticket.labels, OPTIO_LABEL],
            repo_url=repo.repo_url,
            repo=repo,
            provider_id=None,
            created_by=principal.user_id,
            queue_trigger="issue_assigned",
            agent_type=body.agent_type,
            extra={"issueUrl": ticket.url, "issueNumber": body.issue_number},
        )
        session.add(task)
        await session.flush()
        link = TicketLink(
            workspace_id=principal.workspace_id,
            source=repo.git_platform,
            external_id=external_id,
            repo_url=repo.repo_url,
            task_id=task.id,
            url=ticket.url,
            title=title[:1000],
        )
        session.add(link)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()  # a concurrent assign of the same issue won
            again = await _linked(session, principal.workspace_id, repo, external_id)
            if again is None:
                raise
            response.status_code = 200
            return {"task": task_public(again)}
        state.starts.request(task)
        try:
            await client.comment(
                external_id,
                body=started_comment(task_id=task.id, agent=task.agent_type),
                key=f"task-{task.id}-start",
            )
            link.started_comment_at = utcnow()
            await session.commit()
        except TicketError as exc:
            log.warning("could not confirm on issue %s: %s", external_id, exc)
    except TicketAuthError as exc:
        raise ServiceUnavailableError(
            f"{repo.git_platform} refused the token of this repository"
        ) from exc
    except TicketError as exc:
        raise ServiceUnavailableError(f"{repo.git_platform} answered: {exc}") from exc
    finally:
        await client.http.aclose()
    return {"task": task_public(task)}


async def _linked(
    session: AsyncSession, workspace_id: str, repo: Repo, external_id: str
) -> Task | None:
    found = await find_link(
        session,
        workspace_id=workspace_id,
        source=repo.git_platform,
        external_id=external_id,
        repo_url=repo.repo_url,
    )
    return found[1] if found else None
