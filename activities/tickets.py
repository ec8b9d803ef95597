"""Activities of ticket sync: pull a provider's tickets into tasks, write back on completion.

Idempotent end to end: a `TicketLink` row (unique per workspace, source, external id and
repository) is committed with its task, so a ticket seen by two runs becomes one task;
the task row carries `start_requested_at`, so a start lost to a crash is made again
(here on the next run, or by the API's sweep); comments carry a marker; the ticket
triggers' runs have ids derived from the link.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from core.settings import Settings
from core.states import TaskState
from core.tickets import (
    TicketFacts,
    build_prompt,
    completed_comment,
    resolve_repo,
    started_comment,
    trigger_matches,
    trigger_params,
)
from integrations.tickets import (
    ClientOptions,
    Ticket,
    TicketAuthError,
    TicketClient,
    TicketError,
    build_client,
    forge_api_url,
    forge_client,
)
from schemas.blueprint_runs import BlueprintRunInput
from schemas.tickets import CreatedTicketTask, TicketDoneInput, TicketSyncInput, TicketSyncResult
from store.blueprints import Trigger
from store.db import transaction
from store.forge_credentials import forge_token
from store.models import Repo, Task
from store.tasks import find_repo
from store.tickets import (
    MAX_CONSECUTIVE_FAILURES,
    TicketLink,
    TicketProvider,
    announced_links,
    link_of_task,
    links_for,
    new_ticket_task,
    provider_access,
    ticket_triggers,
)
from store.types import utcnow
from temporal.starts import start_task_workflow
from temporal.ticket_schedules import pause_sync_schedule

log = logging.getLogger(__name__)
TICKETS_IN_FLIGHT = 4
QUEUE_TRIGGER = "ticket_sync"


def options_for(settings: Settings, **extra: object) -> ClientOptions:
    return ClientOptions(
        max_wait=settings.ticket_max_retry_after_seconds,
        github_api_url=settings.github_api_url,
        linear_api_url=settings.linear_api_url,
        notion_api_url=settings.notion_api_url,
        **extra,  # type: ignore[arg-type]
    )


async def _heartbeating_pause(seconds: float) -> None:
    """Wait out a rate limit while telling Temporal the activity is alive."""
    remaining = seconds
    while remaining > 0:
        activity.heartbeat()
        step = min(remaining, 5.0)
        await asyncio.sleep(step)
        remaining -= step


async def start_ticket_writeback(client: Client, *, task_id: str, task_queue: str) -> None:
    """From the completion path: comment on and close/move the task's ticket, once."""
    try:
        await client.start_workflow(
            "TicketDoneWorkflow",
            TicketDoneInput(task_id=task_id),
            id=f"ticket-done-{task_id}",
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        pass


class TicketActivities:
    def __init__(self, *, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions

    # ---- sync ------------------------------------------------------------------------

    @activity.defn
    async def sync_ticket_provider(self, input: TicketSyncInput) -> TicketSyncResult:
        result = TicketSyncResult(provider_id=input.provider_id)
        async with self.sessions() as session:
            provider = await session.get(TicketProvider, input.provider_id)
            if provider is None:
                result.skipped = "The provider was deleted"
                return result
            if not provider.enabled:
                result.skipped = "The provider is disabled"
                return result
            access = await provider_access(session, settings=self.settings, provider=provider)
        client = build_client(
            access.source,
            access.config,
            access.secrets,
            options_for(self.settings, github_repos=access.github_repos, pause=_heartbeating_pause),
        )
        try:
            async with self.sessions() as session:
                known = await announced_links(
                    session, workspace_id=provider.workspace_id, source=provider.source
                )
                triggers = await ticket_triggers(session, workspace_id=provider.workspace_id)
            tickets = await client.actionable(skip=known)
            result.fetched = len(tickets)
            await self._take(
                provider, tickets, [r.repo_url for r in access.repos], client, triggers, result
            )
        except TicketError as exc:
            result.error = str(exc)
            result.disabled = await self._failed(
                provider.id, str(exc), auth=isinstance(exc, TicketAuthError)
            )
        else:
            await self._succeeded(provider.id)
        finally:
            result.requests = client.http.requests
            await client.http.aclose()
        return result

    async def _take(
        self,
        provider: TicketProvider,
        tickets: list[Ticket],
        repos: list[str],
        client: TicketClient,
        triggers: list[Trigger],
        result: TicketSyncResult,
    ) -> None:
        async with self.sessions() as session:
            existing = await links_for(
                session,
                workspace_id=provider.workspace_id,
                source=provider.source,
                external_ids=[t.external_id for t in tickets],
            )
        fallback = provider.config.get("repoUrl")
        # A few tickets at a time: each is a few database writes, a workflow start and a
        # comment, mostly waiting on the network; the provider's rate limits still rule.
        gate = asyncio.Semaphore(TICKETS_IN_FLIGHT)

        async def take(ticket: Ticket) -> None:
            async with gate:
                activity.heartbeat(ticket.external_id)
                repo_url = resolve_repo(ticket.repo_hint, repos, fallback)
                if repo_url is None:
                    result.unresolved += 1
                    return
                link = existing.get((ticket.external_id, repo_url))
                if link is not None and link.started_comment_at is not None:
                    result.already_linked += 1
                    return
                if link is None:
                    link = await self._create(provider, ticket, repo_url)
                    if link is None:
                        result.already_linked += 1  # a concurrent run made it first
                        return
                    result.created.append(
                        CreatedTicketTask(
                            task_id=link.task_id,
                            external_id=ticket.external_id,
                            repo_url=repo_url,
                            title=ticket.title,
                        )
                    )
                await self._announce(provider, ticket, link, client, triggers)

        await asyncio.gather(*(take(t) for t in tickets))

    async def _create(
        self, provider: TicketProvider, ticket: Ticket, repo_url: str
    ) -> TicketLink | None:
        try:
            async with transaction(self.sessions) as session:
                repo = await find_repo(
                    session, workspace_id=provider.workspace_id, repo_url=repo_url
                )
                task = new_ticket_task(
                    workspace_id=provider.workspace_id,
                    source=ticket.source,
                    external_id=ticket.external_id,
                    title=ticket.title,
                    prompt=build_prompt(ticket.title, ticket.body, ticket.comments),
                    url=ticket.url,
                    labels=ticket.labels,
                    repo_url=repo_url,
                    repo=repo,
                    provider_id=provider.id,
                    created_by=provider.created_by,
                    queue_trigger=QUEUE_TRIGGER,
                )
                session.add(task)
                await session.flush()
                link = TicketLink(
                    workspace_id=provider.workspace_id,
                    provider_id=provider.id,
                    source=provider.source,
                    external_id=ticket.external_id,
                    repo_url=repo_url,
                    task_id=task.id,
                    url=ticket.url,
                    title=ticket.title[:1000],
                )
                session.add(link)
                await session.flush()
        except IntegrityError:
            return None
        return link

    async def _announce(
        self,
        provider: TicketProvider,
        ticket: Ticket,
        link: TicketLink,
        client: TicketClient,
        triggers: list[Trigger],
    ) -> None:
        """Start the task, tell the ticket, fire the ticket triggers; then mark the link."""
        async with self.sessions() as session:
            task = await session.get(Task, link.task_id)
        if task is None:
            return
        if task.state == TaskState.PENDING:
            try:
                await start_task_workflow(
                    activity.client(),
                    task,
                    task_queue=self.settings.task_queue,
                    reuse=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                )
            except WorkflowAlreadyStartedError:
                pass
        try:
            await client.comment(
                ticket.external_id,
                body=started_comment(task_id=task.id, agent=task.agent_type),
                key=f"task-{task.id}-start",
                known=ticket.comments,
            )
        except TicketAuthError:
            raise
        except TicketError as exc:
            # The task exists and runs; the comment is retried by the next sync run.
            log.warning(
                "could not comment on %s ticket %s: %s", provider.source, ticket.external_id, exc
            )
            return
        await self._fire_triggers(provider, ticket, link, triggers)
        async with transaction(self.sessions) as session:
            row = await session.get(TicketLink, link.id)
            if row is not None:
                row.started_comment_at = utcnow()

    async def _fire_triggers(
        self, provider: TicketProvider, ticket: Ticket, link: TicketLink, triggers: list[Trigger]
    ) -> None:
        facts = TicketFacts(
            source=provider.source,
            external_id=ticket.external_id,
            title=ticket.title,
            body=ticket.body,
            url=ticket.url,
            labels=ticket.labels,
        )
        for trigger in triggers:
            if not trigger_matches(trigger.config, facts):
                continue
            try:
                await activity.client().start_workflow(
                    "BlueprintRunWorkflow",
                    BlueprintRunInput(
                        config_id=trigger.target_id,
                        trigger_id=trigger.id,
                        params=trigger_params(facts),
                    ),
                    id=f"blueprint-{trigger.target_id}-ticket-{link.id}",
                    task_queue=self.settings.task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                )
            except WorkflowAlreadyStartedError:
                pass

    async def _failed(self, provider_id: str, message: str, *, auth: bool) -> bool:
        async with transaction(self.sessions) as session:
            provider = await session.get(TicketProvider, provider_id, with_for_update=True)
            if provider is None:
                return False
            provider.consecutive_failures += 1
            provider.last_error = message[:2000]
            provider.last_error_at = utcnow()
            provider.auth_failed = auth
            disable = provider.enabled and provider.consecutive_failures >= MAX_CONSECUTIVE_FAILURES
            if disable:
                provider.enabled = False
        if disable:
            await pause_sync_schedule(
                activity.client(), provider_id, note=f"disabled: {message[:200]}"
            )
        return disable

    async def _succeeded(self, provider_id: str) -> None:
        async with transaction(self.sessions) as session:
            provider = await session.get(TicketProvider, provider_id)
            if provider is not None:
                provider.consecutive_failures = 0
                provider.last_error = None
                provider.auth_failed = False
                provider.last_synced_at = utcnow()

    # ---- completion --------------------------------------------------------------------

    @activity.defn
    async def finish_ticket(self, input: TicketDoneInput) -> None:
        """Comment on the ticket and close it (GitHub, GitLab) or move it to done."""
        async with self.sessions() as session:
            link = await link_of_task(session, task_id=input.task_id)
            task = await session.get(Task, input.task_id)
            if link is None or task is None or link.finished_at is not None:
                return
            if task.state != TaskState.COMPLETED:
                return
            provider = (
                await session.get(TicketProvider, link.provider_id) if link.provider_id else None
            )
            client: TicketClient
            if link.provider_id is not None and provider is None:
                log.info("ticket of task %s: its provider was deleted, nothing to tell", task.id)
                return
            if provider is not None:
                access = await provider_access(session, settings=self.settings, provider=provider)
                client = build_client(
                    access.source, access.config, access.secrets, options_for(self.settings)
                )
            else:
                client = await self._forge_client(session, task, link)
        try:
            await client.complete(
                link.external_id,
                body=completed_comment(task_id=task.id, pr_url=task.pr_url),
                key=f"task-{task.id}-done",
            )
        except TicketAuthError as exc:
            raise ApplicationError(str(exc), type="TicketAuth", non_retryable=True) from exc
        finally:
            await client.http.aclose()
        async with transaction(self.sessions) as session:
            row = await session.get(TicketLink, link.id)
            if row is not None:
                row.finished_at = utcnow()

    async def _forge_client(
        self, session: AsyncSession, task: Task, link: TicketLink
    ) -> TicketClient:
        repo: Repo | None = await find_repo(
            session, workspace_id=task.workspace_id, repo_url=link.repo_url
        )
        if repo is None or repo.git_platform not in ("github", "gitlab"):
            raise ApplicationError(
                "The issue's repository is no longer connected",
                type="TicketRepo",
                non_retryable=True,
            )
        token = await forge_token(
            session,
            settings=self.settings,
            platform=repo.git_platform,
            workspace_id=task.workspace_id,
            repo_url=repo.repo_url,
            user_id=None,
        )
        return forge_client(
            repo.git_platform,
            api_url=forge_api_url(repo.git_platform, repo.repo_url, repo.forge_api_url),
            token=token,
            options=options_for(self.settings),
        )
