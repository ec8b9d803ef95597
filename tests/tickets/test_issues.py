"""GET /api/issues and POST /api/issues/assign against the GitHub and GitLab doubles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from tests.conftest import Optio
from tests.forges.conftest import OPTIO_TOKEN
from tests.forges.github_double import GitHubDouble
from tests.lifecycle_helpers import triggers, wait_for_state
from tests.tickets.helpers import add_jira, eventually, sync
from tests.tickets.jira_double import JiraDouble

# The subject here is not the storage: one engine is enough (docs/testing.md#one-engine-or-both).
pytestmark = pytest.mark.engines("postgresql")

MakeRepo = Callable[..., Path]


async def connect_github(
    optio: Optio, github: GitHubDouble, make_repo: MakeRepo, **settings: Any
) -> tuple[Any, dict[str, Any]]:
    repo = github.add_repo("acme", "app", make_repo())
    body = {
        "repoUrl": github.clone_url(repo),
        "gitPlatform": "github",
        "forgeApiUrl": github.api_url,
        "defaultAgentType": "script",
        **settings,
    }
    response = await optio.client.post("/api/repos", json=body)
    assert response.status_code == 201, response.text
    return repo, response.json()["repo"]


async def test_issues_list_and_assign(
    jira: JiraDouble, github: GitHubDouble, optio: Optio, make_repo: MakeRepo
) -> None:
    gh_repo, repo = await connect_github(optio, github, make_repo)
    bug = github.add_issue(gh_repo, "Crash on start", body="true", labels=["bug"])
    github.add_issue(gh_repo, "Old one")["state"] = "closed"
    github.repos["acme/app"].comments[bug["number"]] = [
        {"id": 1, "body": "Seen on Linux too", "user": {"login": "bob"}}
    ]
    await add_jira(optio, jira, repo["repoUrl"])
    ticket = jira.add_issue("OPS", "Jira side", description="true", labels=["optio"])

    # Without a forge token the assignment cannot label or comment: 503, nothing created.
    body = {"issueNumber": bug["number"], "repoId": repo["id"]}
    refused = await optio.client.post("/api/issues/assign", json=body)
    assert refused.status_code == 503 and "GITHUB_TOKEN" in refused.text
    secret = {"name": "GITHUB_TOKEN", "value": OPTIO_TOKEN}
    assert (await optio.client.post("/api/secrets", json=secret)).status_code == 201

    listed = (await optio.client.get("/api/issues")).json()
    assert listed["errors"] == []
    by_id = {i["externalId"]: i for i in listed["issues"]}
    assert set(by_id) == {f"acme/app#{bug['number']}", ticket.key}
    gh = by_id[f"acme/app#{bug['number']}"]
    assert gh["source"] == "github" and gh["number"] == bug["number"] and not gh["hasOptioLabel"]
    assert gh["repo"]["id"] == repo["id"] and gh["optioTask"] is None
    assert by_id[ticket.key]["source"] == "jira" and by_id[ticket.key]["repo"]["providerId"]

    assigned = await optio.client.post("/api/issues/assign", json=body)
    assert assigned.status_code == 201, assigned.text
    task = assigned.json()["task"]
    assert task["prompt"] == "Crash on start\n\ntrue\n\n## Comments\n- bob: Seen on Linux too"
    assert task["metadata"]["issueNumber"] == bug["number"]
    assert task["metadata"]["issueUrl"] == bug["html_url"]
    again = await optio.client.post("/api/issues/assign", json=body)
    assert again.status_code == 200 and again.json()["task"]["id"] == task["id"]
    assert {"name": "optio"} in bug["labels"]
    confirmations = [
        c for c in github.repos["acme/app"].comments[bug["number"]]
        if "is working on this issue" in c["body"]
    ]  # fmt: skip
    assert len(confirmations) == 1 and task["id"] in confirmations[0]["body"]
    await wait_for_state(optio.client, task["id"], "queued", "provisioning", "running",
                         "pr_opened", "needs_attention", "completed", "failed")  # fmt: skip
    assert (await triggers(optio.client, task["id"]))[0] == ("queued", "issue_assigned")

    relisted = (await optio.client.get("/api/issues", params={"repoId": repo["id"]})).json()
    assert len(relisted["issues"]) == 1, relisted
    (only,) = relisted["issues"]
    assert only["optioTask"]["taskId"] == task["id"] and only["hasOptioLabel"]
    closed = await optio.client.get("/api/issues", params={"repoId": repo["id"], "state": "closed"})
    assert [i["title"] for i in closed.json()["issues"]] == ["Old one"]
    missing = await optio.client.post(
        "/api/issues/assign", json={"issueNumber": 999, "repoId": repo["id"]}
    )
    assert missing.status_code == 404


async def test_a_github_ticket_is_closed_when_its_task_completes(
    github: GitHubDouble, optio: Optio, make_repo: MakeRepo
) -> None:
    optio.settings.github_token = SecretStr(OPTIO_TOKEN)
    gh_repo, repo = await connect_github(optio, github, make_repo, autoMerge=True)
    issue = github.add_issue(gh_repo, "Add a file", body="echo ok > f", labels=["optio"])
    config = {"owner": "acme", "repo": "app", "token": OPTIO_TOKEN, "apiUrl": github.api_url}
    response = await optio.client.post(
        "/api/tickets/providers", json={"source": "github", "config": config}
    )
    assert response.status_code == 201, response.text
    answer = await sync(optio)
    (created,) = answer["created"]
    assert created["externalId"] == f"acme/app#{issue['number']}"
    assert created["repoUrl"] == repo["repoUrl"]
    await wait_for_state(optio.client, created["taskId"], "completed", timeout=120)
    await eventually(lambda: issue["state"] == "closed", what="the GitHub issue closed")
    done = [c for c in gh_repo.comments[issue["number"]] if "completed this issue" in c["body"]]
    assert len(done) == 1 and created["taskId"] in done[0]["body"]
