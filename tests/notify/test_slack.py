"""Slack: Block Kit messages on task events, a test message, and button callbacks that
act only with a valid v0 signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import Optio
from tests.lifecycle_helpers import create_task, triggers, wait_for_state, wait_for_trigger
from tests.notify.receiver import Receiver

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("postgresql")

SIGNING = "slack-signing-secret-for-tests"


async def put_secret(optio: Optio, name: str, value: str) -> None:
    response = await optio.client.post("/api/secrets", json={"name": name, "value": value})
    assert response.status_code in (200, 201), response.text


def click(action_id: str, task_id: str) -> bytes:
    payload = {"type": "block_actions", "actions": [{"action_id": action_id, "value": task_id}]}
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed(body: bytes, *, secret: str = SIGNING, at: int | None = None) -> dict[str, str]:
    stamp = str(at if at is not None else int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest.hexdigest()}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def test_a_failed_task_posts_block_kit_and_only_signed_clicks_act(
    optio: Optio, receiver: Receiver, make_repo: Any
) -> None:
    await put_secret(optio, "SLACK_WEBHOOK_URL", receiver.url)
    await put_secret(optio, "SLACK_SIGNING_SECRET", SIGNING)
    repo: Path = make_repo()
    script = 'echo \'optio-usage {"costUsd": "0.12"}\'\nexit 2'
    task = await create_task(optio.client, repo, script, maxRetries=0)
    await wait_for_state(optio.client, task["id"], "failed")

    (message,) = await receiver.wait_for(1)
    blocks = json.loads(message.body)["blocks"]
    fields = " ".join(f["text"] for b in blocks for f in b.get("fields", []))
    assert str(repo) in fields and "failed" in fields and "$0.12" in fields
    buttons = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["view_logs", "retry_task"]
    assert "x-optio-signature" not in message.headers  # Slack's URL is the secret

    body = click("retry_task", task["id"])
    actions = "/api/webhooks/slack/actions"
    refusals = [
        signed(body, secret="not-the-secret"),
        signed(body, at=int(time.time()) - 3600),  # a replay from an hour ago
        {"Content-Type": "application/x-www-form-urlencoded"},  # unsigned
    ]
    for headers in refusals:
        refused = await optio.anon.post(actions, content=body, headers=headers)
        assert refused.status_code == 401, refused.text
    tampered = click("retry_task", task["id"]).replace(b"retry_task", b"cancel_task")
    refused = await optio.anon.post(actions, content=tampered, headers=signed(body))
    assert refused.status_code == 401
    unknown = click("retry_task", "00000000-0000-0000-0000-000000000000")
    assert (
        await optio.anon.post(actions, content=unknown, headers=signed(unknown))
    ).status_code == 401
    assert ("queued", "user_retry") not in await triggers(optio.client, task["id"])

    accepted = await optio.anon.post(actions, content=body, headers=signed(body))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["ok"] is True
    await wait_for_trigger(optio.client, task["id"], ("queued", "user_retry"))


async def test_the_test_message_reaches_the_given_url_and_private_ones_are_refused(
    api_only: Optio, receiver: Receiver
) -> None:
    sent = await api_only.client.post("/api/slack/test", json={"webhookUrl": receiver.url})
    assert sent.status_code == 200 and sent.json() == {"ok": True, "message": "Test message sent"}
    assert "Test notification" in json.loads(receiver.requests[0].body)["text"]
    blocked = await api_only.client.post(
        "/api/slack/test", json={"webhookUrl": "http://192.168.1.1/hook"}
    )
    assert blocked.json()["ok"] is False and "private" in blocked.json()["error"]
    missing = await api_only.client.post("/api/slack/test", json={})
    assert missing.status_code == 400
    status = (await api_only.client.get("/api/slack/status")).json()
    assert status == {"globalWebhookConfigured": False}
