"""Webhook triggers: POST /api/hooks/<path>, signed with X-Optio-Signature."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from core.hook_signing import sign
from tests.blueprints.conftest import create_blueprint, create_standalone, runs_of
from tests.conftest import Optio
from tests.lifecycle_helpers import wait_for_state

MakeRepo = Callable[..., Path]
SECRET = "s3cret-s3cret"


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    """The headers a sender adds (docs/blueprints.md): a fresh delivery, signed now."""
    stamp, delivery = str(int(time.time())), uuid.uuid4().hex
    return {
        "X-Optio-Timestamp": stamp,
        "X-Optio-Delivery": delivery,
        "X-Optio-Signature": sign(secret, timestamp=stamp, delivery=delivery, body=body),
    }


async def test_a_signed_webhook_starts_a_run_with_mapped_params(
    bp: Optio, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    blueprint = await create_blueprint(
        bp.client, repo, title="Fix #{{issue}}", prompt="echo {{issue}} by {{who}} > fix.txt"
    )
    created = await bp.client.post(
        f"/api/tasks/{blueprint['id']}/triggers",
        json={
            "type": "webhook",
            "config": {"path": "ci/failed", "secret": SECRET},
            "paramMapping": {"issue": "$.issue.number", "who": "$.sender.login"},
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["trigger"]["config"] == {"path": "ci/failed", "secret": "********"}

    body = json.dumps({"issue": {"number": 42}, "sender": {"login": "ada"}}).encode()
    unsigned = await bp.anon.post("/api/hooks/ci/failed", content=body)
    assert unsigned.status_code == 401
    forged = await bp.anon.post("/api/hooks/ci/failed", content=body, headers=signed(body, "wrong"))
    assert forged.status_code == 401
    assert await runs_of(bp.client, blueprint["id"]) == []  # nothing started

    accepted = await bp.anon.post("/api/hooks/ci/failed", content=body, headers=signed(body))
    assert accepted.status_code == 202, accepted.text
    task_id = accepted.json()["runId"]
    task = (await wait_for_state(bp.client, task_id, "pr_opened"))["task"]
    # A script's parameters reach it as environment variables (core.script_params).
    assert task["title"] == "Fix #42" and task["prompt"] == (
        "export OPTIO_PARAM_issue=42\nexport OPTIO_PARAM_who=ada\n"
        'echo "${OPTIO_PARAM_issue}" by "${OPTIO_PARAM_who}" > fix.txt'
    )
    assert task["metadata"]["params"] == {"issue": 42, "who": "ada"}
    assert task["metadata"]["triggerId"] == created.json()["trigger"]["id"]

    assert (await bp.anon.post("/api/hooks/nope", content=b"{}")).status_code == 404


async def test_a_public_webhook_passes_the_whole_body_to_a_standalone_run(
    bp: Optio,
) -> None:
    job = await create_standalone(bp.client, prompt="echo got {{city}}")
    # No secret: only an admin (bp.client is one) may make it public.
    public = {"path": "weather", "public": True}
    created = await bp.client.post(
        f"/api/tasks/{job['id']}/triggers", json={"type": "webhook", "config": public}
    )
    assert created.status_code == 201, created.text
    accepted = await bp.anon.post("/api/hooks/weather", json={"city": "Oslo"})
    assert accepted.status_code == 202, accepted.text
    run_id = accepted.json()["runId"]
    runs = await runs_of(bp.client, job["id"])
    assert [r["id"] for r in runs] == [run_id] and runs[0]["params"] == {"city": "Oslo"}

    # Disabled: the path answers 404 and starts nothing.
    trigger_id = created.json()["trigger"]["id"]
    await bp.client.patch(f"/api/tasks/{job['id']}/triggers/{trigger_id}", json={"enabled": False})
    assert (await bp.anon.post("/api/hooks/weather", json={})).status_code == 404
    assert len(await runs_of(bp.client, job["id"])) == 1
