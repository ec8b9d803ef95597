"""Jira Cloud (REST v3) as a ticket provider: JQL search, ADF text, transitions.

Search uses the enhanced endpoint `POST /rest/api/3/search/jql`, paged by
`nextPageToken` (absent on the last page). Descriptions and comments are Atlassian
Document Format; Optio reads their text and writes plain paragraphs. Completion moves
the issue through the transition whose target status is `doneStatusName`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from integrations.tickets.base import (
    Ticket,
    TicketComment,
    TicketError,
    TicketHttp,
    marker,
    text_marker_in,
)

FIELDS = ["summary", "description", "labels", "status", "comment", "created", "updated",
          "reporter", "assignee"]  # fmt: skip
PAGE_SIZE = 100
REPO_LABEL = "repo:"


def jql(*, label: str, project_key: str | None) -> str:
    """The search; label and project key were checked against strict patterns at config."""
    query = f'labels = "{label}" AND status != Done AND status != Closed'
    if project_key:
        query += f' AND project = "{project_key}"'
    return query + " ORDER BY created ASC"


def adf_text(node: Any) -> str:
    """The text of an ADF document: paragraphs and list items on their own lines."""
    if not isinstance(node, dict):
        return str(node or "")
    if node.get("type") == "text":
        return str(node.get("text", ""))
    if node.get("type") == "hardBreak":
        return "\n"
    inner = "".join(adf_text(child) for child in node.get("content") or [])
    if node.get("type") in ("paragraph", "heading", "listItem", "codeBlock", "blockquote"):
        return inner.strip("\n") + "\n"
    return inner


def adf_doc(text: str) -> dict[str, Any]:
    paragraphs = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}]}
        for line in text.split("\n")
        if line
    ]
    return {"type": "doc", "version": 1, "content": paragraphs}


class JiraTickets:
    source = "jira"

    def __init__(
        self,
        *,
        http: TicketHttp,
        base_url: str,
        label: str,
        project_key: str | None,
        max_pages: int,
        done_status: str,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.label = label
        self.project_key = project_key
        self.max_pages = max_pages
        self.done_status = done_status

    async def actionable(self, *, skip: Collection[str] = ()) -> list[Ticket]:
        found: list[Ticket] = []
        token: str | None = None
        for _ in range(self.max_pages):
            body: dict[str, Any] = {
                "jql": jql(label=self.label, project_key=self.project_key),
                "fields": FIELDS,
                "maxResults": PAGE_SIZE,
            }
            if token:
                body["nextPageToken"] = token
            page = (await self.http.send("POST", "/rest/api/3/search/jql", json=body)).json()
            for issue in page.get("issues") or []:
                found.append(await self._ticket(issue, details=issue.get("key") not in skip))
            token = page.get("nextPageToken")
            if not token or page.get("isLast"):
                break
        return found

    async def _ticket(self, issue: dict[str, Any], *, details: bool) -> Ticket:
        fields = issue.get("fields") or {}
        key = str(issue["key"])
        embedded = fields.get("comment") or {}
        raw = list(embedded.get("comments") or [])
        if details and int(embedded.get("total") or 0) > len(raw):
            raw = await self._all_comments(key)
        labels = [str(x) for x in fields.get("labels") or []]
        repo = next((x[len(REPO_LABEL) :] for x in labels if x.startswith(REPO_LABEL)), None)
        return Ticket(
            source="jira",
            external_id=key,
            title=str(fields.get("summary") or ""),
            body=adf_text(fields.get("description")).strip(),
            url=f"{self.base_url}/browse/{key}",
            labels=labels,
            comments=[_comment(c) for c in raw],
            repo_hint=repo,
            state=str((fields.get("status") or {}).get("name") or "open"),
            author=(fields.get("reporter") or {}).get("displayName"),
            assignee=(fields.get("assignee") or {}).get("displayName"),
            created_at=fields.get("created"),
            updated_at=fields.get("updated"),
        )

    async def _all_comments(self, key: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        start = 0
        for _ in range(self.max_pages):
            page = (
                await self.http.send(
                    "GET",
                    f"/rest/api/3/issue/{key}/comment",
                    params={"startAt": start, "maxResults": PAGE_SIZE},
                )
            ).json()
            batch = page.get("comments") or []
            out.extend(batch)
            start += len(batch)
            if not batch or start >= int(page.get("total") or 0):
                break
        return out

    async def comment(
        self, external_id: str, *, body: str, key: str, known: list[TicketComment] | None = None
    ) -> None:
        if known is None:
            known = [_comment(c) for c in await self._all_comments(external_id)]
        if text_marker_in(known, key):
            return
        await self.http.send(
            "POST",
            f"/rest/api/3/issue/{external_id}/comment",
            json={"body": adf_doc(f"{body}\n{marker(key)}")},
        )

    async def complete(self, external_id: str, *, body: str, key: str) -> None:
        await self.comment(external_id, body=body, key=key)
        issue = (
            await self.http.send(
                "GET", f"/rest/api/3/issue/{external_id}", params={"fields": "status"}
            )
        ).json()
        status = ((issue.get("fields") or {}).get("status") or {}).get("name", "")
        if status.lower() == self.done_status.lower():
            return  # moved already (by a previous attempt, or by a person)
        found = (await self.http.send("GET", f"/rest/api/3/issue/{external_id}/transitions")).json()
        wanted = self.done_status.lower()
        transition = next(
            (
                t
                for t in found.get("transitions") or []
                if str((t.get("to") or {}).get("name", "")).lower() == wanted
                or str(t.get("name", "")).lower() == wanted
            ),
            None,
        )
        if transition is None:
            raise TicketError(
                f"{external_id} has no transition to status {self.done_status!r}", status=409
            )
        await self.http.send(
            "POST",
            f"/rest/api/3/issue/{external_id}/transitions",
            json={"transition": {"id": str(transition["id"])}},
        )


def _comment(raw: dict[str, Any]) -> TicketComment:
    return TicketComment(
        author=str((raw.get("author") or {}).get("displayName") or ""),
        body=adf_text(raw.get("body")).strip(),
    )
