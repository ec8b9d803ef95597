"""GitLab (gitlab.com or self-hosted) over REST v4: merge requests, pipelines, approvals."""

from __future__ import annotations

import re
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

JOB_STATES: dict[str, CheckState] = {
    "success": "success",
    "skipped": "success",
    "manual": "success",
    "failed": "failure",
    "canceled": "failure",
}
CONFLICT_STATUSES = {"cannot_be_merged", "conflict", "need_rebase"}
# GitLab computes mergeability in the background: these mean "not known yet".
UNKNOWN_STATUSES = {"unchecked", "checking", "preparing", "approvals_syncing", ""}
ReviewState = Literal["APPROVED", "CHANGES_REQUESTED", "COMMENTED"]
REVIEW_STATES: dict[str, ReviewState] = {
    "approved": "APPROVED",
    "requested_changes": "CHANGES_REQUESTED",
    "reviewed": "COMMENTED",
}
# `reviewer_state` of draft_notes/bulk_publish (GitLab 17.x): the documented way to request
# changes; there is no quick action for it.
PUBLISH_STATES = {"REQUEST_CHANGES": "requested_changes", "COMMENT": "reviewed"}
NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')
# One page of the repository feed: MRs and pipelines by update, newest first.
FEED_PAGE = 100


def default_api_url(ref: RepoRef) -> str:
    return f"{ref.scheme}://{ref.host}/api/v4"


