"""A Jira Cloud REST v3 test double, following the documented API.

Basic auth with email and API token (401 otherwise, with `errorMessages`); enhanced JQL
search `POST /rest/api/3/search/jql` paged by `nextPageToken` (absent on the last page,
`isLast`); ADF descriptions and comments; comments paged by `startAt`/`maxResults`/`total`;
transitions to statuses of a simple workflow; 429 + `Retry-After` when throttled. The JQL
understood is the subset Optio sends (`labels = "x" AND status != Y AND project = "K"`);
anything else is a 400 like Jira's own parse error.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

STATUSES = {"To Do": "11", "In Progress": "21", "Done": "31"}
INLINE_COMMENTS = 5  # the search inlines this many; the rest are paged
CLAUSE = re.compile(r'^(labels|status|project)\s*(=|!=)\s*"?([^"]*)"?$')


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def adf(text: str) -> dict[str, Any]:
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": line}]}
            for line in text.split("\n")
        ],
    }


@dataclass
class JiraIssue:
    key: str
    id: str
    summary: str
    description: str
    labels: list[str]
    project: str
    status: str = "To Do"
    comments: list[dict[str, Any]] = field(default_factory=list)
    created: str = field(default_factory=now_iso)


class JiraDouble:
    def __init__(self, *, users: dict[str, str]) -> None:
        self.users = users  # email -> API token
        self.issues: dict[str, JiraIssue] = {}
        self.base_url = ""
        self.requests = 0
        self.throttle_next = 0
        self.retry_after = "1"
        self.ids = itertools.count(10000)
        self.app = Starlette(routes=self._routes())

    # ---- set-up helpers --------------------------------------------------------------

    def add_issue(
        self,
        project: str,
        summary: str,
        *,
        description: str = "",
        labels: list[str] | None = None,
        comments: list[str] | None = None,
    ) -> JiraIssue:
        number = sum(1 for i in self.issues.values() if i.project == project) + 1
        issue = JiraIssue(
            key=f"{project}-{number}",
            id=str(next(self.ids)),
            summary=summary,
            description=description,
            labels=list(labels or []),
            project=project,
        )
        for text in comments or []:
            issue.comments.append(self._comment("reporter@example.com", adf(text)))
        self.issues[issue.key] = issue
        return issue

    def comment_texts(self, key: str) -> list[str]:
        from integrations.tickets.jira import adf_text

        return [adf_text(c["body"]).strip() for c in self.issues[key].comments]

    # ---- plumbing --------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        api = "/rest/api/3"
        return [
            Route(api + "/search/jql", self.search, methods=["POST"]),
            Route(api + "/issue/{key}", self.issue, methods=["GET"]),
            Route(api + "/issue/{key}/comment", self.comments, methods=["GET", "POST"]),
            Route(api + "/issue/{key}/transitions", self.transitions, methods=["GET", "POST"]),
        ]

    def _guard(self, request: Request) -> tuple[str | None, Response | None]:
        self.requests += 1
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        email = token = ""
        if scheme.lower() == "basic":
            try:
                email, _, token = base64.b64decode(value).decode().partition(":")
            except ValueError:
                pass
        if not email or self.users.get(email) != token:
            return None, JSONResponse(
                {"errorMessages": ["You are not authenticated. Authentication required."]},
                status_code=401,
            )
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return None, JSONResponse(
                {"errorMessages": ["Rate limit exceeded."]},
                status_code=429,
                headers={"Retry-After": self.retry_after, "X-RateLimit-NearLimit": "true"},
            )
        return email, None

    @staticmethod
    def _error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"errorMessages": [message], "errors": {}}, status_code=status)

    def _comment(self, author: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(next(self.ids)),
            "author": {"displayName": author, "emailAddress": author},
            "body": body,
            "created": now_iso(),
            "updated": now_iso(),
        }

    def _json(self, issue: JiraIssue, fields: list[str] | None) -> dict[str, Any]:
        all_fields: dict[str, Any] = {
            "summary": issue.summary,
            "description": adf(issue.description) if issue.description else None,
            "labels": issue.labels,
            "status": {"name": issue.status, "id": STATUSES[issue.status]},
            "comment": {
                "comments": issue.comments[:INLINE_COMMENTS],
                "maxResults": INLINE_COMMENTS,
                "total": len(issue.comments),
                "startAt": 0,
            },
            "created": issue.created,
            "updated": issue.created,
            "project": {"key": issue.project},
            "reporter": {"displayName": "Reporter"},
            "assignee": None,
        }
        chosen = {k: v for k, v in all_fields.items() if fields is None or k in fields}
        return {
            "id": issue.id,
            "key": issue.key,
            "self": f"{self.base_url}/rest/api/3/issue/{issue.id}",
            "fields": chosen,
        }

    def _matches(self, issue: JiraIssue, clauses: list[tuple[str, str, str]]) -> bool:
        for name, op, value in clauses:
            actual: list[str] = {
                "labels": issue.labels,
                "status": [issue.status],
                "project": [issue.project],
            }[name]
            hit = any(a.lower() == value.lower() for a in actual)
            if (op == "=") != hit:
                return False
        return True

    # ---- endpoints -------------------------------------------------------------------

    async def search(self, request: Request) -> Response:
        _, error = self._guard(request)
        if error:
            return error
        body = await request.json()
        query = str(body.get("jql") or "")
        query = re.sub(r"\s+ORDER BY .*$", "", query, flags=re.IGNORECASE)
        clauses = []
        for part in query.split(" AND "):
            found = CLAUSE.match(part.strip())
            if not found:
                return self._error(400, f"Error in the JQL Query: cannot parse '{part}'.")
            clauses.append((found.group(1), found.group(2), found.group(3)))
        hits = [i for i in self.issues.values() if self._matches(i, clauses)]
        size = min(int(body.get("maxResults") or 50), 100)
        token = body.get("nextPageToken")
        start = int(base64.b64decode(token).decode()) if token else 0
        page = hits[start : start + size]
        fields = body.get("fields")
        out: dict[str, Any] = {"issues": [self._json(i, fields) for i in page]}
        if start + size < len(hits):
            out["nextPageToken"] = base64.b64encode(str(start + size).encode()).decode()
            out["isLast"] = False
        else:
            out["isLast"] = True
        return JSONResponse(out)

    async def issue(self, request: Request) -> Response:
        _, error = self._guard(request)
        if error:
            return error
        issue = self.issues.get(request.path_params["key"])
        if issue is None:
            return self._error(404, "Issue does not exist or you do not have permission to see it.")
        fields = request.query_params.get("fields")
        return JSONResponse(self._json(issue, fields.split(",") if fields else None))

    async def comments(self, request: Request) -> Response:
        email, error = self._guard(request)
        if error or email is None:
            return error or self._error(401, "Unauthorized")
        issue = self.issues.get(request.path_params["key"])
        if issue is None:
            return self._error(404, "Issue does not exist or you do not have permission to see it.")
        if request.method == "POST":
            data = await request.json()
            if not isinstance(data.get("body"), dict) or data["body"].get("type") != "doc":
                return self._error(400, "Comment body is not valid ADF.")
            comment = self._comment(email, data["body"])
            issue.comments.append(comment)
            return JSONResponse(comment, status_code=201)
        start = int(request.query_params.get("startAt", 0))
        size = min(int(request.query_params.get("maxResults", 50)), 100)
        return JSONResponse(
            {
                "startAt": start,
                "maxResults": size,
                "total": len(issue.comments),
                "comments": issue.comments[start : start + size],
            }
        )

    async def transitions(self, request: Request) -> Response:
        _, error = self._guard(request)
        if error:
            return error
        issue = self.issues.get(request.path_params["key"])
        if issue is None:
            return self._error(404, "Issue does not exist or you do not have permission to see it.")
        if request.method == "POST":
            data = json.loads(await request.body())
            wanted = str((data.get("transition") or {}).get("id"))
            target = next((name for name, tid in STATUSES.items() if tid == wanted), None)
            if target is None or target == issue.status:
                return self._error(400, "Transition id is not valid for this issue.")
            issue.status = target
            return Response(status_code=204)
        return JSONResponse(
            {
                "transitions": [
                    {"id": tid, "name": name, "to": {"name": name, "id": tid}}
                    for name, tid in STATUSES.items()
                    if name != issue.status
                ]
            }
        )
