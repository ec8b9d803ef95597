"""GitHub Issues (REST v3) and GitLab issues (REST v4) as ticket providers.

The external id is `<repository path>#<number>`, so an issue assigned by hand
(POST /api/issues/assign) and the same issue found by sync are one ticket. Comments
carry the forge clients' HTML marker, so the completion comment written by
`finish_pull_request` and the one written here are recognised as the same.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import quote

from integrations.forges.base import marker
from integrations.tickets.base import Ticket, TicketComment, TicketError, TicketHttp


def split_id(external_id: str) -> tuple[str, int]:
    path, _, number = external_id.rpartition("#")
    if not path or not number.isdigit():
        raise TicketError(f"Not an issue reference: {external_id!r}")
    return path, int(number)


class GitHubTickets:
    source = "github"

    def __init__(
        self, *, http: TicketHttp, repos: list[str], label: str | None, max_pages: int
    ) -> None:
        self.http = http
        self.repos = repos
        self.label = label
        self.max_pages = max_pages

    async def actionable(self, *, skip: Collection[str] = ()) -> list[Ticket]:
        found: list[Ticket] = []
        for repo in self.repos:
            found.extend(await self.issues(repo, state="open", label=self.label, skip=skip))
        return found

    async def issues(
        self,
        repo: str,
        *,
        state: str,
        label: str | None,
        with_comments: bool = True,
        skip: Collection[str] = (),
    ) -> list[Ticket]:
        params: dict[str, Any] = {"state": state, "per_page": 100}
        if label:
            params["labels"] = label
        found: list[Ticket] = []
        for page in range(1, self.max_pages + 1):
            response = await self.http.send(
                "GET", f"/repos/{repo}/issues", params={**params, "page": page}
            )
            for item in response.json():
                if "pull_request" in item:
                    continue  # GitHub lists pull requests among issues
                comments = (
                    await self.comments(repo, int(item["number"]))
                    if with_comments
                    and item.get("comments")
                    and f"{repo}#{item['number']}" not in skip
                    else []
                )
                found.append(_github_ticket(repo, item, comments))
            if 'rel="next"' not in response.headers.get("link", ""):
                break
        return found

    async def get(self, external_id: str) -> Ticket:
        repo, number = split_id(external_id)
        item = (await self.http.send("GET", f"/repos/{repo}/issues/{number}")).json()
        return _github_ticket(repo, item, await self.comments(repo, number))

    async def comments(self, repo: str, number: int) -> list[TicketComment]:
        out: list[TicketComment] = []
        for page in range(1, self.max_pages + 1):
            response = await self.http.send(
                "GET",
                f"/repos/{repo}/issues/{number}/comments",
                params={"per_page": 100, "page": page},
            )
            out.extend(
                TicketComment((c.get("user") or {}).get("login", ""), c.get("body") or "")
                for c in response.json()
            )
            if 'rel="next"' not in response.headers.get("link", ""):
                break
        return out

    async def comment(
        self, external_id: str, *, body: str, key: str, known: list[TicketComment] | None = None
    ) -> None:
        repo, number = split_id(external_id)
        tag = marker(key)
        seen = known if known is not None else await self.comments(repo, number)
        if any(tag in c.body for c in seen):
            return
        await self.http.send(
            "POST", f"/repos/{repo}/issues/{number}/comments", json={"body": f"{body}\n\n{tag}"}
        )

    async def complete(self, external_id: str, *, body: str, key: str) -> None:
        await self.comment(external_id, body=body, key=key)
        repo, number = split_id(external_id)
        await self.http.send(
            "PATCH",
            f"/repos/{repo}/issues/{number}",
            json={"state": "closed", "state_reason": "completed"},
        )

    async def add_label(self, external_id: str, label: str) -> None:
        repo, number = split_id(external_id)
        await self.http.send(
            "POST", f"/repos/{repo}/issues/{number}/labels", json={"labels": [label]}
        )


def _github_ticket(repo: str, item: dict[str, Any], comments: list[TicketComment]) -> Ticket:
    number = int(item["number"])
    return Ticket(
        source="github",
        external_id=f"{repo}#{number}",
        number=number,
        title=item.get("title") or "",
        body=item.get("body") or "",
        url=item.get("html_url") or "",
        labels=[lb["name"] if isinstance(lb, dict) else str(lb) for lb in item.get("labels", [])],
        comments=comments,
        repo_hint=repo,
        state=item.get("state") or "open",
        author=(item.get("user") or {}).get("login"),
        assignee=(item.get("assignee") or {}).get("login"),
        created_at=item.get("created_at"),
        updated_at=item.get("updated_at"),
    )


class GitLabTickets:
    source = "gitlab"

    def __init__(
        self, *, http: TicketHttp, projects: list[str], label: str | None, max_pages: int
    ) -> None:
        self.http = http
        self.projects = projects
        self.label = label
        self.max_pages = max_pages

    async def actionable(self, *, skip: Collection[str] = ()) -> list[Ticket]:
        found: list[Ticket] = []
        for project in self.projects:
            found.extend(await self.issues(project, state="opened", label=self.label, skip=skip))
        return found

    async def issues(
        self,
        project: str,
        *,
        state: str,
        label: str | None,
        with_comments: bool = True,
        skip: Collection[str] = (),
    ) -> list[Ticket]:
        params: dict[str, Any] = {"per_page": 100}
        if state != "all":
            params["state"] = state
        if label:
            params["labels"] = label
        found: list[Ticket] = []
        for page in range(1, self.max_pages + 1):
            response = await self.http.send(
                "GET", f"/projects/{_enc(project)}/issues", params={**params, "page": page}
            )
            for item in response.json():
                comments = (
                    await self.comments(project, int(item["iid"]))
                    if with_comments
                    and item.get("user_notes_count", 1)
                    and f"{project}#{item['iid']}" not in skip
                    else []
                )
                found.append(_gitlab_ticket(project, item, comments))
            if not response.headers.get("x-next-page"):
                break
        return found

    async def get(self, external_id: str) -> Ticket:
        project, iid = split_id(external_id)
        item = (await self.http.send("GET", f"/projects/{_enc(project)}/issues/{iid}")).json()
        comments = await self.comments(project, iid) if item.get("user_notes_count", 1) else []
        return _gitlab_ticket(project, item, comments)

    async def comments(self, project: str, iid: int) -> list[TicketComment]:
        out: list[TicketComment] = []
        for page in range(1, self.max_pages + 1):
            response = await self.http.send(
                "GET",
                f"/projects/{_enc(project)}/issues/{iid}/notes",
                params={"per_page": 100, "page": page, "sort": "asc"},
            )
            out.extend(
                TicketComment((n.get("author") or {}).get("username", ""), n.get("body") or "")
                for n in response.json()
                if not n.get("system")
            )
            if not response.headers.get("x-next-page"):
                break
        return out

    async def comment(
        self, external_id: str, *, body: str, key: str, known: list[TicketComment] | None = None
    ) -> None:
        project, iid = split_id(external_id)
        tag = marker(key)
        seen = known if known is not None else await self.comments(project, iid)
        if any(tag in c.body for c in seen):
            return
        await self.http.send(
            "POST",
            f"/projects/{_enc(project)}/issues/{iid}/notes",
            json={"body": f"{body}\n\n{tag}"},
        )

    async def complete(self, external_id: str, *, body: str, key: str) -> None:
        await self.comment(external_id, body=body, key=key)
        project, iid = split_id(external_id)
        await self.http.send(
            "PUT", f"/projects/{_enc(project)}/issues/{iid}", json={"state_event": "close"}
        )

    async def add_label(self, external_id: str, label: str) -> None:
        project, iid = split_id(external_id)
        await self.http.send(
            "PUT", f"/projects/{_enc(project)}/issues/{iid}", json={"add_labels": label}
        )


def _enc(project: str) -> str:
    return quote(project, safe="")


def _gitlab_ticket(project: str, item: dict[str, Any], comments: list[TicketComment]) -> Ticket:
    iid = int(item["iid"])
    return Ticket(
        source="gitlab",
        external_id=f"{project}#{iid}",
        number=iid,
        title=item.get("title") or "",
        body=item.get("description") or "",
        url=item.get("web_url") or "",
        labels=[str(lb) for lb in item.get("labels", [])],
        comments=comments,
        repo_hint=project,
        state="open" if item.get("state") == "opened" else str(item.get("state") or "closed"),
        author=(item.get("author") or {}).get("username"),
        assignee=(item.get("assignee") or {}).get("username"),
        created_at=item.get("created_at"),
        updated_at=item.get("updated_at"),
    )
