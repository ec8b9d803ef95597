"""Each provider client against its double: pagination, comments, rate limits, auth, completion."""

from __future__ import annotations

import pytest

from integrations.tickets import ClientOptions, TicketAuthError, TicketRateLimited, build_client
from tests.tickets.conftest import JIRA_EMAIL, JIRA_TOKEN, LINEAR_KEY, NOTION_DB, NOTION_TOKEN
from tests.tickets.jira_double import JiraDouble
from tests.tickets.linear_double import LinearDouble
from tests.tickets.notion_double import NotionDouble


class Pauses:
    """Stands in for the clock: records the waits a client asked for, waits for none."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def jira_client(jira: JiraDouble, pauses: Pauses, token: str = JIRA_TOKEN, **config: object):  # type: ignore[no-untyped-def]
    return build_client(
        "jira",
        {"baseUrl": jira.base_url, "email": JIRA_EMAIL, "projectKey": "OPS", **config},
        {"apiToken": token},
        ClientOptions(pause=pauses, max_wait=60),
    )


async def test_jira_pages_through_jql_results_with_comments(jira: JiraDouble) -> None:
    for n in range(230):
        jira.add_issue("OPS", f"ticket {n}", labels=["optio"], description=f"do {n}")
    jira.add_issue("OPS", "not for optio", labels=["other"])
    done = jira.add_issue("OPS", "done already", labels=["optio"])
    done.status = "Done"
    jira.add_issue("WEB", "other project", labels=["optio"])
    chatty = jira.add_issue(
        "OPS", "chatty", labels=["optio", "repo:acme/app"], comments=[f"c{n}" for n in range(7)]
    )
    client = jira_client(jira, Pauses())
    tickets = await client.actionable()
    await client.http.aclose()
    assert len(tickets) == 231
    assert [t.external_id for t in tickets[:2]] == ["OPS-1", "OPS-2"]
    assert tickets[0].body == "do 0" and tickets[0].url == f"{jira.base_url}/browse/OPS-1"
    last = next(t for t in tickets if t.external_id == chatty.key)
    # Seven comments: five inlined by the search, the rest paged from the comment endpoint.
    assert [c.body for c in last.comments] == [f"c{n}" for n in range(7)]
    assert last.repo_hint == "acme/app"
    # 3 search pages of 100 + 1 comment page for the chatty issue.
    assert client.http.requests == 4


async def test_jira_waits_out_429_and_refuses_bad_credentials(jira: JiraDouble) -> None:
    jira.add_issue("OPS", "one", labels=["optio"])
    jira.throttle_next, jira.retry_after = 2, "7"
    pauses = Pauses()
    client = jira_client(jira, pauses)
    assert [t.title for t in await client.actionable()] == ["one"]
    assert pauses.waits == [7.0, 7.0] and client.http.rate_limited == 2
    await client.http.aclose()

    jira.throttle_next, jira.retry_after = 1, "600"
    client = jira_client(jira, Pauses())
    with pytest.raises(TicketRateLimited):
        await client.actionable()  # longer than the ceiling: the run ends, the next retries
    await client.http.aclose()

    client = jira_client(jira, Pauses(), token="wrong")
    with pytest.raises(TicketAuthError):
        await client.actionable()
    await client.http.aclose()


async def test_jira_completion_comments_once_and_moves_to_done(jira: JiraDouble) -> None:
    issue = jira.add_issue("OPS", "fix it", labels=["optio"])
    client = jira_client(jira, Pauses())
    for _ in range(2):  # a retried activity writes nothing twice
        await client.complete(issue.key, body="Finished", key="task-1-done")
    await client.http.aclose()
    assert issue.status == "Done"
    assert jira.comment_texts(issue.key) == ["Finished\n[optio:task-1-done]"]


def linear_client(linear: LinearDouble, pauses: Pauses, key: str = LINEAR_KEY):  # type: ignore[no-untyped-def]
    return build_client(
        "linear",
        {"teamId": "team-eng"},
        {"apiKey": key},
        ClientOptions(linear_api_url=f"{linear.base_url}/graphql", pause=pauses),
    )


async def test_linear_cursor_pages_filters_and_rate_limits(linear_server: LinearDouble) -> None:
    linear = linear_server
    for n in range(120):
        linear.add_issue(f"issue {n}", labels=["optio"], comments=["please"] if n == 0 else None)
    linear.add_issue("other team", labels=["optio"], team_id="team-web")
    linear.add_issue("finished", labels=["optio"], state="Done")
    linear.add_issue("unlabelled")
    linear.throttle_next = 1
    pauses = Pauses()
    client = linear_client(linear, pauses)
    tickets = await client.actionable()
    assert len(tickets) == 120
    assert tickets[0].comments[0].body == "please"
    assert len(pauses.waits) == 1 and 0 <= pauses.waits[0] <= 2  # until the reset, in ms
    assert client.http.requests == 4  # 1 throttled + 3 pages of 50
    await client.http.aclose()

    client = linear_client(linear, Pauses(), key="lin_api_wrong")
    with pytest.raises(TicketAuthError):
        await client.actionable()
    await client.http.aclose()


async def test_linear_completion_moves_to_the_completed_state(linear_server: LinearDouble) -> None:
    issue = linear_server.add_issue("fix", labels=["optio"])
    client = linear_client(linear_server, Pauses())
    for _ in range(2):
        await client.complete(issue.id, body="Finished", key="task-2-done")
    await client.http.aclose()
    assert issue.state == "Done"
    assert [c["body"] for c in issue.comments] == ["Finished\n\n[optio:task-2-done]"]


def notion_client(notion: NotionDouble, pauses: Pauses, token: str = NOTION_TOKEN):  # type: ignore[no-untyped-def]
    return build_client(
        "notion",
        {"databaseId": NOTION_DB},
        {"apiKey": token},
        ClientOptions(notion_api_url=notion.base_url, pause=pauses),
    )


async def test_notion_query_pages_text_comments_and_rate_limits(
    notion_server: NotionDouble,
) -> None:
    notion = notion_server
    for n in range(150):
        notion.add_page(f"page {n}", body=f"line a {n}\nline b", tags=["optio"])
    notion.add_page("finished", tags=["optio"], status="Done")
    notion.add_page("untagged")
    talk = notion.add_page("talk", tags=["optio", "repo:acme/app"], comments=["first", "second"])
    notion.throttle_next = 1
    pauses = Pauses()
    client = notion_client(notion, pauses)
    tickets = await client.actionable()
    await client.http.aclose()
    assert len(tickets) == 151 and pauses.waits == [1.0]
    first = tickets[0]
    assert first.title == "page 0" and first.body == "line a 0\nline b"
    chat = next(t for t in tickets if t.external_id == talk.id)
    assert [c.body for c in chat.comments] == ["first", "second"] and chat.repo_hint == "acme/app"

    client = notion_client(notion, Pauses(), token="secret_wrong")
    with pytest.raises(TicketAuthError):
        await client.actionable()
    await client.http.aclose()


async def test_notion_completion_sets_the_status(notion_server: NotionDouble) -> None:
    page = notion_server.add_page("fix", tags=["optio"])
    client = notion_client(notion_server, Pauses())
    for _ in range(2):
        await client.complete(page.id, body="Finished", key="task-3-done")
    await client.http.aclose()
    assert page.status == "Done"
    assert notion_server.comment_texts(page.id) == ["Finished\n\n[optio:task-3-done]"]
