"""GitLab (gitlab.com or self-hosted) over REST v4: merge requests, pipelines, approvals."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from integrations.forges.base import (
    Check,
    CheckState,
    EtagCache,
    ForgeError,
    InlineComment,
    MergeMethod,
    MergeOutcome,
    PullRequestInfo,
    RepoRef,
    RestClient,
    Review,
    ReviewDraft,
    marker,
    raise_for,
    tail,
)

JOB_STATES: dict[str, CheckState] = {
    "success": "success",
    "skipped": "success",
    "manual": "success",
    "failed": "failure",
    "canceled": "failure",
}
CONFLICT_STATUSES = {"cannot_be_merged", "conflict", "need_rebase"}
REVIEW_STATES = {"approved": "APPROVED", "requested_changes": "CHANGES_REQUESTED"}


def default_api_url(ref: RepoRef) -> str:
    return f"{ref.scheme}://{ref.host}/api/v4"


def _mr(data: dict[str, Any]) -> PullRequestInfo:
    state = {"opened": "open", "locked": "open"}.get(data["state"], data["state"])
    status = data.get("detailed_merge_status") or data.get("merge_status") or ""
    if data.get("has_conflicts") or status in CONFLICT_STATUSES:
        mergeable: bool | None = False
    elif status in ("unchecked", "checking", "preparing", ""):
        mergeable = None
    else:
        mergeable = True
    return PullRequestInfo(
        number=int(data["iid"]),
        url=str(data.get("web_url")),
        state=state,
        mergeable=mergeable,
        head_sha=str(data.get("sha") or ""),
        head_branch=data["source_branch"],
        base_branch=data["target_branch"],
        title=data.get("title") or "",
        body=data.get("description") or "",
        draft=bool(data.get("draft")),
        updated_at=str(data.get("updated_at") or ""),
    )


class GitLabForge:
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
        headers = {"PRIVATE-TOKEN": token} if token else {}
        self.http = RestClient(
            base_url=api_url or default_api_url(ref),
            headers=headers,
            cache=cache,
            cache_key=str(hash(token)),
            transport=transport,
        )
        self.project = f"/projects/{quote(ref.path, safe='')}"

    async def aclose(self) -> None:
        await self.http.aclose()

    def _mr_path(self, number: int) -> str:
        return f"{self.project}/merge_requests/{number}"

    async def branch_sha(self, branch: str) -> str | None:
        try:
            body, _ = await self.http.get(
                f"{self.project}/repository/branches/{quote(branch, safe='')}"
            )
        except ForgeError as exc:
            if exc.status == 404:
                return None
            raise
        return str(body["commit"]["id"])

    async def changed_files(self, *, base: str, head: str) -> int:
        body, _ = await self.http.get(
            f"{self.project}/repository/compare", params={"from": base, "to": head}
        )
        return len(body.get("diffs") or [])

    async def find_open_pr(self, *, head: str) -> PullRequestInfo | None:
        found = await self.http.get_all(
            f"{self.project}/merge_requests", params={"state": "opened", "source_branch": head}
        )
        return _mr(found[0]) if found else None

    async def open_pr(
        self, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequestInfo:
        payload = {
            "source_branch": head,
            "target_branch": base,
            "title": f"Draft: {title}" if draft else title,
            "description": body,
        }
        response = await self.http.request("POST", f"{self.project}/merge_requests", json=payload)
        if response.status_code == 409:
            # "Another open merge request already exists for this source branch".
            existing = await self.find_open_pr(head=head)
            if existing is not None:
                return existing
        raise_for(response)
        return _mr(response.json())

    async def get_pr(self, number: int) -> PullRequestInfo:
        body, _ = await self.http.get(self._mr_path(number))
        return _mr(body)

    async def checks(self, sha: str) -> list[Check]:
        pipelines, _ = await self.http.get(
            f"{self.project}/pipelines", params={"sha": sha, "order_by": "id", "sort": "desc"}
        )
        if not pipelines:
            return []
        jobs = await self.http.get_all(f"{self.project}/pipelines/{pipelines[0]['id']}/jobs")
        checks = []
        for job in jobs:
            state = JOB_STATES.get(job.get("status", ""), "pending")
            if state == "failure" and job.get("allow_failure"):
                state = "success"
            checks.append(Check(job["name"], state, str(job["id"]), ""))
        return checks

    async def check_log_tail(self, check: Check, *, max_chars: int) -> str:
        if check.log_ref is None:
            return tail(check.summary, max_chars)
        response = await self.http.request("GET", f"{self.project}/jobs/{check.log_ref}/trace")
        return tail(response.text if response.is_success else check.summary, max_chars)

    async def _notes(self, number: int) -> list[dict[str, Any]]:
        notes = await self.http.get_all(
            f"{self._mr_path(number)}/notes", params={"sort": "asc", "order_by": "created_at"}
        )
        return [n for n in notes if not n.get("system")]

    async def reviews(self, number: int) -> list[Review]:
        """Reviewer states (approved / requested changes) with each reviewer's latest note."""
        reviewers, _ = await self.http.get(f"{self._mr_path(number)}/reviewers")
        notes = await self._notes(number)
        found = []
        for item in reviewers:
            user = (item.get("user") or {}).get("username", "")
            state = REVIEW_STATES.get(item.get("state", ""))
            if state is None:
                continue
            mine = [n for n in notes if (n.get("author") or {}).get("username") == user]
            last = mine[-1] if mine else None
            review_id = f"{user}:{last['id'] if last else item.get('state')}"
            body = (last or {}).get("body") or ""
            found.append(Review(review_id, user, state, body))  # type: ignore[arg-type]
        return found

    async def inline_comments(self, number: int) -> list[InlineComment]:
        discussions = await self.http.get_all(f"{self._mr_path(number)}/discussions")
        found = []
        for discussion in discussions:
            for note in discussion.get("notes") or []:
                position = note.get("position") or {}
                if position.get("new_path") and not note.get("resolved"):
                    found.append(
                        InlineComment(position["new_path"], position.get("new_line"), note["body"])
                    )
        return found

    async def discussion(self, number: int) -> list[str]:
        return [
            f"{(n.get('author') or {}).get('username', '')}: {n.get('body') or ''}"
            for n in await self._notes(number)
        ]

    async def diff(self, number: int) -> str:
        body, _ = await self.http.get(f"{self._mr_path(number)}/changes")
        parts = []
        for change in body.get("changes") or []:
            parts.append(
                f"--- a/{change['old_path']}\n+++ b/{change['new_path']}\n{change['diff']}"
            )
        return "\n".join(parts)

    async def merge(self, number: int, *, method: MergeMethod, sha: str | None) -> MergeOutcome:
        # GitLab's merge method is a project setting; the API chooses only squash or not.
        payload: dict[str, Any] = {"squash": method == "squash"}
        if sha:
            payload["sha"] = sha
        response = await self.http.request("PUT", f"{self._mr_path(number)}/merge", json=payload)
        if response.status_code == 200:
            return MergeOutcome(merged=True, sha=response.json().get("merge_commit_sha"))
        mr = await self.get_pr(number)
        if mr.state == "merged":
            return MergeOutcome(merged=True)
        message = _message(response)
        if response.status_code in (405, 406, 422) and mr.mergeable is False:
            return MergeOutcome(merged=False, conflict=True, message=message)
        if response.status_code in (401, 403, 404) or response.status_code >= 500:
            raise_for(response)
        return MergeOutcome(merged=False, message=message)

    async def _note_once(self, path: str, *, body: str, key: str) -> None:
        tag = marker(key)
        existing = await self.http.get_all(f"{path}/notes")
        if any(tag in (n.get("body") or "") for n in existing):
            return
        response = await self.http.request(
            "POST", f"{path}/notes", json={"body": f"{body}\n\n{tag}"}
        )
        raise_for(response)

    async def comment(self, number: int, *, body: str, key: str) -> None:
        await self._note_once(self._mr_path(number), body=body, key=key)

    async def close_issue(self, number: int, *, comment: str, key: str) -> None:
        path = f"{self.project}/issues/{number}"
        await self._note_once(path, body=comment, key=key)
        response = await self.http.request("PUT", path, json={"state_event": "close"})
        raise_for(response)

    async def submit_review(self, number: int, *, draft: ReviewDraft, sha: str) -> None:
        path = self._mr_path(number)
        for comment in draft.comments:
            position = {
                "position_type": "text",
                "new_path": comment.path,
                "new_line": comment.line or 1,
                "head_sha": sha,
                "base_sha": sha,
                "start_sha": sha,
            }
            response = await self.http.request(
                "POST", f"{path}/discussions", json={"body": comment.body, "position": position}
            )
            raise_for(response)
        await self._note_once(path, body=draft.body, key=f"review-{sha}")
        if draft.event == "APPROVE":
            response = await self.http.request("POST", f"{path}/approve", json={"sha": sha})
            if response.status_code != 401:  # 401 = already approved by this user
                raise_for(response)
        elif draft.event == "REQUEST_CHANGES":
            # The API has no "request changes" call: the review note carries the quick action.
            response = await self.http.request(
                "POST", f"{path}/notes", json={"body": "/request_changes"}
            )
            raise_for(response)

    async def approvals(self, number: int) -> int:
        body, _ = await self.http.get(f"{self._mr_path(number)}/approvals")
        return len(body.get("approved_by") or [])


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
        return str(data.get("message") or data.get("error") or response.text)
    except ValueError:
        return response.text
