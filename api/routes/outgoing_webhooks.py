"""Outgoing webhooks of the workspace: CRUD, a test delivery, the delivery log (§3.16).

The secret is write-only: every answer shows it masked. A test is delivered like any
event, through a DeliveryWorkflow, with a single attempt, and answers what happened.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from temporalio.client import WorkflowFailureError

from api.deps import CurrentPrincipal, SessionDep, StateDep
from core.deliveries import delivery_input
from core.errors import InvalidInputError, ServiceUnavailableError
from integrations.notify.ssrf import UnsafeUrlError, assert_safe_url
from schemas.envelopes import DeliveriesPublic, WebhookEnvelope, WebhooksPublic
from schemas.webhooks import (
    SECRET_MASK,
    DeliveryPublic,
    DeliveryTested,
    WebhookCreate,
    WebhookPublic,
    WebhookTest,
    WebhookUpdate,
)
from store.scoping import get_scoped
from store.secrets import secret_key
from store.types import utcnow
from store.webhooks import Webhook, list_deliveries, list_webhooks, seal_secret
from temporal.deliveries import delivery_workflow_id

router = APIRouter(tags=["Webhooks"])


def public(row: Webhook) -> dict[str, Any]:
    out = WebhookPublic.model_validate(
        {
            "id": row.id,
            "workspace_id": row.workspace_id,
            "url": row.url,
            "events": list(row.events or []),
            "description": row.description,
            "active": row.active,
            "secret": SECRET_MASK if row.has_secret else None,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }
    )
    return out.model_dump(mode="json", by_alias=True)


async def _checked_url(url: str, state: StateDep) -> str:
    url = url.strip()
    try:
        await assert_safe_url(url, allowlist=state.settings.webhook_private_allowlist)
    except UnsafeUrlError as exc:
        raise InvalidInputError(f"Webhook URL refused: {exc}") from None
    return url


async def _get(session: SessionDep, principal: CurrentPrincipal, webhook_id: str) -> Webhook:
    return await get_scoped(
        session, Webhook, row_id=webhook_id, workspace_id=principal.workspace_id, label="Webhook"
    )


@router.get("/api/webhooks", response_model=WebhooksPublic)
async def list_(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    rows = await list_webhooks(session, workspace_id=principal.workspace_id)
    return {"webhooks": [public(r) for r in rows]}


@router.post("/api/webhooks", status_code=201, response_model=WebhookEnvelope)
async def create(
    body: WebhookCreate, principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> dict[str, Any]:
    row = Webhook(
        id=str(uuid.uuid4()),
        workspace_id=principal.workspace_id,
        url=await _checked_url(body.url, state),
        events=list(body.events),
        description=body.description,
        active=body.active,
        created_by=principal.user_id,
    )
    secret = body.secret.get_secret_value() if body.secret else None
    seal_secret(row, key=secret_key(state.settings), secret=secret)
    session.add(row)
    await session.commit()
    return {"webhook": public(row)}


@router.get("/api/webhooks/{webhook_id}", response_model=WebhookEnvelope)
async def get(webhook_id: str, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    return {"webhook": public(await _get(session, principal, webhook_id))}


@router.patch("/api/webhooks/{webhook_id}", response_model=WebhookEnvelope)
async def update(
    webhook_id: str,
    body: WebhookUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
) -> dict[str, Any]:
    row = await _get(session, principal, webhook_id)
    if body.url is not None:
        row.url = await _checked_url(body.url, state)
    if body.events is not None:
        row.events = list(body.events)
    if "description" in body.model_fields_set:
        row.description = body.description
    if body.active is not None:
        row.active = body.active
    if "secret" in body.model_fields_set:
        secret = body.secret.get_secret_value() if body.secret else None
        seal_secret(row, key=secret_key(state.settings), secret=secret)
    row.updated_at = utcnow()
    await session.commit()
    return {"webhook": public(row)}


@router.delete("/api/webhooks/{webhook_id}", status_code=204)
async def delete(webhook_id: str, principal: CurrentPrincipal, session: SessionDep) -> Response:
    row = await _get(session, principal, webhook_id)
    await session.delete(row)
    await session.commit()
    return Response(status_code=204)


@router.post("/api/webhooks/{webhook_id}/test", response_model=DeliveryTested)
async def test(
    webhook_id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    state: StateDep,
    body: WebhookTest | None = None,
) -> dict[str, Any]:
    row = await _get(session, principal, webhook_id)
    event = (body or WebhookTest()).event
    now = utcnow()
    delivery = delivery_input(
        state.settings,
        delivery_id=f"{row.id}:test:{uuid.uuid4()}",
        workspace_id=principal.workspace_id,
        event=event,
        timestamp=now.isoformat(),
        data={"test": True, "message": "Test delivery from Optio", "webhookId": row.id},
        webhook_id=row.id,
        max_attempts=1,
    )
    client = await state.temporal_client()
    try:
        await client.execute_workflow(
            "DeliveryWorkflow",
            delivery,
            id=delivery_workflow_id(delivery.delivery_id),
            task_queue=state.settings.task_queue,
            # No worker, no answer: give up instead of holding the request for ever.
            execution_timeout=timedelta(seconds=state.settings.webhook_timeout_seconds + 30),
        )
    except WorkflowFailureError as exc:
        raise ServiceUnavailableError(
            "The test delivery did not run: is an Optio worker running?"
        ) from exc
    rows = await list_deliveries(
        session, workspace_id=principal.workspace_id, webhook_id=row.id, limit=20
    )
    attempt = next((r for r in rows if r.delivery_id == delivery.delivery_id), None)
    if attempt is None:
        return {"delivery": None}
    return {
        "delivery": DeliveryPublic.model_validate(attempt).model_dump(mode="json", by_alias=True)
    }


@router.get("/api/webhooks/{webhook_id}/deliveries", response_model=DeliveriesPublic)
async def deliveries(
    webhook_id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    row = await _get(session, principal, webhook_id)
    rows = await list_deliveries(
        session, workspace_id=principal.workspace_id, webhook_id=row.id, limit=limit
    )
    return {
        "deliveries": [
            DeliveryPublic.model_validate(r).model_dump(mode="json", by_alias=True) for r in rows
        ]
    }
