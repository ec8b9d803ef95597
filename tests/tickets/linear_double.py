"""A Linear GraphQL API test double, following the documented behaviour.

One endpoint, `POST /graphql`; the personal API key in `Authorization` (no scheme).
Errors come as GraphQL `errors` with `extensions.code`: `AUTHENTICATION_ERROR` (HTTP 400)
and `RATELIMITED` (HTTP 400, with the `X-RateLimit-Requests-*` headers; the reset is in
epoch milliseconds). Connections page with `first`/`after` and `pageInfo`. There is no
GraphQL engine here: the double serves the operations Optio sends, recognised by name,
and honours their variables (issue filter on label name, state type and team/project).
"""

from __future__ import annotations

import base64
import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

STATES = [
    ("Backlog", "backlog", 0.0),
    ("Todo", "unstarted", 1.0),
    ("In Progress", "started", 2.0),
    ("Done", "completed", 3.0),
    ("Canceled", "canceled", 4.0),
]


@dataclass
class LinearIssue:
    id: str
    identifier: str
    title: str
    description: str
    labels: list[str]
    team_id: str
    state: str = "Todo"
    comments: list[dict[str, Any]] = field(default_factory=list)
    created_at: str = "2026-01-01T00:00:00.000Z"


class LinearDouble:
    def __init__(self, *, keys: set[str]) -> None:
        self.keys = keys
        self.issues: dict[str, LinearIssue] = {}
        self.base_url = ""
        self.requests = 0
        self.throttle_next = 0
        self.reset_in = 1.0  # seconds until the rate-limit window resets
        self.numbers = itertools.count(1)
        self.states = {name: (f"state-{kind}", kind, pos) for name, kind, pos in STATES}
        self.app = Starlette(routes=[Route("/graphql", self.graphql, methods=["POST"])])

    def add_issue(
        self,
        title: str,
        *,
        description: str = "",
        labels: list[str] | None = None,
        team_id: str = "team-eng",
        comments: list[str] | None = None,
        state: str = "Todo",
    ) -> LinearIssue:
        issue = LinearIssue(
            id=str(uuid.uuid4()),
            identifier=f"ENG-{next(self.numbers)}",
            title=title,
            description=description,
            labels=list(labels or []),
            team_id=team_id,
            state=state,
        )
        for text in comments or []:
            issue.comments.append({"body": text, "user": {"name": "Reporter"}})
        self.issues[issue.id] = issue
        return issue

    def _error(self, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        body = {"errors": [{"message": message, "extensions": {"code": code}}]}
        return JSONResponse(body, status_code=400, headers=headers)

    def _issue_json(self, issue: LinearIssue) -> dict[str, Any]:
        state_id, kind, _ = self.states[issue.state]
        team_states = [
            {"id": sid, "name": name, "position": pos}
            for name, (sid, k, pos) in self.states.items()
            if k == "completed"
        ]
        return {
            "id": issue.id,
            "identifier": issue.identifier,
            "title": issue.title,
            "description": issue.description,
            "url": f"https://linear.app/acme/issue/{issue.identifier}",
            "createdAt": issue.created_at,
            "updatedAt": issue.created_at,
            "state": {"id": state_id, "name": issue.state, "type": kind},
            "labels": {"nodes": [{"name": name} for name in issue.labels]},
            "assignee": None,
            "creator": {"name": "Reporter"},
            "comments": {"nodes": issue.comments[:100]},
            "team": {"id": issue.team_id, "states": {"nodes": team_states}},
        }

    def _matches(self, issue: LinearIssue, filter_: dict[str, Any]) -> bool:
        label = (((filter_.get("labels") or {}).get("name")) or {}).get("eq")
        if label is not None and label not in issue.labels:
            return False
        excluded = (((filter_.get("state") or {}).get("type")) or {}).get("nin") or []
        if self.states[issue.state][1] in excluded:
            return False
        team = (((filter_.get("team") or {}).get("id")) or {}).get("eq")
        return team is None or team == issue.team_id

    async def graphql(self, request: Request) -> Response:
        self.requests += 1
        if request.headers.get("authorization") not in self.keys:
            return self._error("AUTHENTICATION_ERROR", "Authentication required, not authenticated")
        if self.throttle_next > 0:
            self.throttle_next -= 1
            reset = int((time.time() + self.reset_in) * 1000)
            return self._error(
                "RATELIMITED",
                "Rate limit exceeded",
                {
                    "X-RateLimit-Requests-Limit": "1500",
                    "X-RateLimit-Requests-Remaining": "0",
                    "X-RateLimit-Requests-Reset": str(reset),
                },
            )
        body = await request.json()
        query = str(body.get("query") or "")
        variables = body.get("variables") or {}
        if "query OptioIssues" in query:
            return JSONResponse({"data": {"issues": self._issues(variables)}})
        if "query OptioIssue(" in query:
            issue = self.issues.get(str(variables.get("id")))
            return JSONResponse({"data": {"issue": self._issue_json(issue) if issue else None}})
        if "mutation OptioComment" in query:
            data = variables.get("input") or {}
            issue = self.issues.get(str(data.get("issueId")))
            if issue is None:
                return self._error("INVALID_INPUT", "Entity not found: Issue")
            issue.comments.append({"body": str(data.get("body")), "user": {"name": "Optio"}})
            return JSONResponse({"data": {"commentCreate": {"success": True}}})
        if "mutation OptioMove" in query:
            issue = self.issues.get(str(variables.get("id")))
            state_id = (variables.get("input") or {}).get("stateId")
            name = next((n for n, (sid, _, _) in self.states.items() if sid == state_id), None)
            if issue is None or name is None:
                return self._error("INVALID_INPUT", "Entity not found")
            issue.state = name
            return JSONResponse({"data": {"issueUpdate": {"success": True}}})
        return self._error("GRAPHQL_VALIDATION_FAILED", "Unknown operation")

    def _issues(self, variables: dict[str, Any]) -> dict[str, Any]:
        hits = [i for i in self.issues.values() if self._matches(i, variables.get("filter") or {})]
        first = min(int(variables.get("first") or 50), 250)
        after = variables.get("after")
        start = int(base64.b64decode(after).decode()) if after else 0
        page = hits[start : start + first]
        more = start + first < len(hits)
        cursor = base64.b64encode(str(start + len(page)).encode()).decode()
        return {
            "nodes": [self._issue_json(i) for i in page],
            "pageInfo": {"hasNextPage": more, "endCursor": cursor if page else None},
        }
