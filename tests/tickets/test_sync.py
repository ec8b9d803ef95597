"""Ticket providers and sync through the API, the worker and Temporal, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from store.db import create_engine, session_factory
from store.secrets import Secret
from temporal.ticket_schedules import sync_schedule_id
from tests.conftest import Optio
from tests.lifecycle_helpers import triggers, wait_for_state
from tests.tickets.conftest import JIRA_TOKEN
from tests.tickets.helpers import add_jira, connect_repo, eventually, sync
from tests.tickets.jira_double import JiraDouble

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("postgresql")

MakeRepo = Callable[..., Path]


async def test_provider_credentials_are_encrypted_and_never_returned(
    jira: JiraDouble, optio: Optio, make_repo: MakeRepo
) -> None:
    repo = await connect_repo(optio, make_repo())
    provider = await add_jira(optio, jira, repo["repoUrl"])
    assert provider["credentials"] == ["apiToken"]
    assert JIRA_TOKEN not in str(provider) and "apiToken" not in provider["config"]
    listed = (await optio.client.get("/api/tickets/providers")).json()["providers"]
    assert [p["id"] for p in listed] == [provider["id"]] and JIRA_TOKEN not in str(listed)
    # At rest: one secret row in the provider's scope, holding ciphertext only.
    engine = create_engine(optio.settings.database_url_resolved)
    async with session_factory(engine)() as session:
        rows = list((await session.execute(select(Secret))).scalars())
    await engine.dispose()
    assert [(r.name, r.scope) for r in rows] == [
        (f"ticket-provider:{provider['id']}", "ticket-provider")
    ]
    assert JIRA_TOKEN.encode() not in rows[0].ciphertext
    # A config change keeps the stored token unless a new one is sent.
    response = await optio.client.patch(
        f"/api/tickets/providers/{provider['id']}", json={"config": {"label": "bot"}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["provider"]["config"]["label"] == "bot"
    assert response.json()["provider"]["credentials"] == ["apiToken"]
    # The schedule runs TicketSyncWorkflow at the configured interval.
    described = await optio.temporal.get_schedule_handle(
        sync_schedule_id(provider["id"])
    ).describe()
    assert described.schedule.spec.intervals[0].every.total_seconds() == 3600
    assert (
        await optio.client.delete(f"/api/tickets/providers/{provider['id']}")
    ).status_code == 204
    assert (await optio.client.get("/api/tickets/providers")).json()["providers"] == []


async def test_bad_provider_input_is_refused_clearly(
    jira: JiraDouble, optio: Optio, make_repo: MakeRepo
) -> None:
    async def post(body: dict[str, object]) -> tuple[int, str]:
        response = await optio.client.post("/api/tickets/providers", json=body)
        return response.status_code, response.text

    status, text = await post(
        {"source": "jira", "config": {"baseUrl": jira.base_url, "email": "a@b.c"}}
    )
    assert status == 400 and "apiToken" in text
    status, text = await post(
        {
            "source": "jira",
            "config": {
                "baseUrl": jira.base_url,
                "email": "a@b.c",
                "apiToken": "t",
                "label": 'optio" OR project = X',
            },  # fmt: skip
        }
    )
    assert status == 400 and "config.label" in text
    status, text = await post({"source": "trello", "config": {}})
    assert status in (400, 422)
    # Loopback trackers are refused unless the instance allows private hosts.
    optio.settings.ticket_allow_private_hosts = False
    status, text = await post(
        {"source": "jira", "config": {"baseUrl": jira.base_url, "email": "a@b.c", "apiToken": "t"}}
    )
    assert status == 400 and "private or local" in text
    assert (await optio.client.patch("/api/tickets/providers/nope", json={})).status_code == 404


async def test_a_sync_run_twice_creates_each_task_once(
    jira: JiraDouble, optio: Optio, make_repo: MakeRepo
) -> None:
    repo = await connect_repo(optio, make_repo(), maxConcurrentTasks=1)
    provider = await add_jira(optio, jira, repo["repoUrl"])
    one = jira.add_issue("OPS", "First", description="true", labels=["optio"],
                         comments=["Please keep it short"])  # fmt: skip
    two = jira.add_issue("OPS", "Second", description="true", labels=["optio", "codex"])
    jira.add_issue("OPS", "Not labelled", labels=["later"])
    first = await sync(optio)
    assert first["synced"] == 2
    assert {c["externalId"] for c in first["created"]} == {one.key, two.key}
    second = await sync(optio)
    assert second["synced"] == 0 and second["providers"][0]["alreadyLinked"] == 2
    tasks = {c["externalId"]: c["taskId"] for c in first["created"]}
    task = (await optio.client.get(f"/api/tasks/{tasks[one.key]}")).json()["task"]
    assert (
        task["prompt"]
        == "First\n\ntrue\n\n## Comments\n- reporter@example.com: Please keep it short"
    )
    assert task["agentType"] == "script"
    assert task["metadata"]["ticketUrl"] == f"{jira.base_url}/browse/{one.key}"
    codex = (await optio.client.get(f"/api/tasks/{tasks[two.key]}")).json()["task"]
    assert codex["agentType"] == "codex"  # the ticket's label picks the agent
    await wait_for_state(optio.client, tasks[one.key], "queued", "provisioning", "running",
                         "needs_attention", "completed", "failed")  # fmt: skip
    assert (await triggers(optio.client, tasks[one.key]))[0] == ("queued", "ticket_sync")
    # One "working on it" comment per ticket, though the sync ran twice.
    for issue in (one, two):
        said = [c for c in jira.comment_texts(issue.key) if "is working on this issue" in c]
        assert len(said) == 1 and tasks[issue.key] in said[0]
    listed = (await optio.client.get("/api/tickets/providers")).json()["providers"][0]
    assert listed["id"] == provider["id"] and listed["lastSyncedAt"] is not None


async def test_a_provider_failing_five_times_is_disabled_until_patched(
    jira: JiraDouble, optio: Optio, make_repo: MakeRepo
) -> None:
    repo = await connect_repo(optio, make_repo())
    provider = await add_jira(optio, jira, repo["repoUrl"], token="revoked-token")
    jira.add_issue("OPS", "Waiting", description="true", labels=["optio"])
    for attempt in range(1, 6):
        answer = await sync(optio)
        result = answer["providers"][0]
        assert result["error"] and "refused the credentials" in result["error"]
        assert result["disabled"] == (attempt == 5)
    row = (await optio.client.get("/api/tickets/providers")).json()["providers"][0]
    assert row["enabled"] is False and row["consecutiveFailures"] == 5
    assert row["hasAuthFailure"] is True and "401" in row["lastError"]
    handle = optio.temporal.get_schedule_handle(sync_schedule_id(provider["id"]))
    assert (await handle.describe()).schedule.state.paused
    assert (await sync(optio)) == {"synced": 0, "created": [], "providers": []}
    # Fixing the token and re-enabling resumes syncing from a clean count.
    response = await optio.client.patch(
        f"/api/tickets/providers/{provider['id']}",
        json={"enabled": True, "config": {"apiToken": JIRA_TOKEN}},
    )
    assert response.status_code == 200, response.text
    fixed = response.json()["provider"]
    assert fixed["enabled"] and fixed["consecutiveFailures"] == 0 and fixed["lastError"] is None
    assert not (await handle.describe()).schedule.state.paused
    assert (await sync(optio))["synced"] == 1


async def test_completion_moves_the_jira_ticket_to_done(
    jira: JiraDouble, optio: Optio, make_repo: MakeRepo
) -> None:
    repo = await connect_repo(optio, make_repo(), autoMerge=True)
    await add_jira(optio, jira, repo["repoUrl"])
    issue = jira.add_issue(
        "OPS", "Write the ticket file", description="echo done > ticket.txt", labels=["optio"]
    )
    task_id = (await sync(optio))["created"][0]["taskId"]
    await wait_for_state(optio.client, task_id, "completed", timeout=120)
    await eventually(lambda: issue.status == "Done", what="the Jira issue moved to Done")
    texts = jira.comment_texts(issue.key)
    assert any("completed this issue" in t and task_id in t for t in texts)
    assert sum("completed this issue" in t for t in texts) == 1


async def test_another_workspace_cannot_see_or_change_a_provider(
    jira: JiraDouble, optio: Optio, make_repo: MakeRepo
) -> None:
    repo = await connect_repo(optio, make_repo())
    provider = await add_jira(optio, jira, repo["repoUrl"])
    created = await optio.client.post("/api/workspaces", json={"name": "Other", "slug": "other"})
    assert created.status_code == 201, created.text
    other = created.json()["workspace"]["id"]
    switched = await optio.client.post(f"/api/workspaces/{other}/switch")
    assert switched.status_code == 200, switched.text
    assert (await optio.client.get("/api/tickets/providers")).json()["providers"] == []
    for method in ("patch", "delete"):
        kwargs = {"json": {"enabled": False}} if method == "patch" else {}
        response = await getattr(optio.client, method)(
            f"/api/tickets/providers/{provider['id']}", **kwargs
        )
        assert response.status_code == 404
