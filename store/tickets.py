"""Ticket providers of a workspace and the tickets that became tasks (migration 0013).

A provider's credentials are not here: they are one encrypted secret per provider
(`ticket-provider:<id>`, scope `ticket-provider`), read only by the activity that calls
the provider. A `TicketLink` is the idempotency key of ticket sync and issue assignment:
one task per (source, external id, repository) in a workspace, enforced by the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.settings import Settings
from core.states import TaskState
from core.tickets import agent_for, repo_path
from store.blueprints import Trigger
from store.forge_credentials import forge_token
from store.models import Base, Repo, Task, TimestampMixin, new_id
from store.scoping import get_scoped, scoped_select
from store.secrets import delete_secret, read_secret, secret_key, upsert_secret
from store.types import JSONType, utcnow

SECRET_SCOPE = "ticket-provider"
# Five sync runs failing in a row disable a provider until someone re-enables it (§3.18).
MAX_CONSECUTIVE_FAILURES = 5


def secret_name(provider_id: str) -> str:
    return f"ticket-provider:{provider_id}"


class TicketProvider(TimestampMixin, Base):
    __tablename__ = "ticket_providers"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(String(20))  # github | gitlab | jira | linear | notion
    name: Mapped[str | None] = mapped_column(String(200))
    # Non-secret settings only (label, project, database, ...); secrets live encrypted.
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    sync_interval_seconds: Mapped[int | None] = mapped_column(Integer)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    # The last error was the provider refusing the credentials (a 401/403).
    auth_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_synced_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(36))


class TicketLink(Base):
    __tablename__ = "ticket_links"
    __table_args__ = (
        UniqueConstraint("workspace_id", "source", "external_id", "repo_url"),
        Index("ix_ticket_links_task", "task_id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    # None for an issue assigned by hand (POST /api/issues/assign) without a provider.
    provider_id: Mapped[str | None] = mapped_column(
        ForeignKey("ticket_providers.id", ondelete="SET NULL")
    )
    source: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(300))
    repo_url: Mapped[str] = mapped_column(Text)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text, default="")
    # The "working on it" comment went out; the completion write-back is done.
    started_comment_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


async def list_providers(session: AsyncSession, *, workspace_id: str) -> list[TicketProvider]:
    stmt = scoped_select(TicketProvider, workspace_id=workspace_id).order_by(
        TicketProvider.created_at, TicketProvider.id
    )
    return list((await session.execute(stmt)).scalars())


async def get_provider(
    session: AsyncSession, *, provider_id: str, workspace_id: str
) -> TicketProvider:
    return await get_scoped(
        session, TicketProvider, row_id=provider_id, workspace_id=workspace_id, label="Provider"
    )


async def links_for(
    session: AsyncSession, *, workspace_id: str, source: str, external_ids: list[str]
) -> dict[tuple[str, str], TicketLink]:
    """Existing links of these tickets, by (external id, repo url)."""
    if not external_ids:
        return {}
    stmt = scoped_select(TicketLink, workspace_id=workspace_id).where(
        TicketLink.source == source, TicketLink.external_id.in_(external_ids)
    )
    return {(r.external_id, r.repo_url): r for r in (await session.execute(stmt)).scalars()}


async def linked_tasks(
    session: AsyncSession, *, workspace_id: str
) -> dict[tuple[str, str], tuple[TicketLink, Task]]:
    """Every link of the workspace with its task, by (source, external id)."""
    stmt = (
        select(TicketLink, Task)
        .join(Task, Task.id == TicketLink.task_id)
        .where(TicketLink.workspace_id == workspace_id)
        .order_by(TicketLink.created_at)
    )
    return {
        (link.source, link.external_id): (link, task) for link, task in await session.execute(stmt)
    }


async def link_of_task(session: AsyncSession, *, task_id: str) -> TicketLink | None:
    stmt = select(TicketLink).where(TicketLink.task_id == task_id)
    return (await session.execute(stmt)).scalars().first()


async def save_credentials(
    session: AsyncSession, *, key: bytes, provider: TicketProvider, values: dict[str, str]
) -> None:
    """All of a provider's credentials, as one encrypted secret (replaced whole)."""
    if values:
        await upsert_secret(
            session,
            key=key,
            workspace_id=provider.workspace_id,
            name=secret_name(provider.id),
            value=json.dumps(values),
            scope=SECRET_SCOPE,
            user_id="",
        )
    else:
        await drop_credentials(session, provider=provider)


