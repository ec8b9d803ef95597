"""GitHub (and GitHub Enterprise) over REST v3."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

import httpx

from integrations.forges.base import (
    Check,
    CheckState,
    CiRun,
    EtagCache,
    ForgeError,
    InlineComment,
    MergeMethod,
    MergeOutcome,
    PullActivity,
    PullRequestInfo,
    RepoActivity,
    RepoRef,
    RestClient,
    Review,
    ReviewDraft,
    marker,
    raise_for,
    tail,
)
from integrations.tls import tls_context

OK_CONCLUSIONS = {"success", "skipped", "neutral"}
API_VERSION = "2022-11-28"
# One page of the repository feed: PRs by update, workflow runs by creation, newest first.
FEED_PAGE = 100


def default_api_url(ref: RepoRef) -> str:
    if ref.host in ("github.com", "www.github.com"):
        return "https://api.github.com"
    return f"{ref.scheme}://{ref.host}/api/v3"


def _pr(data: dict[str, Any]) -> PullRequestInfo:
    merged = data.get("merged") or data.get("merged_at")
    state: Literal["open", "closed", "merged"] = (
        "merged" if merged else "open" if data["state"] == "open" else "closed"
    )
    return PullRequestInfo(
        number=int(data["number"]),
        url=str(data.get("html_url") or data.get("url")),
        state=state,
        mergeable=data.get("mergeable"),
        head_sha=data["head"]["sha"],
        head_branch=data["head"]["ref"],
        base_branch=data["base"]["ref"],
        title=data.get("title") or "",
        body=data.get("body") or "",
        draft=bool(data.get("draft")),
        updated_at=str(data.get("updated_at") or ""),
    )


def run_state(run: dict[str, Any]) -> CheckState:
    """A check run's or workflow run's state (the REST answer's or a webhook payload's)."""
    if run.get("status") != "completed":
        return "pending"
    return "success" if run.get("conclusion") in OK_CONCLUSIONS else "failure"


STATUS_STATES: dict[str, CheckState] = {
    "success": "success",
    "pending": "pending",
    "failure": "failure",
    "error": "failure",
}


class GitHubForge:
    def __init__(
        self,
        *,
        ref: RepoRef,
        token: str | None,
        cache: EtagCache,
        api_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.ref = ref
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = RestClient(
            base_url=api_url or default_api_url(ref),
            headers=headers,
            cache=cache,
            cache_key=str(hash(token)),
            transport=transport,
            forge="github",
        )
        self.repo = f"/repos/{ref.path}"
        self.owner = ref.path.split("/", 1)[0]

    async def aclose(self) -> None:
        await self.http.aclose()

    async def branch_sha(self, branch: str) -> str | None:
        try:
            body, _ = await self.http.get(f"{self.repo}/branches/{quote(branch, safe='/')}")
        except ForgeError as exc:
            if exc.status == 404:
                return None
            raise
        return str(body["commit"]["sha"])

    async def changed_files(self, *, base: str, head: str) -> int:
        base, head = quote(base, safe="/"), quote(head, safe="/")
        body, _ = await self.http.get(f"{self.repo}/compare/{base}...{head}")
        return len(body.get("files") or [])

    async def find_open_pr(self, *, head: str) -> PullRequestInfo | None:
        found = await self.http.get_all(
            f"{self.repo}/pulls", params={"state": "open", "head": f"{self.owner}:{head}"}
        )
        return _pr(found[0]) if found else None

    async def open_pr(
        self, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequestInfo:
        payload = {"title": title, "head": head, "base": base, "body": body, "draft": draft}
        response = await self.http.request("POST", f"{self.repo}/pulls", json=payload)
        if response.status_code == 422:
            # "A pull request already exists": a retried activity adopts it.
            existing = await self.find_open_pr(head=head)
            if existing is not None:
                return existing
        raise_for(response)
        return _pr(response.json())

    async def get_pr(self, number: int) -> PullRequestInfo:
        body, _ = await self.http.get(f"{self.repo}/pulls/{number}")
        return _pr(body)

    async def checks(self, sha: str, *, statuses: bool = True) -> list[Check]:
        """The commit's check runs and, unless `statuses` is False (the repository is known
        not to use them), its commit statuses: one request more."""
        found: list[Check] = []
        page = 1
        while True:
            body, _ = await self.http.get(
                f"{self.repo}/commits/{sha}/check-runs", params={"per_page": 100, "page": page}
            )
            runs = body.get("check_runs") or []
            for run in runs:
                output = run.get("output") or {}
                summary = "\n".join(x for x in (output.get("summary"), output.get("text")) if x)
                app = str((run.get("app") or {}).get("slug") or "")
                found.append(Check(run["name"], run_state(run), str(run["id"]), summary, app))
            if len(runs) < 100 or page * 100 >= int(body.get("total_count") or 0):
                break
            page += 1
        if not statuses:
            return found
        status, _ = await self.http.get(f"{self.repo}/commits/{sha}/status")
        for item in status.get("statuses") or []:
            state = STATUS_STATES.get(item.get("state", ""), "pending")
            summary = item.get("description") or ""
            found.append(Check(item["context"], state, None, summary, "status"))
        return found

    async def repo_activity(self) -> RepoActivity:
        """The repository's change feed: two conditional GETs, free (304) when nothing moved.

        CI here is GitHub Actions' workflow runs only; check runs of other apps and commit
        statuses are not listed, so a PR whose CI reports that way keeps its own poll.
        """
        pulls, pull_headers = await self.http.get(
            f"{self.repo}/pulls",
            params={"state": "all", "sort": "updated", "direction": "desc", "per_page": FEED_PAGE},
        )
        runs, run_headers = await self.http.get(
            f"{self.repo}/actions/runs", params={"per_page": FEED_PAGE}
        )
        return RepoActivity(
            pulls=[
                PullActivity(
                    number=int(p["number"]),
                    state="merged" if p.get("merged_at") else str(p["state"]),
                    head_sha=str(p["head"]["sha"]),
                    updated_at=str(p.get("updated_at") or ""),
                    base_branch=str(p["base"]["ref"]),
                )
                for p in pulls
            ],
            runs=[
                CiRun(
                    id=str(r["id"]),
                    head_sha=str(r["head_sha"]),
                    state=run_state(r),
                    updated_at=str(r.get("updated_at") or ""),
                )
                for r in runs.get("workflow_runs") or []
            ],
            pulls_complete='rel="next"' not in pull_headers.get("link", ""),
            runs_complete='rel="next"' not in run_headers.get("link", ""),
        )

    async def check_log_tail(self, check: Check, *, max_chars: int) -> str:
        if check.log_ref is not None:
            # A GitHub Actions check run's id is its job id; other apps have no job log.
            response = await self.http.request(
                "GET", f"{self.repo}/actions/jobs/{check.log_ref}/logs"
            )
            if response.status_code in (301, 302) and "location" in response.headers:
                async with httpx.AsyncClient(timeout=30, verify=tls_context()) as raw:
                    response = await raw.get(response.headers["location"])
            if response.is_success and response.text.strip():
                return tail(response.text, max_chars)
        return tail(check.summary, max_chars)

    async def reviews(self, number: int) -> list[Review]:
        items = await self.http.get_all(f"{self.repo}/pulls/{number}/reviews")
        return [
            Review(
                id=str(r["id"]),
                author=(r.get("user") or {}).get("login", ""),
                state=r["state"],
                body=r.get("body") or "",
                commit_sha=r.get("commit_id"),
            )
            for r in items
        ]

    async def inline_comments(self, number: int) -> list[InlineComment]:
        items = await self.http.get_all(f"{self.repo}/pulls/{number}/comments")
        return [
            InlineComment(
                path=c["path"],
                line=c.get("line") or c.get("original_line"),
                body=c.get("body") or "",
                review_id=str(c["pull_request_review_id"])
                if c.get("pull_request_review_id")
                else None,
            )
            for c in items
        ]

    async def discussion(self, number: int) -> list[str]:
        items = await self.http.get_all(f"{self.repo}/issues/{number}/comments")
        return [f"{(c.get('user') or {}).get('login', '')}: {c.get('body') or ''}" for c in items]

    async def diff(self, number: int) -> str:
        body, _ = await self.http.get(
            f"{self.repo}/pulls/{number}", accept="application/vnd.github.diff"
        )
        return str(body)

    async def merge(self, number: int, *, method: MergeMethod, sha: str | None) -> MergeOutcome:
        payload: dict[str, Any] = {"merge_method": method}
        if sha:
            payload["sha"] = sha
        response = await self.http.request("PUT", f"{self.repo}/pulls/{number}/merge", json=payload)
        if response.status_code == 200:
            return MergeOutcome(merged=True, sha=response.json().get("sha"))
        # Merged already (a retry after a crash) is a success; otherwise say why not.
        pr = await self.get_pr(number)
        if pr.state == "merged":
            return MergeOutcome(merged=True)
        message = _message(response)
        if response.status_code == 405 and pr.mergeable is False:
            return MergeOutcome(merged=False, conflict=True, message=message)
        if response.status_code in (405, 409, 422):
            return MergeOutcome(merged=False, message=message)
        raise_for(response)
        return MergeOutcome(merged=False, message=message)

    async def comment(self, number: int, *, body: str, key: str) -> None:
        tag = marker(key)
        existing = await self.http.get_all(f"{self.repo}/issues/{number}/comments")
        if any(tag in (c.get("body") or "") for c in existing):
            return
        response = await self.http.request(
            "POST", f"{self.repo}/issues/{number}/comments", json={"body": f"{body}\n\n{tag}"}
        )
        raise_for(response)

    async def close_issue(self, number: int, *, comment: str, key: str) -> None:
        await self.comment(number, body=comment, key=key)
        response = await self.http.request(
            "PATCH",
            f"{self.repo}/issues/{number}",
            json={"state": "closed", "state_reason": "completed"},
        )
        raise_for(response)

    async def submit_review(self, number: int, *, draft: ReviewDraft, sha: str) -> None:
        tag = marker(f"review-{sha}")
        if any(tag in r.body for r in await self.reviews(number)):
            return  # posted by an earlier attempt of this activity
        payload = {
            "commit_id": sha,
            "body": f"{draft.body}\n\n{tag}",
            "event": draft.event,
            "comments": [
                {"path": c.path, "line": c.line or 1, "side": "RIGHT", "body": c.body}
                for c in draft.comments
            ],
        }
        response = await self.http.request(
            "POST", f"{self.repo}/pulls/{number}/reviews", json=payload
        )
        raise_for(response)

    async def approvals(self, number: int) -> int:
        latest: dict[str, str] = {}
        for review in await self.reviews(number):
            if review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                latest[review.author] = review.state
        return sum(1 for state in latest.values() if state == "APPROVED")


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message") or response.text)
    except ValueError:
        return response.text
