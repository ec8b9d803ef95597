"""Starting deliveries: one DeliveryWorkflow per (event, target), shared by API and activities."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from schemas.notify import DeliveryInput


def delivery_workflow_id(delivery_id: str) -> str:
    return f"delivery-{delivery_id}"


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
