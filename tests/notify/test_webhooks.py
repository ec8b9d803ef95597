"""Outgoing webhooks: CRUD with a write-only secret, the SSRF guard, signed deliveries
retried with backoff through Temporal, and every attempt in the delivery log."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from tests.blueprints.conftest import create_standalone
from tests.conftest import Optio
from tests.lifecycle_helpers import create_task, wait_for_state
from tests.notify.receiver import Receiver

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("postgresql")

SECRET = "s3cret-for-tests"


async def create_webhook(optio: Optio, url: str, **fields: Any) -> dict[str, Any]:
    body = {"url": url, "events": ["task.failed"], "secret": SECRET, **fields}
    response = await optio.client.post("/api/webhooks", json=body)
    assert response.status_code == 201, response.text
    webhook: dict[str, Any] = response.json()["webhook"]
    return webhook


async def test_crud_masks_the_secret_and_refuses_private_targets(
    api_only: Optio, receiver: Receiver
) -> None:
    client = api_only.client
    hook = await create_webhook(api_only, receiver.url, description="ci")
    assert hook["secret"] == "••••••" and SECRET not in json.dumps(hook)
    listed = (await client.get("/api/webhooks")).json()["webhooks"]
    assert [w["id"] for w in listed] == [hook["id"]] and listed[0]["secret"] == "••••••"

    # 127.0.0.1 is allowed by this test's setting; other private targets are not.
    for url in ("http://10.0.0.5/hook", "http://169.254.169.254/latest", "http://[::1]:80/x"):
        refused = await client.post("/api/webhooks", json={"url": url, "events": ["task.failed"]})
        assert refused.status_code == 400, url
        assert "private, loopback or link-local" in refused.json()["error"]
    bad = await client.post("/api/webhooks", json={"url": "ftp://example.com", "events": ["x"]})
    assert bad.status_code in (400, 422)
    none = await client.post("/api/webhooks", json={"url": receiver.url, "events": []})
    assert none.status_code in (400, 422)

    patched = await client.patch(
        f"/api/webhooks/{hook['id']}", json={"secret": None, "active": False}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["webhook"]["secret"] is None
    assert patched.json()["webhook"]["active"] is False
    moved = await client.patch(f"/api/webhooks/{hook['id']}", json={"url": "http://10.1.2.3/"})
    assert moved.status_code == 400

    # Another workspace sees nothing of it.
    other = (await client.post("/api/workspaces", json={"name": "Other", "slug": "other"})).json()
    elsewhere = {"x-workspace-id": other["workspace"]["id"]}
    assert (await client.get(f"/api/webhooks/{hook['id']}", headers=elsewhere)).status_code == 404
    assert (await client.get("/api/webhooks", headers=elsewhere)).json()["webhooks"] == []
    gone = await client.delete(f"/api/webhooks/{hook['id']}", headers=elsewhere)
    assert gone.status_code == 404
    # Signed out: refused, not served as a public receiver.
    assert (await api_only.anon.get("/api/webhooks")).status_code == 401
    assert (await api_only.anon.delete(f"/api/webhooks/{hook['id']}")).status_code == 401

    assert (await client.delete(f"/api/webhooks/{hook['id']}")).status_code == 204
    assert (await client.get(f"/api/webhooks/{hook['id']}")).status_code == 404


def verify(body: bytes, headers: dict[str, str]) -> None:
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-optio-signature"], expected)
    stamp = headers["x-optio-timestamp"]
    signed = f"{stamp}.".encode() + body
    v1 = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert headers["x-optio-signature-256"] == f"t={stamp},v1={v1}"


async def test_a_failed_task_is_delivered_signed_and_retried_until_accepted(
    optio: Optio, receiver: Receiver, make_repo: Any
) -> None:
    hook = await create_webhook(optio, receiver.url, events=["task.failed", "task.completed"])
    receiver.statuses = [500, 500]  # down twice, then up
    repo: Path = make_repo()
    task = await create_task(optio.client, repo, "echo broken >&2; exit 3", maxRetries=0)
    await wait_for_state(optio.client, task["id"], "failed")

    requests = await receiver.wait_for(3)
    assert len({r.headers["x-optio-delivery"] for r in requests}) == 1  # one delivery
    assert [r.headers["x-optio-attempt"] for r in requests] == ["1", "2", "3"]
    assert {r.body for r in requests} == {requests[0].body}  # the same event each time
    for r in requests:
        verify(r.body, r.headers)
        assert r.headers["x-optio-event"] == "task.failed"
        assert r.headers["user-agent"] == "Optio-Webhooks/1.0"
    payload = json.loads(requests[0].body)
    assert payload["event"] == "task.failed"
    assert payload["data"]["taskId"] == task["id"]
    assert payload["data"]["toState"] == "failed" and payload["data"]["fromState"] == "running"
    assert "exited with code 3" in payload["data"]["errorMessage"]
    # Exponential backoff from 0.3 s: the second wait is about twice the first.
    first, second = (requests[1].at - requests[0].at), (requests[2].at - requests[1].at)
    assert first >= 0.25 and second >= 0.5, (first, second)

    log = (await optio.client.get(f"/api/webhooks/{hook['id']}/deliveries")).json()
    attempts = sorted(log["deliveries"], key=lambda d: d["attempt"])
    assert [(d["attempt"], d["statusCode"], d["success"]) for d in attempts] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert attempts[0]["error"] == "The receiver answered HTTP 500"
    assert attempts[0]["responseBody"] == "receiver down"
    assert len(receiver.requests) == 3  # delivered once, not again


async def test_the_test_endpoint_delivers_once_and_answers_the_attempt(
    optio: Optio, receiver: Receiver
) -> None:
    hook = await create_webhook(optio, receiver.url)
    sent = await optio.client.post(f"/api/webhooks/{hook['id']}/test", json={})
    assert sent.status_code == 200, sent.text
    delivery = sent.json()["delivery"]
    assert delivery["success"] is True and delivery["statusCode"] == 200
    (request,) = receiver.requests
    verify(request.body, request.headers)
    assert json.loads(request.body)["event"] == "test"

    receiver.statuses = [503]
    failed = (await optio.client.post(f"/api/webhooks/{hook['id']}/test", json={})).json()
    assert failed["delivery"]["success"] is False and failed["delivery"]["statusCode"] == 503
    assert len(receiver.requests) == 2  # a test is not retried


async def test_standalone_runs_emit_workflow_run_events(optio: Optio, receiver: Receiver) -> None:
    await create_webhook(
        optio, receiver.url, events=["workflow_run.started", "workflow_run.completed"]
    )
    job = await create_standalone(
        optio.client, prompt='echo \'optio-usage {"costUsd": "0.03"}\'\necho done'
    )
    started = await optio.client.post(f"/api/tasks/{job['id']}/runs", json={"params": {}})
    assert started.status_code == 202, started.text
    run_id = started.json()["runId"]
    requests = await receiver.wait_for(2)
    bodies = sorted((json.loads(r.body) for r in requests), key=lambda b: b["event"])
    assert [b["event"] for b in bodies] == ["workflow_run.completed", "workflow_run.started"]
    done = bodies[0]["data"]
    assert done["runId"] == run_id and done["state"] == "completed"
    assert done["workflowName"] == "report" and done["costUsd"] == "0.03"
    assert done["durationMs"] is not None and done["fromState"] == "running"
