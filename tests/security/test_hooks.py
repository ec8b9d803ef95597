"""Webhook triggers and forge webhooks: no anonymous trigger, no replay.

The attacks of issue 13: a member made an unsigned webhook trigger on a `script`
blueprint and anyone could fire it; a signed POST /api/hooks/<path> replayed verbatim
started a new run every time; a GitHub delivery without X-GitHub-Delivery skipped the
duplicate check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from core.hook_signing import sign
from store.blueprints import Trigger
from store.db import create_engine, session_factory, transaction
from tests.conftest import Optio, cancel_open_workflows
from tests.identity.conftest import Person

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("postgresql")

MakeRepo = Callable[..., Path]
SECRET = "hook-secret-123"


@pytest.fixture
async def hooks(api_only: Optio) -> AsyncIterator[Optio]:
    """The API alone: runs a hook starts are workflows nobody works on, ended after."""
    yield api_only
    await cancel_open_workflows(api_only)


async def script_blueprint(client: Any, repo: Path, name: str = "echo") -> str:
    body = {
        "type": "repo-blueprint",
        "name": name,
        "prompt": "echo {{what}} > f",
        "repoUrl": str(repo),
        "agentType": "script",
    }
    response = await client.post("/api/tasks", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["task"]["id"])


async def runs(optio: Optio, blueprint_id: str) -> int:
    response = await optio.client.get(f"/api/tasks/{blueprint_id}/runs")
    assert response.status_code == 200, response.text
    return len(response.json()["runs"])


def headers(
    body: bytes, *, stamp: int | None = None, delivery: str | None = None
) -> dict[str, str]:
    ts = str(int(time.time()) if stamp is None else stamp)
    delivery = delivery or uuid.uuid4().hex
    return {
        "X-Optio-Timestamp": ts,
        "X-Optio-Delivery": delivery,
        "X-Optio-Signature": sign(SECRET, timestamp=ts, delivery=delivery, body=body),
    }


async def test_a_member_cannot_make_an_anonymous_webhook_trigger(
    hooks: Optio, people: Callable[..., Any], make_repo: MakeRepo
) -> None:
    member: Person = await people("Mel", member_of=hooks.workspace_id)
    blueprint = await script_blueprint(member.client, make_repo())
    unsigned = {"type": "webhook", "config": {"path": "pwn"}}
    for path in (f"/api/tasks/{blueprint}/triggers", f"/api/task-configs/{blueprint}/triggers"):
        refused = await member.client.post(path, json=unsigned)
        assert refused.status_code == 400, refused.text
        assert "secret" in refused.json()["error"]
    public = {"type": "webhook", "config": {"path": "pwn", "public": True}}
    forbidden = await member.client.post(f"/api/tasks/{blueprint}/triggers", json=public)
    assert forbidden.status_code == 403, forbidden.text
    assert (
        await hooks.anon.post("/api/hooks/pwn", json={"what": "x; touch pwned"})
    ).status_code == 404
    assert await runs(hooks, blueprint) == 0

    # An admin may say so explicitly; the member cannot then re-aim it.
    made = await hooks.client.post(f"/api/tasks/{blueprint}/triggers", json=public)
    assert made.status_code == 201, made.text
    trigger = made.json()["trigger"]
    assert trigger["config"] == {"path": "pwn", "public": True}
    remap = await member.client.patch(
        f"/api/tasks/{blueprint}/triggers/{trigger['id']}", json={"paramMapping": {"what": "$.x"}}
    )
    assert remap.status_code == 403, remap.text


async def test_a_trigger_saved_without_a_secret_before_the_upgrade_is_not_fired(
    hooks: Optio, make_repo: MakeRepo
) -> None:
    blueprint = await script_blueprint(hooks.client, make_repo())
    engine = create_engine(hooks.settings.database_url_resolved)
    async with transaction(session_factory(engine)) as session:
        session.add(
            Trigger(
                workspace_id=hooks.workspace_id,
                target_type="task_config",
                target_id=blueprint,
                type="webhook",
                config={"path": "legacy"},
                webhook_path="legacy",
            )
        )
    await engine.dispose()
    fired = await hooks.anon.post("/api/hooks/legacy", json={"what": "x; touch pwned; echo y"})
    assert fired.status_code == 403, fired.text
    assert await runs(hooks, blueprint) == 0


async def test_a_signed_delivery_cannot_be_replayed(hooks: Optio, make_repo: MakeRepo) -> None:
    blueprint = await script_blueprint(hooks.client, make_repo())
    made = await hooks.client.post(
        f"/api/tasks/{blueprint}/triggers",
        json={"type": "webhook", "config": {"path": "deploy", "secret": SECRET}},
    )
    assert made.status_code == 201, made.text
    body = json.dumps({"what": "release"}).encode()
    signed = headers(body)
    first = await hooks.anon.post("/api/hooks/deploy", content=body, headers=signed)
    assert first.status_code == 202 and "runId" in first.json(), first.text

    replay = await hooks.anon.post("/api/hooks/deploy", content=body, headers=signed)
    assert replay.status_code == 202, replay.text
    assert replay.json() == {"accepted": False, "duplicate": True}
    # The id is signed: a fresh id on the captured signature is a forgery.
    new_id = {**signed, "X-Optio-Delivery": uuid.uuid4().hex}
    assert (
        await hooks.anon.post("/api/hooks/deploy", content=body, headers=new_id)
    ).status_code == 401
    # So is the time: an old delivery, even correctly signed, is stale.
    stale = headers(body, stamp=int(time.time()) - 301)
    assert (
        await hooks.anon.post("/api/hooks/deploy", content=body, headers=stale)
    ).status_code == 401
    # The body-only signature of before carries no time and no id: refused.
    bare = {"X-Optio-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
    assert (
        await hooks.anon.post("/api/hooks/deploy", content=body, headers=bare)
    ).status_code == 401
    assert await runs(hooks, blueprint) == 1

    # A new delivery is a new run.
    second = await hooks.anon.post("/api/hooks/deploy", content=body, headers=headers(body))
    assert second.status_code == 202 and "runId" in second.json(), second.text
    assert await runs(hooks, blueprint) == 2


async def test_forge_deliveries_without_an_id_are_refused(api_only: Optio) -> None:
    settings = api_only.settings
    settings.github_webhook_secret = SecretStr("gh-hook-secret")
    settings.gitlab_webhook_secret = SecretStr("gl-hook-secret")
    for url in ("https://github.com/acme/app", "https://gitlab.com/acme/app"):
        connected = await api_only.client.post("/api/repos", json={"repoUrl": url})
        assert connected.status_code == 201, connected.text

    payload = json.dumps(
        {"action": "closed", "number": 1, "repository": {"full_name": "acme/app"}}
    ).encode()
    digest = hmac.new(b"gh-hook-secret", payload, hashlib.sha256).hexdigest()
    github = {"X-GitHub-Event": "pull_request", "X-Hub-Signature-256": f"sha256={digest}"}
    for _ in range(2):
        anonymous = await api_only.anon.post(
            "/api/webhooks/github", content=payload, headers=github
        )
        assert anonymous.status_code == 400, anonymous.text
        assert "X-GitHub-Delivery".lower() in anonymous.json()["error"].lower()
    delivered = {**github, "X-GitHub-Delivery": str(uuid.uuid4())}
    ok = await api_only.anon.post("/api/webhooks/github", content=payload, headers=delivered)
    assert ok.status_code == 202 and ok.json()["accepted"] is True, ok.text
    again = await api_only.anon.post("/api/webhooks/github", content=payload, headers=delivered)
    assert again.json() == {"accepted": False, "duplicate": True}

    hook = {"object_kind": "push", "ref": "main", "project": {"path_with_namespace": "acme/app"}}
    # X-Gitlab-Webhook-UUID names the webhook, not the delivery: no id.
    gitlab = {
        "X-Gitlab-Event": "Push Hook",
        "X-Gitlab-Token": "gl-hook-secret",
        "X-Gitlab-Webhook-UUID": str(uuid.uuid4()),
    }
    missing = await api_only.anon.post("/api/webhooks/gitlab", json=hook, headers=gitlab)
    assert missing.status_code == 400, missing.text
    delivered = {**gitlab, "X-Gitlab-Event-UUID": str(uuid.uuid4())}
    ok = await api_only.anon.post("/api/webhooks/gitlab", json=hook, headers=delivered)
    assert ok.status_code == 202 and ok.json()["accepted"] is True, ok.text
