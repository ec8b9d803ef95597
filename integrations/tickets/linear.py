"""Linear (GraphQL) as a ticket provider.

Issues carrying the label, not in a `completed` or `canceled` state, optionally of one
team or project, paged by cursor. Linear reports errors in the GraphQL `errors` list
with an `extensions.code`: `RATELIMITED` (waited out) and `AUTHENTICATION_ERROR`.
Completion moves the issue to its team's first state of type `completed`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import httpx

from integrations.tickets.base import (
    Ticket,
    TicketAuthError,
    TicketComment,
    TicketError,
    TicketHttp,
    marker,
    retry_after,
    text_marker_in,
)

PAGE_SIZE = 50
REPO_LABEL = "repo:"

ISSUES = """
query OptioIssues($filter: IssueFilter, $after: String, $first: Int) {
  issues(first: $first, after: $after, filter: $filter) {
    nodes {
      id identifier title description url createdAt updatedAt
      state { name type }
      labels { nodes { name } }
      assignee { name }
      creator { name }
      comments(first: 100) { nodes { body user { name } } }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""

ISSUE_FOR_COMPLETION = """
query OptioIssue($id: String!) {
  issue(id: $id) {
    id
    state { type }
    comments(first: 100) { nodes { body user { name } } }
    team { states(filter: { type: { eq: "completed" } }) { nodes { id name position } } }
  }
}
"""

COMMENT = """
mutation OptioComment($input: CommentCreateInput!) { commentCreate(input: $input) { success } }
"""

MOVE = """
mutation OptioMove($id: String!, $input: IssueUpdateInput!) {
  issueUpdate(id: $id, input: $input) { success }
}
"""


def _codes(response: httpx.Response) -> set[str]:
    try:
        data = response.json()
    except ValueError:
        return set()
    errors = data.get("errors") if isinstance(data, dict) else None
    return {
        str((e.get("extensions") or {}).get("code")) for e in errors or [] if isinstance(e, dict)
    }


def _limited(response: httpx.Response) -> float | None:
    wait = retry_after(response)
    if wait is None and "RATELIMITED" in _codes(response):
        headers = httpx.Response(429, headers=response.headers)
        wait = retry_after(headers)
    return wait


class LinearTickets:
    source = "linear"

    def __init__(
        self,
        *,
        http: TicketHttp,
        endpoint: str,
        label: str,
        team_id: str | None,
        project_id: str | None,
        max_pages: int,
    ) -> None:
        self.http = http
        self.endpoint = endpoint
        self.label = label
        self.team_id = team_id
        self.project_id = project_id
        self.max_pages = max_pages

    async def _gql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.send(
            "POST",
            self.endpoint,
            json={"query": query, "variables": variables},
            limited=_limited,
            check=False,
        )
        codes = _codes(response)
        if response.status_code in (401, 403) or "AUTHENTICATION_ERROR" in codes:
            raise TicketAuthError(
                f"Linear refused the API key ({response.status_code})", status=401
            )
        if not response.is_success or codes:
            raise TicketError(
                f"Linear answered {response.status_code} {sorted(codes)}",
                status=response.status_code,
            )
        data: dict[str, Any] = response.json().get("data") or {}
        return data

    async def actionable(self, *, skip: Collection[str] = ()) -> list[Ticket]:
        # One query returns issues with their comments: nothing to save for known ones.
        filter_: dict[str, Any] = {
            "labels": {"name": {"eq": self.label}},
            "state": {"type": {"nin": ["completed", "canceled"]}},
        }
        if self.team_id:
            filter_["team"] = {"id": {"eq": self.team_id}}
        if self.project_id:
            filter_["project"] = {"id": {"eq": self.project_id}}
        found: list[Ticket] = []
        after: str | None = None
        for _ in range(self.max_pages):
            data = await self._gql(ISSUES, {"filter": filter_, "after": after, "first": PAGE_SIZE})
            issues = data.get("issues") or {}
            found.extend(_ticket(node) for node in issues.get("nodes") or [])
            info = issues.get("pageInfo") or {}
            after = info.get("endCursor")
            if not info.get("hasNextPage") or not after:
                break
        return found

    async def comment(
        self, external_id: str, *, body: str, key: str, known: list[TicketComment] | None = None
    ) -> None:
        if known is None:
            known = _comments(await self._issue(external_id))
        if text_marker_in(known, key):
            return
        await self._comment(external_id, body, key)

    async def _issue(self, external_id: str) -> dict[str, Any]:
        issue = (await self._gql(ISSUE_FOR_COMPLETION, {"id": external_id})).get("issue")
        if not issue:
            raise TicketError(f"Linear has no issue {external_id}", status=404)
        return dict(issue)

    async def _comment(self, external_id: str, body: str, key: str) -> None:
        await self._gql(
            COMMENT, {"input": {"issueId": external_id, "body": f"{body}\n\n{marker(key)}"}}
        )

    async def complete(self, external_id: str, *, body: str, key: str) -> None:
        issue = await self._issue(external_id)
        if not text_marker_in(_comments(issue), key):
            await self._comment(external_id, body, key)
        if (issue.get("state") or {}).get("type") == "completed":
            return
        states = ((issue.get("team") or {}).get("states") or {}).get("nodes") or []
        if not states:
            raise TicketError(f"The team of {external_id} has no completed state", status=409)
        done = min(states, key=lambda s: float(s.get("position") or 0))
        await self._gql(MOVE, {"id": external_id, "input": {"stateId": done["id"]}})


def _comments(issue: dict[str, Any]) -> list[TicketComment]:
    nodes = (issue.get("comments") or {}).get("nodes") or []
    return [TicketComment(str((n.get("user") or {}).get("name") or ""), n.get("body") or "")
            for n in nodes]  # fmt: skip


def _ticket(node: dict[str, Any]) -> Ticket:
    labels = [str(x.get("name")) for x in (node.get("labels") or {}).get("nodes") or []]
    repo = next((x[len(REPO_LABEL) :] for x in labels if x.startswith(REPO_LABEL)), None)
    return Ticket(
        source="linear",
        external_id=str(node["id"]),
        title=str(node.get("title") or ""),
        body=str(node.get("description") or ""),
        url=str(node.get("url") or ""),
        labels=labels,
        comments=_comments(node),
        repo_hint=repo,
        state=str((node.get("state") or {}).get("name") or "open"),
        author=(node.get("creator") or {}).get("name"),
        assignee=(node.get("assignee") or {}).get("name"),
        created_at=node.get("createdAt"),
        updated_at=node.get("updatedAt"),
    )
