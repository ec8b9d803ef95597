"""GitHub and GitLab issues as tickets, against the forge doubles (in process, over ASGI)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from integrations.tickets import ClientOptions, build_client, forge_client
from tests.forges.conftest import OPTIO_TOKEN
from tests.forges.github_double import GitHubDouble
from tests.forges.gitlab_double import GitLabDouble

MakeRepo = Callable[..., Path]


async def test_github_issues_with_the_label_page_by_page(
    tmp_path: Path, make_repo: MakeRepo
) -> None:
    gh = GitHubDouble(tmp_path / "gh", users={OPTIO_TOKEN: "optio-bot"})
    gh.base_url = "http://forge.test"
    repo = gh.add_repo("acme", "app", make_repo())
    wanted = [gh.add_issue(repo, f"bug {n}", body="b", labels=["optio"]) for n in range(130)]
    gh.add_issue(repo, "unlabelled")
    gh.add_issue(repo, "closed", labels=["optio"])["state"] = "closed"
    repo.comments[wanted[0]["number"]] = [{"id": 1, "body": "more info", "user": {"login": "bob"}}]
    client = build_client(
        "github",
        {"owner": "acme", "repo": "app", "apiUrl": gh.api_url},
        {"token": OPTIO_TOKEN},
        ClientOptions(transport=httpx.ASGITransport(app=gh.app)),
    )
    tickets = await client.actionable()
    assert [t.number for t in tickets] == [i["number"] for i in wanted]
    assert tickets[0].external_id == f"acme/app#{wanted[0]['number']}"
    assert [(c.author, c.body) for c in tickets[0].comments] == [("bob", "more info")]
    # 2 pages of issues + the comments of the one issue that has any.
    assert client.http.requests == 3
    first = tickets[0].external_id
    for _ in range(2):
        await client.complete(first, body="Done", key="task-9-done")
    await client.http.aclose()
    issue = repo.issues[wanted[0]["number"]]
    assert issue["state"] == "closed" and issue["state_reason"] == "completed"
    assert sum("task-9-done" in c["body"] for c in repo.comments[issue["number"]]) == 1


async def test_gitlab_issues_notes_labels_and_close(tmp_path: Path, make_repo: MakeRepo) -> None:
    gl = GitLabDouble(tmp_path / "gl", users={OPTIO_TOKEN: "optio-bot"})
    gl.base_url = "http://forge.test"
    project = gl.add_project("acme", "app", make_repo())
    wanted = [gl.add_issue(project, f"bug {n}", labels=["optio"]) for n in range(105)]
    gl.add_issue(project, "unlabelled")
    gl.add_note(project, "Issue", wanted[0]["iid"], author="alice", body="steps to reproduce")
    gl.add_note(project, "Issue", wanted[0]["iid"], author="alice", body="changed", system=True)
    transport = httpx.ASGITransport(app=gl.app)
    client = build_client(
        "gitlab",
        {"host": gl.base_url, "projectPath": "acme/app"},
        {"token": OPTIO_TOKEN},
        ClientOptions(transport=transport),
    )
    tickets = await client.actionable()
    assert len(tickets) == 105 and tickets[0].external_id == f"acme/app#{wanted[0]['iid']}"
    assert [c.body for c in tickets[0].comments] == ["steps to reproduce"]  # no system notes
    assert client.http.requests == 3  # 2 pages + the notes of the one issue with notes
    await client.complete(tickets[0].external_id, body="Done", key="task-8-done")
    await client.http.aclose()
    assert project.issues[wanted[0]["iid"]]["state"] == "closed"

    issues = forge_client(
        "gitlab", api_url=gl.api_url, token=OPTIO_TOKEN, options=ClientOptions(transport=transport)
    )
    other = gl.add_issue(project, "assign me")
    await issues.add_label(f"acme/app#{other['iid']}", "optio")
    await issues.add_label(f"acme/app#{other['iid']}", "optio")
    assert project.issues[other["iid"]]["labels"] == ["optio"]
    fetched = await issues.get(f"acme/app#{other['iid']}")
    assert fetched.title == "assign me" and fetched.url.endswith(f"/-/issues/{other['iid']}")
    await issues.http.aclose()
