"""A forge's "issue labelled" webhook starts a sync of the ticket providers it concerns.

GitHub sends `issues` (action `labeled`, `opened`, `reopened`) and GitLab `Issue Hook`
(`open`, `reopen`, `update`). A provider is concerned when it is enabled, of the same
forge, in the workspace of a repository the delivery was verified for, watches that
repository (GitHub: `owner`/`repo` unset or equal; GitLab: `projectPath` equal) and its
label (`optio` by default) is among the issue's labels. The sync itself is the
scheduled one's (TicketSyncWorkflow): idempotent per ticket, so a sync started here and
a scheduled one at the same moment create each task once. The workflow id carries the
delivery id, so a replayed delivery starts nothing twice.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from integrations.tickets.base import DEFAULT_LABEL
from schemas.tickets import TicketSyncInput
from store.models import Repo
from store.tickets import TicketProvider

log = logging.getLogger(__name__)

GITHUB_ACTIONS = frozenset({"labeled", "opened", "reopened"})
GITLAB_ACTIONS = frozenset({"open", "reopen", "update"})


def issue_labels(platform: str, kind: str, payload: dict[str, Any]) -> list[str] | None:
    """The labels of the issue an issue event names, or None for any other event."""
    if platform == "github":
        if kind != "issues" or payload.get("action") not in GITHUB_ACTIONS:
            return None
        labels = (payload.get("issue") or {}).get("labels") or []
    else:
        if kind != "Issue Hook":
            return None
        if (payload.get("object_attributes") or {}).get("action") not in GITLAB_ACTIONS:
            return None
        labels = payload.get("labels") or []
    return [str(label.get("name") if isinstance(label, dict) else label) for label in labels]


def _watches(provider: TicketProvider, platform: str, full_name: str) -> bool:
    config = provider.config or {}
    if platform == "gitlab":
        return str(config.get("projectPath") or "").strip("/") == full_name
    owner, repo = config.get("owner"), config.get("repo")
    if owner and repo:
        return f"{owner}/{repo}".lower() == full_name.lower()
    if owner:
        return full_name.lower().startswith(f"{str(owner).lower()}/")
    return True  # every connected repository of the workspace


async def concerned_providers(
    session: AsyncSession, *, platform: str, repos: list[Repo], labels: list[str]
) -> list[str]:
    ids: list[str] = []
    for repo in repos:
        rows = await session.execute(
            select(TicketProvider).where(
                TicketProvider.workspace_id == repo.workspace_id,
                TicketProvider.source == platform,
                TicketProvider.enabled.is_(True),
            )
        )
        for provider in rows.scalars():
            label = str((provider.config or {}).get("label") or DEFAULT_LABEL)
            if label in labels and _watches(provider, platform, repo.full_name or ""):
                ids.append(provider.id)
    return sorted(set(ids))


async def start_syncs(
    client: Client, *, provider_ids: list[str], delivery_id: str, task_queue: str
) -> int:
    started = 0
    for provider_id in provider_ids:
        try:
            await client.start_workflow(
                "TicketSyncWorkflow",
                TicketSyncInput(provider_id=provider_id),
                id=f"ticket-sync-{provider_id}-hook-{delivery_id}",
                task_queue=task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            started += 1
        except WorkflowAlreadyStartedError:
            pass  # this delivery's sync ran already
        except RPCError:
            # The provider's schedule syncs it soon anyway; the delivery is not refused.
            log.warning("could not start a ticket sync for provider %s", provider_id)
    return started
