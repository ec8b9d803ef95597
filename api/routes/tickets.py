"""Ticket providers and ticket sync (inventory §3.18), per workspace.

Providers are the workspace's own (the reference's are instance-global). Each has a
Temporal Schedule running TicketSyncWorkflow; POST /api/tickets/sync runs one now for
every enabled provider (or the one named) and answers what it created.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError

from api import ticket_providers as providers
from api.deps import CurrentPrincipal, SessionDep, StateDep
from core.errors import ServiceUnavailableError
from schemas.tickets import (
    ProviderCreate,
    ProviderEnvelope,
    ProvidersPublic,
    ProviderUpdate,
    TicketSyncInput,
    TicketSyncPublic,
    TicketSyncResult,
)
from store.tickets import TicketProvider, drop_credentials, get_provider, list_providers
from temporal.ticket_schedules import delete_sync_schedule

router = APIRouter(tags=["Tickets"])


@router.get("/api/tickets/providers", response_model=ProvidersPublic)
async def list_(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    rows = await list_providers(session, workspace_id=principal.workspace_id)
    return {"providers": [providers.public(r) for r in rows]}


@router.post("/api/tickets/providers", status_code=201, response_model=ProviderEnvelope)
async def create(
    body: ProviderCreate, principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> dict[str, Any]:
    # Checking a host resolves its name: off the event loop.
    config, secrets = await asyncio.to_thread(
        providers.split_config,
        body.source,
        body.config,
        allow_private=state.settings.ticket_allow_private_hosts,
    )
    row = TicketProvider(
        workspace_id=principal.workspace_id,
        source=body.source,
        name=body.name,
        config=config,
        enabled=body.enabled,
        sync_interval_seconds=body.sync_interval_seconds,
        consecutive_failures=0,
        auth_failed=False,
        created_by=principal.user_id,
    )
    session.add(row)
    await providers.save(state, session, row, secrets)
    return {"provider": providers.public(row)}


@router.patch("/api/tickets/providers/{provider_id}", response_model=ProviderEnvelope)
async def update(
    provider_id: str,
    body: ProviderUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
) -> dict[str, Any]:
    row = await get_provider(session, provider_id=provider_id, workspace_id=principal.workspace_id)
    changes = body.model_dump(exclude_unset=True)
    secrets = await providers.stored_secrets(state, session, row)
    if changes.get("config") is not None:
        merged = {**providers.stored_config(row), **changes["config"]}
        row.config, secrets = await asyncio.to_thread(
            providers.split_config,
            row.source,
            merged,
            allow_private=state.settings.ticket_allow_private_hosts,
            stored=secrets,
        )
    if "name" in changes:
        row.name = changes["name"]
    if "sync_interval_seconds" in changes:
        row.sync_interval_seconds = changes["sync_interval_seconds"]
    if changes.get("enabled") is not None:
        _set_enabled(row, bool(changes["enabled"]))
    await providers.save(state, session, row, secrets)
    return {"provider": providers.public(row)}


@router.patch("/api/tickets/providers/{provider_id}/re-enable", response_model=ProviderEnvelope)
async def re_enable(
    provider_id: str, principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> dict[str, Any]:
    """The reference's route: PATCH with `{"enabled": true}` does the same."""
    row = await get_provider(session, provider_id=provider_id, workspace_id=principal.workspace_id)
    _set_enabled(row, True)
    await providers.save(state, session, row, await providers.stored_secrets(state, session, row))
    return {"provider": providers.public(row)}


def _set_enabled(row: TicketProvider, enabled: bool) -> None:
    if enabled and not row.enabled:
        # Re-enabling starts the count of failures afresh (§3.18).
        row.consecutive_failures = 0
        row.auth_failed = False
        row.last_error = None
        row.last_error_at = None
    row.enabled = enabled


@router.delete("/api/tickets/providers/{provider_id}", status_code=204)
async def delete(
    provider_id: str, principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> Response:
    row = await get_provider(session, provider_id=provider_id, workspace_id=principal.workspace_id)
    try:
        await delete_sync_schedule(await state.temporal_client(), row.id)
    except RPCError as exc:
        raise ServiceUnavailableError(f"Temporal refused: {exc.message}") from exc
    await drop_credentials(session, provider=row)
    await session.delete(row)
    await session.commit()
    return Response(status_code=204)


@router.post("/api/tickets/sync", response_model=TicketSyncPublic)
async def sync(
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
    provider_id: Annotated[str | None, Query(alias="providerId")] = None,
) -> dict[str, Any]:
    """Run a sync of every enabled provider (or `providerId`) now; answer what it created."""
    if provider_id is not None:
        rows = [
            await get_provider(
                session, provider_id=provider_id, workspace_id=principal.workspace_id
            )
        ]
    else:
        rows = [
            r
            for r in await list_providers(session, workspace_id=principal.workspace_id)
            if r.enabled
        ]
    await session.close()  # a sync takes a while: hold no connection meanwhile
    client = await state.temporal_client()

    async def one(row: TicketProvider) -> TicketSyncResult:
        try:
            result: TicketSyncResult = await client.execute_workflow(
                "TicketSyncWorkflow",
                TicketSyncInput(provider_id=row.id),
                id=f"ticket-sync-{row.id}-manual-{uuid.uuid4().hex[:12]}",
                task_queue=state.settings.task_queue,
                result_type=TicketSyncResult,
            )
        except RPCError as exc:
            raise ServiceUnavailableError(f"Temporal refused the sync: {exc.message}") from exc
        except WorkflowFailureError as exc:
            # Provider errors are results; this is the worker or the database failing.
            raise ServiceUnavailableError(f"The sync could not run: {exc.cause}") from exc
        return result

    results = await asyncio.gather(*(one(r) for r in rows))
    answers = [
        {"source": row.source, **_camel(dataclasses.asdict(result))}
        for row, result in zip(rows, results, strict=True)
    ]
    created = [task for answer in answers for task in answer["created"]]
    return {"synced": len(created), "created": created, "providers": answers}


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel_key(k): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _camel_key(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)
