"""A GitHub "issue labelled" webhook syncs the GitHub ticket providers watching the
repository at once, instead of at their next scheduled sync."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from schemas.tickets import TicketSyncResult
from tests.conftest import Optio
from tests.forges.conftest import HOOK_SECRET, OPTIO_TOKEN
from tests.forges.github_double import GitHubDouble
from tests.tickets.test_issues import connect_github

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("postgresql")

MakeRepo = Callable[..., Path]


def labelled(issue: dict[str, Any], *labels: str) -> dict[str, Any]:
    return {
        "action": "labeled",
        "issue": {**issue, "labels": [{"name": name} for name in labels]},
        "label": {"name": labels[-1]},
        "repository": {"full_name": "acme/app"},
    }


async def tasks_titled(optio: Optio, title: str) -> list[dict[str, Any]]:
    response = await optio.client.get("/api/tasks", params={"limit": 100})
    assert response.status_code == 200, response.text
    return [t for t in response.json()["tasks"] if t["title"] == title]


async def test_a_labelled_issue_is_synced_at_once(
    github: GitHubDouble, optio: Optio, make_repo: MakeRepo
) -> None:
    optio.settings.github_webhook_secret = SecretStr(HOOK_SECRET)
    gh_repo, _repo = await connect_github(optio, github, make_repo)
    config = {"owner": "acme", "repo": "app", "token": OPTIO_TOKEN, "apiUrl": github.api_url}
    # A long interval: only the webhook can make the sync happen within the test.
    provider = {"source": "github", "config": config, "syncIntervalSeconds": 86_400}
    response = await optio.client.post("/api/tickets/providers", json=provider)
    assert response.status_code == 201, response.text

    other = github.add_issue(gh_repo, "Just a bug", body="true", labels=["bug"])
    raw, headers = github.signed("issues", labelled(other, "bug"))
    ignored = await optio.anon.post("/api/webhooks/github", content=raw, headers=headers)
    assert ignored.status_code == 202 and ignored.json()["ticketSyncs"] == 0, ignored.text

    issue = github.add_issue(gh_repo, "Crash on start", body="true", labels=["optio"])
    raw, headers = github.signed("issues", labelled(issue, "bug", "optio"))
    accepted = await optio.anon.post("/api/webhooks/github", content=raw, headers=headers)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["ticketSyncs"] == 1
    deadline = time.monotonic() + 60
    while not await tasks_titled(optio, "Crash on start"):
        assert time.monotonic() < deadline, "the labelled issue never became a task"
        await asyncio.sleep(0.2)
    replay = await optio.anon.post("/api/webhooks/github", content=raw, headers=headers)
    assert replay.json() == {"accepted": False, "duplicate": True}
    # A second delivery for the same issue (relabelled) syncs again and creates nothing twice.
    raw, headers = github.signed("issues", labelled(issue, "optio"))
    again = await optio.anon.post("/api/webhooks/github", content=raw, headers=headers)
    assert again.json()["ticketSyncs"] == 1
    assert len(await tasks_titled(optio, "Just a bug")) == 0

    # Once the relabel's sync has run, there is still one task for the issue.
    provider_id = response.json()["provider"]["id"]
    sync_id = f"ticket-sync-{provider_id}-hook-github-{headers['X-GitHub-Delivery']}"
    handle = optio.temporal.get_workflow_handle(sync_id, result_type=TicketSyncResult)
    result = await handle.result()
    assert result.created == [] and result.error is None, result
    assert len(await tasks_titled(optio, "Crash on start")) == 1
