"""Linear and Notion end to end, and `ticket` triggers of blueprints fired by the sync."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.blueprints.conftest import eventually as poll
from tests.conftest import Optio
from tests.lifecycle_helpers import wait_for_state
from tests.tickets.conftest import LINEAR_KEY, NOTION_DB, NOTION_TOKEN
from tests.tickets.helpers import add_jira, connect_repo, eventually, sync
from tests.tickets.jira_double import JiraDouble
from tests.tickets.linear_double import LinearDouble
from tests.tickets.notion_double import NotionDouble

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("postgresql")

MakeRepo = Callable[..., Path]


async def add_provider(optio: Optio, source: str, config: dict[str, object]) -> str:
    response = await optio.client.post(
        "/api/tickets/providers", json={"source": source, "config": config}
    )
    assert response.status_code == 201, response.text
    provider_id: str = response.json()["provider"]["id"]
    return provider_id


async def test_linear_and_notion_tickets_become_tasks_and_are_completed(
    linear: LinearDouble, notion: NotionDouble, optio: Optio, make_repo: MakeRepo
) -> None:
    repo = await connect_repo(optio, make_repo(), autoMerge=True)
    await add_provider(
        optio, "linear", {"apiKey": LINEAR_KEY, "teamId": "team-eng", "repoUrl": repo["repoUrl"]}
    )
    await add_provider(
        optio,
        "notion",
        {"apiKey": NOTION_TOKEN, "databaseId": NOTION_DB, "repoUrl": repo["repoUrl"]},
    )
    issue = linear.add_issue("Linear file", description="echo l > linear.txt", labels=["optio"])
    page = notion.add_page("Notion file", body="echo n > notion.txt", tags=["optio"])
    # Both sync runs meet a rate limit (a zero wait: the clock is not what is tested here).
    linear.throttle_next = notion.throttle_next = 1
    linear.reset_in, notion.retry_after = 0, "0"
    answer = await sync(optio)
    assert answer["synced"] == 2
    assert linear.throttle_next == notion.throttle_next == 0  # both were met, and waited out
    by_source = {p["source"]: p for p in answer["providers"]}
    assert by_source["linear"]["created"][0]["externalId"] == issue.id
    assert by_source["notion"]["created"][0]["externalId"] == page.id
    assert (await sync(optio))["synced"] == 0
    for created in answer["created"]:
        await wait_for_state(optio.client, created["taskId"], "completed", timeout=120)
    await eventually(lambda: issue.state == "Done", what="the Linear issue completed")
    await eventually(lambda: page.status == "Done", what="the Notion page set to Done")
    assert sum("completed this issue" in c["body"] for c in issue.comments) == 1
    assert sum("completed this issue" in t for t in notion.comment_texts(page.id)) == 1


async def test_ticket_triggers_fire_their_blueprint_once_per_ticket(
    jira: JiraDouble, optio: Optio, make_repo: MakeRepo
) -> None:
    repo = await connect_repo(optio, make_repo())
    created = await optio.client.post(
        "/api/tasks",
        json={
            "type": "repo-blueprint",
            "name": "triage",
            "title": "Triage {{ticketExternalId}}",
            "prompt": "echo '{{ticketTitle}}' > triage.txt",
            "repoUrl": repo["repoUrl"],
            "agentType": "script",
        },
    )
    assert created.status_code == 201, created.text
    blueprint = created.json()["task"]
    response = await optio.client.post(
        f"/api/tasks/{blueprint['id']}/triggers",
        json={"type": "ticket", "config": {"source": "jira", "labels": ["urgent"]}},
    )
    assert response.status_code == 201, response.text
    await add_jira(optio, jira, repo["repoUrl"])
    hot = jira.add_issue("OPS", "Prod is down", description="true", labels=["optio", "urgent"])
    jira.add_issue("OPS", "Typo", description="true", labels=["optio"])
    assert (await sync(optio))["synced"] == 2
    assert (await sync(optio))["synced"] == 0

    async def one_run() -> list[dict[str, object]] | None:
        response = await optio.client.get(f"/api/tasks/{blueprint['id']}/runs")
        assert response.status_code == 200, response.text
        found: list[dict[str, object]] = response.json()["runs"]
        return found if found else None

    (run,) = await poll(one_run, timeout=60)

    task = (await optio.client.get(f"/api/tasks/{run['id']}")).json()["task"]
    assert task["title"] == f"Triage {hot.key}"
    assert task["metadata"]["params"]["ticketLabels"] == "optio,urgent"
    assert task["metadata"]["params"]["ticketUrl"] == f"{jira.base_url}/browse/{hot.key}"
