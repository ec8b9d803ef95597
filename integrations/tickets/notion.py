"""Notion (databases API, version 2022-06-28) as a ticket provider.

A ticket is a page of one database whose multi-select `labelProperty` holds the label
and whose `statusProperty` (a status or select property) is not `doneValue`. Its text is
the page's blocks; its comments come from the comments API. Completion comments on the
page and sets the status property to `doneValue`.
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

NOTION_VERSION = "2022-06-28"
PAGE_SIZE = 100
REPO_LABEL = "repo:"


def plain(rich: list[dict[str, Any]] | None) -> str:
    return "".join(str(part.get("plain_text") or "") for part in rich or [])


class NotionTickets:
    source = "notion"

    def __init__(
        self,
        *,
        http: TicketHttp,
        database_id: str,
        label: str,
        label_property: str,
        status_property: str,
        done_value: str,
        title_property: str | None,
        max_pages: int,
    ) -> None:
        self.http = http
        self.database_id = database_id
        self.label = label
        self.label_property = label_property
        self.status_property = status_property
        self.done_value = done_value
        self.title_property = title_property
        self.max_pages = max_pages

    async def actionable(self, *, skip: Collection[str] = ()) -> list[Ticket]:
        found: list[Ticket] = []
        cursor: str | None = None
        query: dict[str, Any] = {
            "filter": {"property": self.label_property, "multi_select": {"contains": self.label}},
            "page_size": PAGE_SIZE,
        }
        for _ in range(self.max_pages):
            body = {**query, **({"start_cursor": cursor} if cursor else {})}
            page = (
                await self.http.send("POST", f"/v1/databases/{self.database_id}/query", json=body)
            ).json()
            for item in page.get("results") or []:
                if self._status(item).lower() == self.done_value.lower():
                    continue  # the status is filtered here: it may be a status or a select
                found.append(await self._ticket(item, details=str(item["id"]) not in skip))
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                break
        return found

    def _status(self, item: dict[str, Any]) -> str:
        prop = (item.get("properties") or {}).get(self.status_property) or {}
        value = prop.get("status") or prop.get("select") or {}
        return str(value.get("name") or "")

    def _title(self, item: dict[str, Any]) -> str:
        props: dict[str, Any] = item.get("properties") or {}
        if self.title_property and self.title_property in props:
            return plain(
                props[self.title_property].get("title")
                or props[self.title_property].get("rich_text")
            )
        for prop in props.values():
            if prop.get("type") == "title":
                return plain(prop.get("title"))
        return ""

    async def _ticket(self, item: dict[str, Any], *, details: bool) -> Ticket:
        page_id = str(item["id"])
        labels = [
            str(x.get("name"))
            for x in ((item.get("properties") or {}).get(self.label_property) or {}).get(
                "multi_select"
            )
            or []
        ]
        repo = next((x[len(REPO_LABEL) :] for x in labels if x.startswith(REPO_LABEL)), None)
        return Ticket(
            source="notion",
            external_id=page_id,
            title=self._title(item),
            body=await self._text(page_id) if details else "",
            url=str(item.get("url") or ""),
            labels=labels,
            comments=await self._comments(page_id) if details else [],
            repo_hint=repo,
            state=self._status(item) or "open",
            created_at=item.get("created_time"),
            updated_at=item.get("last_edited_time"),
        )

    async def _paged(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(self.max_pages):
            query = {
                **params,
                "page_size": PAGE_SIZE,
                **({"start_cursor": cursor} if cursor else {}),
            }
            page = (await self.http.send("GET", path, params=query)).json()
            out.extend(page.get("results") or [])
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                break
        return out

    async def _text(self, page_id: str) -> str:
        lines = []
        for block in await self._paged(f"/v1/blocks/{page_id}/children", {}):
            content = block.get(str(block.get("type"))) or {}
            if isinstance(content, dict) and "rich_text" in content:
                lines.append(plain(content["rich_text"]))
        return "\n".join(lines).strip()

    async def _comments(self, page_id: str) -> list[TicketComment]:
        return [
            TicketComment(
                str((c.get("created_by") or {}).get("id") or ""), plain(c.get("rich_text"))
            )
            for c in await self._paged("/v1/comments", {"block_id": page_id})
        ]

    async def comment(
        self, external_id: str, *, body: str, key: str, known: list[TicketComment] | None = None
    ) -> None:
        if known is None:
            known = await self._comments(external_id)
        if text_marker_in(known, key):
            return
        text = f"{body}\n\n{marker(key)}"
        await self.http.send(
            "POST",
            "/v1/comments",
            json={
                "parent": {"page_id": external_id},
                "rich_text": [{"type": "text", "text": {"content": text}}],
            },
        )

    async def complete(self, external_id: str, *, body: str, key: str) -> None:
        await self.comment(external_id, body=body, key=key)
        page = (await self.http.send("GET", f"/v1/pages/{external_id}")).json()
        prop = (page.get("properties") or {}).get(self.status_property)
        if prop is None:
            raise TicketError(f"The page has no property {self.status_property!r}", status=409)
        if self._status(page).lower() == self.done_value.lower():
            return
        kind = "select" if prop.get("type") == "select" else "status"
        await self.http.send(
            "PATCH",
            f"/v1/pages/{external_id}",
            json={"properties": {self.status_property: {kind: {"name": self.done_value}}}},
        )
