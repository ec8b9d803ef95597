"""Notifications out: emitting an event's deliveries, and delivering one.

`Notifier` runs inside activities that record something notifiable (a task transition):
it starts one DeliveryWorkflow per target with an id derived from the event, so the
retried recording activity starts nothing twice. `deliver_notification` is the activity
those workflows retry with backoff; every attempt is recorded.
"""

from __future__ import annotations

import json
import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.settings import Settings
from integrations.notify.http import post_notification
from integrations.notify.signing import signature_headers
from integrations.notify.slack import slack_message
from schemas.notify import DeliveryInput, DeliveryResult
from schemas.workflow import TransitionInput
from store.blueprints import StandaloneRun, StandaloneTask
from store.db import transaction
from store.models import Task, TaskEvent
from store.notify import (
    RUN_STATE_EVENTS,
    SLACK_URL_SECRET,
    TASK_STATE_EVENTS,
    plan_event,
    run_data,
    task_data,
)
from store.secrets import resolve_secret, secret_key
from store.webhooks import Webhook, open_secret, record_attempt
from temporal.deliveries import start_deliveries

REFUSED = "DeliveryRefused"


class Notifier:
    def __init__(self, *, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions

    async def task_transition(self, input: TransitionInput) -> None:
        """Emit the event of a recorded transition (again, harmlessly, on a retry)."""
        event = TASK_STATE_EVENTS.get(input.to_state)
        if event is None:
            return
        async with self.sessions() as session:
            task = await session.get(Task, input.task_id)
            stmt = select(TaskEvent).where(
                TaskEvent.task_id == input.task_id, TaskEvent.seq == input.seq
            )
            row = (await session.execute(stmt)).scalar_one_or_none()
            if task is None or row is None:
                return
            timestamp, data = row.created_at.isoformat(), task_data(task, row)
            plans = await plan_event(
                session,
                self.settings,
                workspace_id=task.workspace_id,
                event=event,
                key=f"{task.id}:{row.seq}",
                timestamp=timestamp,
                data=data,
                repo_url=task.repo_url,
            )
            if event == "task.completed" and task.task_type == "review":
                plans += await plan_event(
                    session,
                    self.settings,
                    workspace_id=task.workspace_id,
                    event="review.completed",
                    key=f"review:{task.id}:{row.seq}",
                    timestamp=timestamp,
                    data=data
                    | {"parentTaskId": task.parent_task_id, "verdict": task.pr_review_status},
                    repo_url=None,
                )
        if plans:
            await start_deliveries(
                activity.client(), task_queue=activity.info().task_queue, deliveries=plans
            )

    async def run_state(self, *, run_id: str, from_state: str | None) -> None:
        """Emit workflow_run.<state> for a standalone run's recorded state."""
        async with self.sessions() as session:
            run = await session.get(StandaloneRun, run_id)
            event = RUN_STATE_EVENTS.get(run.state) if run is not None else None
            # No check that the state changed: a retried recording finds it changed already,
            # and must still emit; the delivery ids keep it to once.
            if run is None or event is None:
                return
            job = await session.get(StandaloneTask, run.workflow_id)
            plans = await plan_event(
                session,
                self.settings,
                workspace_id=run.workspace_id,
                event=event,
                # A retried run passes through its states again: the attempt tells them apart.
                key=f"run:{run.id}:{run.state}:{run.retry_count}",
                timestamp=run.updated_at.isoformat(),
                data=run_data(run, job, from_state=from_state),
                repo_url=None,
            )
        if plans:
            await start_deliveries(
                activity.client(), task_queue=activity.info().task_queue, deliveries=plans
            )


class DeliveryActivities:
    def __init__(self, *, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions

    async def _target(self, input: DeliveryInput) -> tuple[str, bytes, str | None]:
        """URL, body and signing secret, read at the last moment (never via Temporal)."""
        async with self.sessions() as session:
            if input.target == "slack":
                url = await resolve_secret(
                    session,
                    workspace_id=input.workspace_id,
                    name=SLACK_URL_SECRET,
                    repo_url=input.repo_url,
                    settings=self.settings,
                )
                if url is None:
                    raise ApplicationError(
                        "Slack is no longer configured", type=REFUSED, non_retryable=True
                    )
                message = slack_message(
                    input.event, input.data, public_url=self.settings.public_base_url
                )
                return url, json.dumps(message).encode(), None
            hook = await session.get(Webhook, input.webhook_id or "")
            if hook is None or hook.workspace_id != input.workspace_id:
                raise ApplicationError("The webhook was deleted", type=REFUSED, non_retryable=True)
            if not hook.active and input.event != "test":
                raise ApplicationError("The webhook is disabled", type=REFUSED, non_retryable=True)
            body = {"event": input.event, "timestamp": input.timestamp, "data": input.data}
            secret = open_secret(hook, key=secret_key(self.settings))
            return hook.url, json.dumps(body).encode(), secret

    @activity.defn(name="deliver_notification")
    async def deliver(self, input: DeliveryInput) -> DeliveryResult:
        attempt = activity.info().attempt
        url, body, secret = await self._target(input)
        headers = {
            "X-Optio-Event": input.event,
            "X-Optio-Delivery": input.delivery_id,
            "X-Optio-Attempt": str(attempt),
            **signature_headers(secret, body, timestamp=int(time.time())),
        }
        result = await post_notification(
            url,
            body=body,
            headers=headers,
            timeout=self.settings.webhook_timeout_seconds,
            allowlist=self.settings.webhook_private_allowlist,
        )
        async with transaction(self.sessions) as session:
            await record_attempt(
                session,
                values={
                    "delivery_id": input.delivery_id,
                    "webhook_id": input.webhook_id,
                    "workspace_id": input.workspace_id,
                    "target": input.target,
                    "event": input.event,
                    "attempt": attempt,
                    "status_code": result.status_code,
                    "response_body": result.response_body,
                    "success": result.success,
                    "error": result.error,
                    "duration_ms": result.duration_ms,
                },
            )
        if result.refused:
            raise ApplicationError(result.error or "Refused", type=REFUSED, non_retryable=True)
        if not result.success:
            # Retried by Temporal with backoff; this attempt is already on record.
            raise ApplicationError(result.error or "Delivery failed", type="DeliveryFailed")
        return DeliveryResult(delivered=True, status_code=result.status_code)
