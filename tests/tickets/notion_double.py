"""A Notion API (version 2022-06-28) test double, following the documented behaviour.

Bearer integration tokens (401 `unauthorized`), the `Notion-Version` header (400
`missing_version`), 429 `rate_limited` with `Retry-After`, 404 `object_not_found`;
database queries with a compound `and` filter over multi-select `contains`, paged by
`start_cursor`/`next_cursor`/`has_more` (`page_size` at most 100); block children,
comments, and page property updates of `status` and `select` properties.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def rich(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"content": text}, "plain_text": text}]


@dataclass
class NotionPage:
    id: str
    title: str
    tags: list[str]
    status: str
    paragraphs: list[str]
    comments: list[dict[str, Any]] = field(default_factory=list)


class NotionDouble:
    def __init__(self, *, tokens: set[str], database_id: str) -> None:
        self.tokens = tokens
        self.database_id = database_id
        self.pages: dict[str, NotionPage] = {}
        self.base_url = ""
        self.requests = 0
        self.throttle_next = 0
        self.retry_after = "1"
        self.app = Starlette(
            routes=[
                Route("/v1/databases/{db}/query", self.query, methods=["POST"]),
                Route("/v1/blocks/{id}/children", self.children, methods=["GET"]),
                Route("/v1/comments", self.comments, methods=["GET", "POST"]),
                Route("/v1/pages/{id}", self.page, methods=["GET", "PATCH"]),
            ]
        )

    def add_page(
        self,
        title: str,
        *,
        body: str = "",
        tags: list[str] | None = None,
        status: str = "Not started",
        comments: list[str] | None = None,
    ) -> NotionPage:
        page = NotionPage(
            id=str(uuid.uuid4()),
            title=title,
            tags=list(tags or []),
            status=status,
            paragraphs=body.split("\n") if body else [],
        )
        for text in comments or []:
            page.comments.append(self._comment(page.id, text))
        self.pages[page.id] = page
        return page

    @staticmethod
    def _error(
        status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return JSONResponse(
            {"object": "error", "status": status, "code": code, "message": message},
            status_code=status,
            headers=headers,
        )

    def _guard(self, request: Request) -> Response | None:
        self.requests += 1
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or header[7:] not in self.tokens:
            return self._error(401, "unauthorized", "API token is invalid.")
        if not request.headers.get("notion-version"):
            return self._error(400, "missing_version", "Notion-Version header failed validation.")
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return self._error(
                429,
                "rate_limited",
                "You have been rate limited.",
                {"Retry-After": self.retry_after},
            )
        return None

    def _comment(self, page_id: str, text: str) -> dict[str, Any]:
        return {
            "object": "comment",
            "id": str(uuid.uuid4()),
            "parent": {"type": "page_id", "page_id": page_id},
            "created_by": {"object": "user", "id": "user-1"},
            "rich_text": rich(text),
        }

    def _page_json(self, page: NotionPage) -> dict[str, Any]:
        return {
            "object": "page",
            "id": page.id,
            "url": f"https://www.notion.so/{page.id.replace('-', '')}",
            "created_time": "2026-01-01T00:00:00.000Z",
            "last_edited_time": "2026-01-01T00:00:00.000Z",
            "properties": {
                "Name": {"id": "title", "type": "title", "title": rich(page.title)},
                "Tags": {
                    "id": "tags",
                    "type": "multi_select",
                    "multi_select": [{"name": t} for t in page.tags],
                },
                "Status": {"id": "status", "type": "status", "status": {"name": page.status}},
            },
        }

    @staticmethod
    def _paged(request_cursor: str | None, size: int, items: list[Any]) -> dict[str, Any]:
        start = int(request_cursor) if request_cursor else 0
        page = items[start : start + size]
        more = start + size < len(items)
        return {
            "object": "list",
            "results": page,
            "next_cursor": str(start + size) if more else None,
            "has_more": more,
        }

    def _matches(self, page: NotionPage, filter_: dict[str, Any]) -> bool:
        if "and" in filter_:
            return all(self._matches(page, f) for f in filter_["and"])
        if not filter_:
            return True
        prop = filter_.get("property")
        if prop == "Tags" and "multi_select" in filter_:
            return filter_["multi_select"].get("contains") in page.tags
        if prop == "Status" and "status" in filter_:
            cond = filter_["status"]
            if "equals" in cond:
                return page.status == cond["equals"]
            if "does_not_equal" in cond:
                return page.status != cond["does_not_equal"]
        raise ValueError(f"unsupported filter {filter_}")

    async def query(self, request: Request) -> Response:
        error = self._guard(request)
        if error:
            return error
        if request.path_params["db"] != self.database_id:
            return self._error(404, "object_not_found", "Could not find database.")
        body = await request.json()
        size = int(body.get("page_size") or 100)
        if size > 100:
            return self._error(400, "validation_error", "body.page_size should be ≤ `100`.")
        try:
            hits = [p for p in self.pages.values() if self._matches(p, body.get("filter") or {})]
        except ValueError as exc:
            return self._error(400, "validation_error", str(exc))
        out = self._paged(body.get("start_cursor"), size, [self._page_json(p) for p in hits])
        out["type"] = "page_or_database"
        return JSONResponse(out)

    async def children(self, request: Request) -> Response:
        error = self._guard(request)
        if error:
            return error
        page = self.pages.get(request.path_params["id"])
        if page is None:
            return self._error(404, "object_not_found", "Could not find block.")
        blocks = [
            {"object": "block", "type": "paragraph", "paragraph": {"rich_text": rich(text)}}
            for text in page.paragraphs
        ]
        size = min(int(request.query_params.get("page_size", 100)), 100)
        return JSONResponse(self._paged(request.query_params.get("start_cursor"), size, blocks))

    async def comments(self, request: Request) -> Response:
        error = self._guard(request)
        if error:
            return error
        if request.method == "POST":
            data = await request.json()
            page = self.pages.get(str((data.get("parent") or {}).get("page_id")))
            if page is None:
                return self._error(404, "object_not_found", "Could not find page.")
            text = "".join(
                str((part.get("text") or {}).get("content") or "")
                for part in data.get("rich_text") or []
            )
            comment = self._comment(page.id, text)
            page.comments.append(comment)
            return JSONResponse(comment)
        page = self.pages.get(str(request.query_params.get("block_id")))
        if page is None:
            return self._error(404, "object_not_found", "Could not find block.")
        size = min(int(request.query_params.get("page_size", 100)), 100)
        return JSONResponse(
            self._paged(request.query_params.get("start_cursor"), size, page.comments)
        )

    async def page(self, request: Request) -> Response:
        error = self._guard(request)
        if error:
            return error
        page = self.pages.get(request.path_params["id"])
        if page is None:
            return self._error(404, "object_not_found", "Could not find page.")
        if request.method == "PATCH":
            props = (await request.json()).get("properties") or {}
            status = props.get("Status")
            if status is not None:
                value = status.get("status")
                if value is None:
                    return self._error(400, "validation_error", "Status is expected to be status.")
                page.status = str(value.get("name"))
        return JSONResponse(self._page_json(page))

    def comment_texts(self, page_id: str) -> list[str]:
        return [
            "".join(p["plain_text"] for p in c["rich_text"]) for c in self.pages[page_id].comments
        ]