async def drop_credentials(session: AsyncSession, *, provider: TicketProvider) -> None:
    await delete_secret(
        session,
        workspace_id=provider.workspace_id,
        name=secret_name(provider.id),
        scope=SECRET_SCOPE,
        user_id="",
    )


async def credentials(
    session: AsyncSession, *, key: bytes, provider: TicketProvider
) -> dict[str, str]:
    value = await read_secret(
        session,
        key=key,
        workspace_id=provider.workspace_id,
        name=secret_name(provider.id),
        scope=SECRET_SCOPE,
    )
    return dict(json.loads(value)) if value else {}


@dataclass
class ProviderAccess:
    """Everything a ticket client needs, read right before use (secrets included)."""

    source: str
    config: dict[str, Any]
    secrets: dict[str, str]
    repos: list[Repo]
    github_api_url: str
    github_repos: list[str]


async def provider_access(
    session: AsyncSession, *, settings: Settings, provider: TicketProvider
) -> ProviderAccess:
    repos = list(
        (
            await session.execute(
                scoped_select(Repo, workspace_id=provider.workspace_id).order_by(Repo.created_at)
            )
        ).scalars()
    )
    secrets = await credentials(session, key=secret_key(settings), provider=provider)
    github = [r for r in repos if r.git_platform == "github"]
    if provider.source in ("github", "gitlab") and not secrets.get("token"):
        target = provider.config.get("projectPath") or provider.config.get("repo")
        match = next(
            (r for r in repos if target and r.repo_url.rstrip("/").endswith(str(target))), None
        )
        token = await forge_token(
            session,
            settings=settings,
            platform=provider.source,
            workspace_id=provider.workspace_id,
            repo_url=match.repo_url if match else "",
            user_id=None,
        )
        if token:
            secrets["token"] = token
    api_url = next((r.forge_api_url for r in github if r.forge_api_url), None)
    return ProviderAccess(
        source=provider.source,
        config=dict(provider.config),
        secrets=secrets,
        repos=repos,
        github_api_url=api_url or settings.github_api_url,
        github_repos=[p for r in github if (p := repo_path(r.repo_url))],
    )


def new_ticket_task(
    *,
    workspace_id: str,
    source: str,
    external_id: str,
    title: str,
    prompt: str,
    url: str,
    labels: list[str],
    repo_url: str,
    repo: Repo | None,
    provider_id: str | None,
    created_by: str | None,
    queue_trigger: str,
    agent_type: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Task:
    """The pending repo task of a ticket; its workflow records `queue_trigger` as it queues."""
    default_agent = repo.default_agent_type if repo else "claude-code"
    return Task(
        id=new_id(),
        workspace_id=workspace_id,
        title=title[:500] or external_id,
        prompt=prompt,
        repo_url=repo_url,
        repo_branch=repo.default_branch if repo else "main",
        agent_type=agent_type or agent_for(labels, default_agent),
        metadata_={
            "ticketSource": source,
            "ticketExternalId": external_id,
            "ticketUrl": url,
            "ticketProviderId": provider_id,
            "queueTrigger": queue_trigger,
            **(extra or {}),
        },
        created_by=created_by,
        state=TaskState.PENDING,
        # The promise to start it: a start lost to a crash is made again (api/task_starts.py).
        start_requested_at=utcnow(),
    )


async def find_link(
    session: AsyncSession, *, workspace_id: str, source: str, external_id: str, repo_url: str
) -> tuple[TicketLink, Task] | None:
    stmt = (
        select(TicketLink, Task)
        .join(Task, Task.id == TicketLink.task_id)
        .where(
            TicketLink.workspace_id == workspace_id,
            TicketLink.source == source,
            TicketLink.external_id == external_id,
            TicketLink.repo_url == repo_url,
        )
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row else None


async def announced_links(session: AsyncSession, *, workspace_id: str, source: str) -> set[str]:
    """External ids of this source's tickets that are linked and told so already."""
    stmt = select(TicketLink.external_id).where(
        TicketLink.workspace_id == workspace_id,
        TicketLink.source == source,
        TicketLink.started_comment_at.is_not(None),
    )
    return set((await session.execute(stmt)).scalars())


async def ticket_triggers(session: AsyncSession, *, workspace_id: str) -> list[Trigger]:
    """Enabled `ticket` triggers of the workspace's blueprints (fired by the sync)."""
    stmt = select(Trigger).where(
        Trigger.workspace_id == workspace_id,
        Trigger.type == "ticket",
        Trigger.target_type == "task_config",
        Trigger.enabled.is_(True),
    )
    return list((await session.execute(stmt)).scalars())
