"""HTTP shapes of outgoing webhooks and their deliveries (inventory §3.16)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from schemas.common import ApiModel, ApiOut
from schemas.notify import WEBHOOK_EVENTS

SECRET_MASK = "••••••"
WebhookEvent = Literal[
    "task.completed",
    "task.failed",
    "task.needs_attention",
    "task.pr_opened",
    "review.completed",
    "workflow_run.queued",
    "workflow_run.started",
    "workflow_run.completed",
    "workflow_run.failed",
    "workspace.budget_exceeded",
]
assert set(WebhookEvent.__args__) == set(WEBHOOK_EVENTS)  # type: ignore[attr-defined]


def _unique(events: list[str] | None) -> list[str] | None:
    return list(dict.fromkeys(events)) if events is not None else None


class WebhookCreate(ApiModel):
    url: str = Field(min_length=1, max_length=2000)
    events: list[WebhookEvent] = Field(min_length=1, max_length=len(WEBHOOK_EVENTS))
    secret: SecretStr | None = Field(default=None, min_length=8, max_length=500)
    description: str | None = Field(default=None, max_length=500)
    active: bool = True

    _events = field_validator("events")(_unique)


class WebhookUpdate(ApiModel):
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    events: list[WebhookEvent] | None = Field(
        default=None, min_length=1, max_length=len(WEBHOOK_EVENTS)
    )
    # null clears the secret; absent leaves it as it is.
    secret: SecretStr | None = Field(default=None, min_length=8, max_length=500)
    description: str | None = Field(default=None, max_length=500)
    active: bool | None = None

    _events = field_validator("events")(_unique)


class WebhookPublic(ApiOut):
    id: str
    workspace_id: str
    url: str
    events: list[str]
    description: str | None
    active: bool
    secret: str | None
    created_at: datetime
    updated_at: datetime


class WebhookTest(ApiModel):
    event: WebhookEvent | Literal["test"] = "test"


class DeliveryPublic(ApiOut):
    id: str
    delivery_id: str
    webhook_id: str | None
    event: str
    attempt: int
    status_code: int | None
    response_body: str | None
    success: bool
    error: str | None
    duration_ms: int | None
    created_at: datetime


class DeliveryTested(ApiOut):
    """POST /api/webhooks/:id/test: the test's attempt, null if it left no row."""

    delivery: DeliveryPublic | None


class ForgeDuplicate(ApiOut):
    """A forge (or hook) delivery seen already: nothing is done twice."""

    accepted: Literal[False]
    duplicate: Literal[True]


class ForgeAccepted(ApiOut):
    accepted: Literal[True]
    # Tasks signalled (their PR is the one the event is about), ticket syncs started.
    tasks: int
    ticket_syncs: int


ForgeDeliveryAnswer = ForgeAccepted | ForgeDuplicate
