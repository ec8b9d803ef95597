"""Starting deliveries: one DeliveryWorkflow per (event, target), shared by API and activities."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from core.settings import Settings
from schemas.notify import DeliveryInput


def delivery_workflow_id(delivery_id: str) -> str:
    return f"delivery-{delivery_id}"


def delivery_input(
    settings: Settings,
    *,
    delivery_id: str,
    workspace_id: str,
    event: str,
    timestamp: str,
    data: dict[str, Any],
    webhook_id: str | None = None,
    repo_url: str | None = None,
    max_attempts: int | None = None,
) -> DeliveryInput:
    return DeliveryInput(
        delivery_id=delivery_id,
        workspace_id=workspace_id,
        target="webhook" if webhook_id else "slack",
        event=event,
        timestamp=timestamp,
        data=data,
        webhook_id=webhook_id,
        repo_url=repo_url,
        max_attempts=max_attempts or settings.webhook_max_attempts,
        initial_interval_seconds=settings.webhook_retry_initial_seconds,
        max_interval_seconds=settings.webhook_retry_max_interval_seconds,
    )


async def start_deliveries(
    client: Client, *, task_queue: str, deliveries: list[DeliveryInput]
) -> None:
    """Start each delivery once: REJECT_DUPLICATE keeps a finished one from running again."""
    for delivery in deliveries:
        try:
            await client.start_workflow(
                "DeliveryWorkflow",
                delivery,
                id=delivery_workflow_id(delivery.delivery_id),
                task_queue=task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            pass  # emitted before (a retried activity, a repeated request): once is enough