def _mr(data: dict[str, Any]) -> PullRequestInfo:
    state = {"opened": "open", "locked": "open"}.get(data["state"], data["state"])
    status = data.get("detailed_merge_status") or data.get("merge_status") or ""
    if data.get("has_conflicts") or status in CONFLICT_STATUSES:
        mergeable: bool | None = False
    elif status in UNKNOWN_STATUSES:
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
            forge="gitlab",
        )
        self.project = f"/projects/{quote(ref.path, safe='')}"

    async def aclose(self) -> None:
        await self.http.aclose()

    def _mr_path(self, number: int) -> str:
        return f"{self.project}/merge_requests/{number}"

    async def _get_all(self, path: str, *, params: dict[str, Any] | None = None) -> list[Any]:
        """Every page of a list, following `Link: rel="next"` as given (offset or keyset)."""
        items: list[Any] = []
        url: str = path
        query: dict[str, Any] | None = {"per_page": 100, **(params or {})}
        while True:
            body, headers = await self.http.get(url, params=query)
            batch = body if isinstance(body, list) else []
            items.extend(batch)
            found = NEXT_LINK.search(headers.get("link", ""))
            if found and batch:
                url, query = found.group(1), None  # the link carries the whole query
            elif headers.get("x-next-page") and batch and query is not None:
                query = {**query, "page": headers["x-next-page"]}
            else:
                return items

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
        found = await self._get_all(
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

    async def checks(self, sha: str, *, statuses: bool = True) -> list[Check]:
        """The jobs of the newest pipeline for `sha` (`statuses`, GitHub's, does not apply)."""
        pipelines, _ = await self.http.get(
            f"{self.project}/pipelines", params={"sha": sha, "order_by": "id", "sort": "desc"}
        )
        if not pipelines:
            return []
        jobs = await self._get_all(f"{self.project}/pipelines/{pipelines[0]['id']}/jobs")
        checks = []
        for job in jobs:
            state = JOB_STATES.get(job.get("status", ""), "pending")
            if state == "failure" and job.get("allow_failure"):
                state = "success"
            checks.append(Check(job["name"], state, str(job["id"]), "", "gitlab-ci"))
        return checks

    async def repo_activity(self) -> RepoActivity:
        """The project's change feed: MRs and pipelines ordered by `updated_at`.

        Pipelines are all of the project's CI, so on GitLab the feed sees every check.
        """
        query = {"order_by": "updated_at", "sort": "desc", "per_page": FEED_PAGE}
        mrs, mr_headers = await self.http.get(
            f"{self.project}/merge_requests", params={**query, "state": "all"}
        )
        pipelines, pipeline_headers = await self.http.get(f"{self.project}/pipelines", params=query)
        return RepoActivity(
            pulls=[
                PullActivity(
                    number=int(m["iid"]),
                    state={"opened": "open", "locked": "open"}.get(m["state"], m["state"]),
                    head_sha=str(m.get("sha") or ""),
                    updated_at=str(m.get("updated_at") or ""),
                    base_branch=str(m.get("target_branch") or ""),
                )
                for m in mrs
            ],
            runs=[
                CiRun(
                    id=str(p["id"]),
                    head_sha=str(p["sha"]),
                    state=JOB_STATES.get(str(p.get("status")), "pending"),
                    updated_at=str(p.get("updated_at") or ""),
                )
                for p in pipelines
            ],
            pulls_complete=not _has_next(mr_headers),
            runs_complete=not _has_next(pipeline_headers),
        )

    async def check_log_tail(self, check: Check, *, max_chars: int) -> str:
        if check.log_ref is None:
            return tail(check.summary, max_chars)
        response = await self.http.request("GET", f"{self.project}/jobs/{check.log_ref}/trace")
        return tail(response.text if response.is_success else check.summary, max_chars)

    async def _notes(self, number: int) -> list[dict[str, Any]]:
        notes = await self._get_all(
            f"{self._mr_path(number)}/notes", params={"sort": "asc", "order_by": "created_at"}
        )
        return [n for n in notes if not n.get("system")]

    async def reviews(self, number: int) -> list[Review]:
        """Reviewers' states (approved / requested changes / reviewed) and approvals by
        people who are not reviewers, each with the author's latest note as its body.

        A review's id changes when its state does or its author writes again, so a new
        request for changes is told apart from one already acted on.
        """
        reviewers, _ = await self.http.get(f"{self._mr_path(number)}/reviewers")
        try:
            approvals, _ = await self.http.get(f"{self._mr_path(number)}/approvals")
        except ForgeError as exc:
            if exc.status not in (403, 404):  # approvals not offered on this instance
                raise
            approvals = {}
        states: dict[str, ReviewState] = {}
        for item in reviewers:
            state = REVIEW_STATES.get(item.get("state", ""))
            if state is not None:
                states[(item.get("user") or {}).get("username", "")] = state
        for item in approvals.get("approved_by") or []:
            states.setdefault((item.get("user") or {}).get("username", ""), "APPROVED")
        if not states:
            return []
        notes = await self._notes(number)
        found = []
        for user, state in states.items():
            mine = [n for n in notes if (n.get("author") or {}).get("username") == user]
            last = mine[-1] if mine else {}
            review_id = f"{user}:{state}:{last.get('id', '')}"
            found.append(Review(review_id, user, state, last.get("body") or ""))
        return found

    async def inline_comments(self, number: int) -> list[InlineComment]:
        discussions = await self._get_all(f"{self._mr_path(number)}/discussions")
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
        # `/changes` is deprecated (removed in API v5); `/diffs` (GitLab 15.7+) pages.
        parts = []
        for change in await self._get_all(f"{self._mr_path(number)}/diffs"):
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
        # 406 "Branch cannot be merged" is a conflict; newer GitLab answers 405/422 instead.
        if response.status_code == 406 or (
            response.status_code in (405, 422) and mr.mergeable is False
        ):
            return MergeOutcome(merged=False, conflict=True, message=message)
        if response.status_code in (401, 403, 404) or response.status_code >= 500:
            raise_for(response)
        return MergeOutcome(merged=False, message=message)

    async def _note_once(self, path: str, *, body: str, key: str) -> None:
        tag = marker(key)
        existing = await self._get_all(f"{path}/notes")
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
        """A review as GitLab has them: draft notes published at once with a summary note
        and, for "request changes" or "comment", the reviewer state (`bulk_publish`,
        GitLab 17.x); an approval is `POST .../approve`. Retries post nothing twice.
        """
        path = self._mr_path(number)
        tag = marker(f"review-{sha}")
        me, _ = await self.http.get("/user")
        published = any(
            tag in (n.get("body") or "") and (n.get("author") or {}).get("id") == me["id"]
            for n in await self._notes(number)
        )
        if not published:
            state = PUBLISH_STATES.get(draft.event)
            if state is not None:
                await self._become_reviewer(number, me_id=int(me["id"]))
            await self._draft_comments(number, draft.comments)
            payload: dict[str, Any] = {"note": f"{draft.body}\n\n{tag}"}
            if state is not None:
                payload["reviewer_state"] = state
            response = await self.http.request(
                "POST", f"{path}/draft_notes/bulk_publish", json=payload
            )
            raise_for(response)
        if draft.event == "APPROVE":
            response = await self.http.request("POST", f"{path}/approve", json={"sha": sha})
            # 401: this user may not approve (approved already, or authored the MR);
            # 409: the MR moved on since the reviewed commit, so the approval would be stale.
            if response.status_code not in (401, 409):
                raise_for(response)

    async def _become_reviewer(self, number: int, *, me_id: int) -> None:
        """Only a reviewer has a review state: add this token's user to the reviewers."""
        mr, _ = await self.http.get(self._mr_path(number))
        ids = [int(r["id"]) for r in mr.get("reviewers") or []]
        if me_id not in ids:
            response = await self.http.request(
                "PUT", self._mr_path(number), json={"reviewer_ids": [*ids, me_id]}
            )
            raise_for(response)

    async def _draft_comments(self, number: int, comments: list[InlineComment]) -> None:
        path = f"{self._mr_path(number)}/draft_notes"
        existing = {d.get("note") for d in await self._get_all(path)}
        todo = [
            c
            for c in comments
            if c.body not in existing and _plain(c) not in existing  # drafted by a retry
        ]
        if not todo:
            return
        mr, _ = await self.http.get(self._mr_path(number))
        refs = mr.get("diff_refs") or {}
        for comment in todo:
            position = {
                "position_type": "text",
                "base_sha": refs.get("base_sha"),
                "start_sha": refs.get("start_sha"),
                "head_sha": refs.get("head_sha"),
                "old_path": comment.path,
                "new_path": comment.path,
                "new_line": comment.line or 1,
            }
            body = {"note": comment.body, "position": position}
            response = await self.http.request("POST", path, json=body)
            if response.status_code == 400:
                # Not a line of this MR's diff: keep the comment, as a plain one.
                body = {"note": _plain(comment)}
                response = await self.http.request("POST", path, json=body)
            raise_for(response)

    async def approvals(self, number: int) -> int:
        body, _ = await self.http.get(f"{self._mr_path(number)}/approvals")
        return len(body.get("approved_by") or [])


def _has_next(headers: httpx.Headers) -> bool:
    return bool(NEXT_LINK.search(headers.get("link", "")) or headers.get("x-next-page"))


def _plain(comment: InlineComment) -> str:
    return f"{comment.path}:{comment.line or '?'} - {comment.body}"


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
        return str(data.get("message") or data.get("error") or response.text)
    except ValueError:
        return response.text
