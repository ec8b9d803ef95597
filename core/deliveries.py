"""The payload of one delivery, with the retry settings it travels with."""

from __future__ import annotations

from typing import Any

from core.settings import Settings
from schemas.notify import DeliveryInput


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
