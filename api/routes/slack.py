"""Slack: a test message, the configuration status, and the buttons' callbacks.

Button clicks come from Slack, not from a signed-in user: each request must carry
Slack's v0 signature of its raw body and a fresh timestamp, checked against the signing
secret (the task's workspace's SLACK_SIGNING_SECRET secret, else the instance setting)
before anything is read from the database or done to a task.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession

from api import task_commands as commands
from api.budgets import refuse_over_monthly_budget
from api.deps import CurrentPrincipal, SessionDep, StateDep
from core.errors import InvalidInputError, OptioError, UnauthorizedError
from core.states import TaskState
from integrations.notify.http import post_notification
from integrations.notify.signing import slack_signature_ok
from integrations.notify.slack import slack_message
from schemas.slack import SlackActionAnswer, SlackStatusPublic, SlackTest, SlackTestResult
from store.db import transaction
from store.models import Task
from store.notify import SLACK_URL_SECRET, slack_configured
from store.secrets import resolve_secret

router = APIRouter(tags=["Notifications"])
SIGNING_SECRET = "SLACK_SIGNING_SECRET"
MAX_BODY = 64 * 1024
REFUSED = "Invalid Slack signature"


@router.post("/api/slack/test", response_model=SlackTestResult)
async def test(
    body: SlackTest, principal: CurrentPrincipal, session: SessionDep, state: StateDep
) -> dict[str, Any]:
    url = body.webhook_url.get_secret_value() if body.webhook_url else None
    if url is None:
        url = await resolve_secret(
            session,
            workspace_id=principal.workspace_id,
            name=SLACK_URL_SECRET,
            repo_url=body.repo_url,
            settings=state.settings,
        )
    if url is None:
        raise InvalidInputError(
            f"No Slack webhook: send webhookUrl, or store it as the {SLACK_URL_SECRET} secret"
        )
    message = slack_message(
        "test",
        {"message": "Optio can post to this channel."},
        public_url=state.settings.public_base_url,
    )
    if body.channel:
        message["channel"] = body.channel
    sent = await post_notification(
        url,
        body=json.dumps(message).encode(),
        headers={},
        timeout=state.settings.webhook_timeout_seconds,
        allowlist=state.settings.webhook_private_allowlist,
    )
    if sent.success:
        return {"ok": True, "message": "Test message sent"}
    return {"ok": False, "error": sent.error or "Slack refused the message"}


@router.get("/api/slack/status", response_model=SlackStatusPublic)
async def status(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    configured = await slack_configured(session, workspace_id=principal.workspace_id, repo_url=None)
    return {"globalWebhookConfigured": configured}


def _action(raw: bytes) -> tuple[str, str]:
    """(action id, task id) of the clicked button; refused as unsigned if unreadable."""
    try:
        form = parse_qs(raw.decode(), strict_parsing=True)
        payload = json.loads(form["payload"][0])
        action = payload["actions"][0]
        return str(action["action_id"]), str(action["value"])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError):
        raise UnauthorizedError(REFUSED) from None


@router.post("/api/webhooks/slack/actions", response_model=SlackActionAnswer)
async def actions(request: Request, state: StateDep) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise InvalidInputError("Payload too large")
    timestamp = request.headers.get("x-slack-request-timestamp")
    signature = request.headers.get("x-slack-signature")
    if not timestamp or not signature:
        raise UnauthorizedError(REFUSED)
    action_id, task_id = _action(raw)
    async with transaction(state.sessions) as session:
        task = await session.get(Task, task_id)
        secrets = []
        if task is not None:
            stored = await resolve_secret(
                session,
                workspace_id=task.workspace_id,
                name=SIGNING_SECRET,
                settings=state.settings,
            )
            secrets.append(stored)
        fallback = state.settings.slack_signing_secret
        secrets.append(fallback.get_secret_value() if fallback else None)
        verified = task is not None and any(
            slack_signature_ok(
                secret,
                body=raw,
                timestamp=timestamp,
                signature=signature,
                now=time.time(),
                max_age_seconds=state.settings.slack_max_age_seconds,
            )
            for secret in secrets
            if secret
        )
        # An unknown task and a bad signature look the same from outside.
        if not verified or task is None:
            raise UnauthorizedError(REFUSED)
        return await _act(state, session, task, action_id)


async def _act(
    state: StateDep, session: AsyncSession, task: Task, action_id: str
) -> dict[str, Any]:
    client = await state.temporal_client()
    try:
        if action_id == "retry_task":
            await refuse_over_monthly_budget(state, session, workspace_id=task.workspace_id)
            await commands.retry(
                client, task=task, task_queue=state.settings.task_queue, user_id="slack"
            )
            return {"ok": True, "text": f"Retrying “{task.title}”"}
        if action_id == "cancel_task":
            if task.state != TaskState.CANCELLED:
                await commands.cancel(client, task=task)
            return {"ok": True, "text": f"Cancelling “{task.title}”"}
    except OptioError as exc:
        # Slack shows the answer to the person who clicked: say why nothing happened.
        return {"ok": False, "text": exc.message}
    return {"ok": True, "text": "Nothing to do"}
