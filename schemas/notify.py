"""Payloads of the delivery workflow and its activity: ids and the event, never a secret."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Target = Literal["webhook", "slack"]

TASK_EVENTS = ("task.completed", "task.failed", "task.needs_attention", "task.pr_opened")
WORKFLOW_RUN_EVENTS = (
    "workflow_run.queued",
    "workflow_run.started",
    "workflow_run.completed",
    "workflow_run.failed",
)
# Task events a Slack channel gets unless its repo says otherwise.
DEFAULT_SLACK_EVENTS = TASK_EVENTS
WEBHOOK_EVENTS = (
    *TASK_EVENTS,
    "review.completed",
    *WORKFLOW_RUN_EVENTS,
    "workspace.budget_exceeded",
)


@dataclass
class DeliveryInput:
    # Stable across attempts (and sent as X-Optio-Delivery) so receivers can de-duplicate.
    delivery_id: str
    workspace_id: str
    target: Target
    event: str
    # The event's time (ISO 8601), the same in every attempt.
    timestamp: str
    data: dict[str, Any] = field(default_factory=dict)
    webhook_id: str | None = None
    # Slack: the repo whose SLACK_WEBHOOK_URL secret (or the workspace's) is used.
    repo_url: str | None = None
    max_attempts: int = 10
    initial_interval_seconds: float = 5.0
    max_interval_seconds: float = 600.0


@dataclass
class DeliveryResult:
    delivered: bool
    status_code: int | None = None
    error: str | None = None
