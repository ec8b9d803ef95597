"""A GitLab REST v4 test double over real bare repositories, following the documented API.

Projects by id or URL-encoded path (`/projects/acme%2Fapp`); `PRIVATE-TOKEN` or Bearer auth;
merge requests with `detailed_merge_status` (briefly `checking` after every change, as GitLab
computes it asynchronously), merges that are real git merges (405 not open/draft/pipeline,
406 conflicts, 409 SHA mismatch); reviewers and their states; approvals; notes, discussions
with diff positions, draft notes published with `reviewer_state`; pipelines, jobs and job
traces (a CI of its own: one `test` job per pushed commit); offset pagination headers and
keyset pagination where GitLab offers it (project jobs); weak ETags and 304s; `RateLimit-*`
headers and 429 + `Retry-After`; webhooks with `X-Gitlab-Token`; git over smart HTTP.

Event payloads and the asynchronous parts (CI, webhooks) live in tests/forges/gitlab_events.py.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.forges import git_http as g
from tests.forges.gitlab_events import Events, now_iso

DRAFT_PREFIXES = ("draft:", "[draft]", "(draft)")
REVIEWER_STATES = {"requested_changes", "reviewed"}


@dataclass
class MergeRequest:
    iid: int
    id: int
    title: str
    description: str
    source: str
    target: str
    author: str
    state: str = "opened"  # opened | closed | merged | locked
    merge_commit_sha: str | None = None
    squash_commit_sha: str | None = None
    merged_at: str | None = None
    closed_at: str | None = None
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    reviewers: dict[str, str] = field(default_factory=dict)  # username -> review state
    approvals: dict[str, str] = field(default_factory=dict)  # username -> approved_at
    drafts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def draft(self) -> bool:
        return self.title.lower().startswith(DRAFT_PREFIXES)


@dataclass
class Project:
    id: int
    path_with_namespace: str
    path: Path
    default_branch: str = "main"
    # Project settings the double honours.
    only_allow_merge_if_pipeline_succeeds: bool = False
    merge_requests_author_approval: bool = False
    reset_approvals_on_push: bool = True
    approvals_required: int = 0
    ci_command: str | None = None
    # visibility "private": git reads need a token too.
    private: bool = False
    mrs: dict[int, MergeRequest] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    # ("MergeRequest" | "Issue", iid) -> discussions, each {"id", "individual_note", "notes"}.
    discussions: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    jobs: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    iids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def notes(self, kind: str, iid: int) -> list[dict[str, Any]]:
        found = self.discussions.get((kind, iid), [])
        return [n for d in found for n in d["notes"]]


class _KeepEncodedSlashes:
    """Route on the raw path so `acme%2Fapp` stays one segment (servers decode `path`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw:
            kept = raw.decode("latin-1").replace("%2F", "%252F").replace("%2f", "%252F")
            scope = {**scope, "path": unquote(kept)}
        await self.app(scope, receive, send)


Handler = Callable[[Request, Project, str], Coroutine[Any, Any, Response]]


class GitLabDouble:
    """State and behaviour; `app` serves it. Users are tokens: {token: username}."""

    def __init__(self, root: Path, *, users: dict[str, str]) -> None:
        self.root = root
        self.users = users
        self.user_ids = {name: n for n, name in enumerate(users.values(), start=1)}
        self.projects: dict[str, Project] = {}
        self.base_url = ""  # set by the server once its port is known
        self.rate_limit = 2000  # requests per window, like gitlab.com's authenticated API
        self.remaining: dict[str, int] = {}
        self.reset_at = int(time.time()) + 60
        self.throttle_next = 0  # answer this many requests with 429 + Retry-After: 2
        self.requests = 0
        self.not_modified = 0
        self.merges = 0
        self.ids = itertools.count(1000)
        self.traces: dict[int, str] = {}
        self._checked: set[tuple[int, str, str]] = set()
        self._mergeable: dict[tuple[str, str], bool] = {}
        self.events = Events(self)
        self.app = _KeepEncodedSlashes(Starlette(routes=self._routes()))

    # ---- set-up helpers for tests ----------------------------------------------------

    def add_project(
        self, namespace: str, name: str, source: Path, *, private: bool = False
    ) -> Project:
        target = self.root / namespace / f"{name}.git"
        target.parent.mkdir(parents=True, exist_ok=True)
        g.git(self.root, "clone", "-q", "--bare", str(source), str(target))
        project = Project(next(self.ids), f"{namespace}/{name}", target, private=private)
        self.projects[project.path_with_namespace] = project
        return project

    def clone_url(self, project: Project) -> str:
        return f"{self.base_url}/{project.path_with_namespace}.git"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v4"

    def user_json(self, username: str) -> dict[str, Any]:
        return {
            "id": self.user_ids.get(username, 0),
            "username": username,
            "name": username.title(),
            "state": "active",
            "web_url": f"{self.base_url}/{username}",
        }

    # ---- plumbing --------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        p = "/api/v4/projects/{project}"
        table: list[tuple[str, Handler, list[str]]] = [
            ("/repository/branches/{branch:path}", self.branch, ["GET"]),
            ("/repository/compare", self.compare, ["GET"]),
            ("/merge_requests", self.merge_requests, ["GET", "POST"]),
            ("/merge_requests/{iid:int}", self.merge_request, ["GET", "PUT"]),
            ("/merge_requests/{iid:int}/merge", self.merge, ["PUT"]),
            ("/merge_requests/{iid:int}/diffs", self.diffs, ["GET"]),
            ("/merge_requests/{iid:int}/reviewers", self.reviewers, ["GET"]),
            ("/merge_requests/{iid:int}/approvals", self.approvals, ["GET"]),
            ("/merge_requests/{iid:int}/approve", self.approve, ["POST"]),
            ("/merge_requests/{iid:int}/unapprove", self.unapprove, ["POST"]),
            ("/merge_requests/{iid:int}/notes", self.notes, ["GET", "POST"]),
            ("/merge_requests/{iid:int}/discussions", self.discussions, ["GET", "POST"]),
            ("/merge_requests/{iid:int}/discussions/{did}", self.resolve, ["PUT"]),
            ("/merge_requests/{iid:int}/draft_notes", self.draft_notes, ["GET", "POST"]),
            ("/merge_requests/{iid:int}/draft_notes/bulk_publish", self.publish, ["POST"]),
            ("/issues", self.list_issues, ["GET"]),
            ("/issues/{iid:int}", self.issue, ["GET", "PUT"]),
            ("/issues/{iid:int}/notes", self.notes, ["GET", "POST"]),
            ("/pipelines", self.pipelines, ["GET"]),
            ("/pipelines/{pid:int}/jobs", self.pipeline_jobs, ["GET"]),
            ("/jobs", self.project_jobs, ["GET"]),
            ("/jobs/{job:int}/trace", self.trace, ["GET"]),
        ]
        routes = [Route(p + path, self._guard(fn), methods=m) for path, fn, m in table]
        routes.append(Route("/api/v4/user", self.current_user))
        routes.append(Route("/{repo:path}.git/{rest:path}", self.git, methods=["GET", "POST"]))
        return routes

    def token_of(self, request: Request) -> str | None:
        return request.headers.get("private-token") or g.token_of(request)

    def _guard(self, handler: Handler) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Authenticate, rate-limit and find the project before the handler runs."""

        async def endpoint(request: Request) -> Response:
            user, error = self._auth(request)
            if error is not None or user is None:
                return error or self.error(401, "401 Unauthorized")
            key = unquote(request.path_params["project"])
            project = self.projects.get(key) or next(
                (p for p in self.projects.values() if str(p.id) == key), None
            )
            if project is None:
                return self.error(404, "404 Project Not Found")
            return await handler(request, project, user)

        return endpoint

    def _auth(self, request: Request) -> tuple[str | None, Response | None]:
        self.requests += 1
        token = self.token_of(request)
        if token is None or token not in self.users:
            return None, self.error(401, "401 Unauthorized")
        left = self.remaining.setdefault(token, self.rate_limit)
        if self.throttle_next > 0 or left <= 0:
            self.throttle_next = max(0, self.throttle_next - 1)
            wait = "2" if left > 0 else str(max(1, self.reset_at - int(time.time())))
            headers = {**self._limit_headers(token), "Retry-After": wait}
            return None, PlainTextResponse("Retry later\n", status_code=429, headers=headers)
        # Every request counts against GitLab's limits, conditional ones included.
        self.remaining[token] = left - 1
        return self.users[token], None

    def _limit_headers(self, token: str) -> dict[str, str]:
        left = max(self.remaining.get(token, self.rate_limit), 0)
        return {
            "RateLimit-Limit": str(self.rate_limit),
            "RateLimit-Observed": str(self.rate_limit - left),
            "RateLimit-Remaining": str(left),
            "RateLimit-Reset": str(self.reset_at),
            "RateLimit-ResetTime": time.strftime(
                "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(self.reset_at)
            ),
        }

    def answer(
        self,
        request: Request,
        body: Any,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """JSON with a weak ETag; a matching If-None-Match gets an empty 304."""
        limits = self._limit_headers(self.token_of(request) or "")
        text = json.dumps(body, sort_keys=True)
        etag = f'W/"{hashlib.md5(text.encode()).hexdigest()}"'
        if request.method == "GET" and status == 200:
            if etag in request.headers.get("if-none-match", ""):
                self.not_modified += 1
                return Response(status_code=304, headers={"ETag": etag, **limits})
        out = {"ETag": etag, **limits, **(headers or {})}
        return Response(text, status_code=status, headers=out, media_type="application/json")

    @staticmethod
    def error(status: int, message: Any) -> JSONResponse:
        return JSONResponse({"message": message}, status_code=status)

    def page(
        self, request: Request, items: list[Any], *, keyset: bool = False
    ) -> tuple[list[Any], dict[str, str]]:
        """Offset pagination headers (X-*, Link), or keyset (a cursor in `Link` only)."""
        query = request.query_params
        per_page = max(1, min(int(query.get("per_page", 20)), 100))
        base = f"{self.base_url}{request.url.path}"
        keep = [(k, v) for k, v in query.multi_items() if k not in ("page", "cursor")]

        def link(**extra: Any) -> str:
            params = [*keep, *extra.items()]
            return base + "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params)

        if keyset and query.get("pagination") == "keyset":
            start = int(base64.urlsafe_b64decode(query["cursor"])) if "cursor" in query else 0
            batch = items[start : start + per_page]
            if start + per_page >= len(items):
                return batch, {}
            cursor = base64.urlsafe_b64encode(str(start + per_page).encode()).decode()
            return batch, {"Link": f'<{link(cursor=cursor)}>; rel="next"'}
        page = max(int(query.get("page", 1)), 1)
        pages = max((len(items) + per_page - 1) // per_page, 1)
        links = [f'<{link(page=1)}>; rel="first"', f'<{link(page=pages)}>; rel="last"']
        if page > 1:
            links.insert(0, f'<{link(page=page - 1)}>; rel="prev"')
        if page < pages:
            links.insert(0, f'<{link(page=page + 1)}>; rel="next"')
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
            "X-Total": str(len(items)),
            "X-Total-Pages": str(pages),
            "Link": ", ".join(links),
        }
        return items[(page - 1) * per_page : page * per_page], headers

    async def params(self, request: Request) -> dict[str, Any]:
        """GitLab takes attributes as query parameters, form fields or JSON."""
        data: dict[str, Any] = dict(request.query_params)
        raw = await request.body()
        if raw and "json" in request.headers.get("content-type", ""):
            data.update(json.loads(raw))
        elif raw:
            data.update((await request.form()).items())
        return data

    # ---- derived state ---------------------------------------------------------------

    def sha(self, project: Project, branch: str) -> str | None:
        return g.sha_of(project.path, f"refs/heads/{branch}")

    def head_pipeline(self, project: Project, sha: str | None) -> dict[str, Any] | None:
        found = [p for p in project.pipelines if p["sha"] == sha]
        return found[-1] if found else None

    def conflicts(self, project: Project, mr: MergeRequest) -> bool:
        base, head = self.sha(project, mr.target), self.sha(project, mr.source)
        if not base or not head:
            return False
        if (base, head) not in self._mergeable:  # commits never change: compute once a pair
            self._mergeable[(base, head)] = g.merge_tree(project.path, base, head) is not None
        return not self._mergeable[(base, head)]

    def merge_status(self, project: Project, mr: MergeRequest, *, observe: bool) -> str:
        """`detailed_merge_status`, in the order GitLab runs its mergeability checks."""
        if mr.state != "opened":
            return "not_open"
        if mr.draft:
            return "draft_status"
        key = (mr.iid, self.sha(project, mr.target) or "", self.sha(project, mr.source) or "")
        if key not in self._checked:
            # GitLab rechecks mergeability in the background after each change.
            if observe:
                self._checked.add(key)
            return "checking"
        if self.conflicts(project, mr):
            return "conflict"
        pipeline = self.head_pipeline(project, key[2])
        if project.only_allow_merge_if_pipeline_succeeds:
            if pipeline is None or pipeline["status"] in ("failed", "canceled"):
                return "ci_must_pass"
            if pipeline["status"] != "success":
                return "ci_still_running"
        if len(mr.approvals) < project.approvals_required:
            return "not_approved"
        return "mergeable"

    def mr_json(self, project: Project, mr: MergeRequest, *, observe: bool = False) -> Any:
        head = self.sha(project, mr.source)
        base = self.sha(project, mr.target)
        detailed = self.merge_status(project, mr, observe=observe)
        conflict = detailed == "conflict"
        merge_status = {"checking": "checking", "not_open": "cannot_be_merged"}.get(
            detailed, "cannot_be_merged" if conflict else "can_be_merged"
        )
        merge_base = None
        if head and base:
            merge_base = g.git(project.path, "merge-base", base, head, check=False).stdout.strip()
        pipeline = self.head_pipeline(project, head)
        return {
            "id": mr.id,
            "iid": mr.iid,
            "project_id": project.id,
            "title": mr.title,
            "description": mr.description,
            "state": mr.state,
            "created_at": mr.created_at,
            "updated_at": mr.updated_at,
            "merged_at": mr.merged_at,
            "closed_at": mr.closed_at,
            "target_branch": mr.target,
            "source_branch": mr.source,
            "source_project_id": project.id,
            "target_project_id": project.id,
            "author": self.user_json(mr.author),
            "reviewers": [self.user_json(u) for u in mr.reviewers],
            "draft": mr.draft,
            "work_in_progress": mr.draft,
            "merge_status": merge_status,
            "detailed_merge_status": detailed,
            "has_conflicts": conflict,
            "sha": head,
            "merge_commit_sha": mr.merge_commit_sha,
            "squash_commit_sha": mr.squash_commit_sha,
            "diff_refs": {"base_sha": merge_base, "head_sha": head, "start_sha": base},
            "head_pipeline": pipeline and {k: pipeline[k] for k in ("id", "sha", "ref", "status")},
            "references": {
                "short": f"!{mr.iid}",
                "full": f"{project.path_with_namespace}!{mr.iid}",
            },
            "web_url": f"{self.base_url}/{project.path_with_namespace}/-/merge_requests/{mr.iid}",
        }

    def touch(self, mr: MergeRequest) -> None:
        mr.updated_at = now_iso()

    def add_note(
        self,
        project: Project,
        kind: str,
        iid: int,
        *,
        author: str,
        body: str,
        system: bool = False,
        position: dict[str, Any] | None = None,
        discussion: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A note, in a discussion of its own unless one is given; touches the noteable."""
        note = {
            "id": next(self.ids),
            "type": "DiffNote" if position else ("DiscussionNote" if discussion else None),
            "body": body,
            "author": self.user_json(author),
            "created_at": now_iso(),
            "updated_at": now_iso(),
            "system": system,
            "noteable_type": kind,
            "noteable_iid": iid,
            "resolvable": bool(position),
            "resolved": False if position else None,
            "position": position,
        }
        if discussion is None:
            discussion = {
                "id": hashlib.sha1(f"{note['id']}".encode()).hexdigest(),
                "individual_note": position is None,
                "notes": [],
            }
            project.discussions.setdefault((kind, iid), []).append(discussion)
        discussion["notes"].append(note)
        if kind == "MergeRequest":
            self.touch(project.mrs[iid])
        if not system:
            self.events.note(project, kind, iid, note)
        return note

    def position_error(
        self, project: Project, mr: MergeRequest, position: Any
    ) -> JSONResponse | None:
        """GitLab refuses a diff note whose position is not on this MR's diff."""
        refs = self.mr_json(project, mr)["diff_refs"]
        if not isinstance(position, dict) or position.get("position_type") != "text":
            return self.error(400, "400 Bad request - position is invalid")
        shas = {k: position.get(k) for k in ("base_sha", "start_sha", "head_sha")}
        files = g.changed_files(project.path, mr.target, mr.source)
        if shas != refs or position.get("new_path") not in files:
            return self.error(
                400,
                '400 Bad request - Note {:line_code=>["can\'t be blank", "must be a valid '
                'line code"], :position=>["is incomplete"]}',
            )
        return None

    # ---- git -------------------------------------------------------------------------

    async def git(self, request: Request) -> Response:
        return await g.serve_git(
            request,
            root=self.root,
            repo_path=request.path_params["repo"],
            rest=request.path_params["rest"],
            push_tokens=set(self.users),
            on_push=self.events.on_push,
            private=getattr(self.projects.get(request.path_params["repo"]), "private", False),
        )

    # ---- REST endpoints: repository, merge requests ----------------------------------

    async def current_user(self, request: Request) -> Response:
        user, error = self._auth(request)
        if error is not None or user is None:
            return error or self.error(401, "401 Unauthorized")
        return self.answer(request, self.user_json(user))

    async def branch(self, request: Request, project: Project, user: str) -> Response:
        name = unquote(request.path_params["branch"])
        sha = self.sha(project, name)
        if sha is None:
            return self.error(404, "404 Branch Not Found")
        body = {
            "name": name,
            "commit": {"id": sha, "short_id": sha[:8]},
            "default": name == project.default_branch,
            "protected": name == project.default_branch,
            "merged": False,
            "web_url": f"{self.base_url}/{project.path_with_namespace}/-/tree/{name}",
        }
        return self.answer(request, body)

    async def compare(self, request: Request, project: Project, user: str) -> Response:
        base, head = request.query_params.get("from", ""), request.query_params.get("to", "")
        if g.sha_of(project.path, base) is None or g.sha_of(project.path, head) is None:
            return self.error(404, "404 Ref Not Found")
        diffs = [
            {"old_path": f, "new_path": f, "diff": "", "new_file": False, "deleted_file": False}
            for f in g.changed_files(project.path, base, head)
        ]
        body = {"commit": {"id": g.sha_of(project.path, head)}, "diffs": diffs}
        return self.answer(request, {**body, "compare_same_ref": base == head})

    async def merge_requests(self, request: Request, project: Project, user: str) -> Response:
        if request.method == "POST":
            return await self._create_mr(request, project, user)
        query = request.query_params
        state, source = query.get("state", "all"), query.get("source_branch")
        target = query.get("target_branch")
        # `order_by`: created_at (default; by iid here) or updated_at; `sort` desc by default.
        by_update = query.get("order_by") == "updated_at"
        found = [
            self.mr_json(project, mr)
            for mr in sorted(
                project.mrs.values(),
                key=lambda m: (m.updated_at, m.iid) if by_update else (m.iid,),
                reverse=query.get("sort", "desc") == "desc",
            )
            if state in ("all", mr.state)
            and source in (None, mr.source)
            and target in (None, mr.target)
        ]
        batch, headers = self.page(request, found)
        return self.answer(request, batch, headers=headers)

    async def _create_mr(self, request: Request, project: Project, user: str) -> Response:
        data = await self.params(request)
        for name in ("source_branch", "target_branch", "title"):
            if not data.get(name):
                return JSONResponse({"error": f"{name} is missing"}, status_code=400)
        source, target = str(data["source_branch"]), str(data["target_branch"])
        if self.sha(project, source) is None:
            return self.error(400, {"source_branch": ["is invalid"]})
        taken = [m for m in project.mrs.values() if m.source == source and m.state == "opened"]
        if taken:  # one open MR per source branch, whatever its target
            message = (
                f"Another open merge request already exists for this source branch: !{taken[0].iid}"
            )
            return self.error(409, [message])
        mr = MergeRequest(
            next(project.iids),
            next(self.ids),
            str(data["title"]),
            str(data.get("description") or ""),
            source,
            target,
            user,
        )
        project.mrs[mr.iid] = mr
        self.events.merge_request(project, mr, "open")
        return self.answer(request, self.mr_json(project, mr), status=201)

    def _mr(self, request: Request, project: Project) -> MergeRequest | None:
        return project.mrs.get(request.path_params["iid"])

    async def merge_request(self, request: Request, project: Project, user: str) -> Response:
        mr = self._mr(request, project)
        if mr is None:
            return self.error(404, "404 Not found")
        if request.method == "GET":
            return self.answer(request, self.mr_json(project, mr, observe=True))
        data = await self.params(request)
        action = None
        if data.get("state_event") == "close" and mr.state == "opened":
            mr.state, mr.closed_at, action = "closed", now_iso(), "close"
        elif data.get("state_event") == "reopen" and mr.state == "closed":
            mr.state, mr.closed_at, action = "opened", None, "reopen"
        for key, attr in (("title", "title"), ("description", "description")):
            if key in data:
                setattr(mr, attr, str(data[key]))
        if "reviewer_ids" in data:
            names = {i: n for n, i in self.user_ids.items()}
            wanted = [names[int(i)] for i in data["reviewer_ids"] if int(i) in names]
            mr.reviewers = {n: mr.reviewers.get(n, "unreviewed") for n in wanted}
        self.touch(mr)
        self.events.merge_request(project, mr, action or "update")
        return self.answer(request, self.mr_json(project, mr))

    async def merge(self, request: Request, project: Project, user: str) -> Response:
        mr = self._mr(request, project)
        if mr is None:
            return self.error(404, "404 Not found")
        data = await self.params(request)
        head = self.sha(project, mr.source)
        status = self.merge_status(project, mr, observe=False)
        refused = ("not_open", "draft_status", "ci_must_pass", "ci_still_running", "not_approved")
        if status in refused:
            return self.error(405, "405 Method Not Allowed")
        if data.get("sha") and data["sha"] != head:
            return self.error(409, f"SHA does not match HEAD of source branch: {head}")
        squash = str(data.get("squash", "false")).lower() == "true"
        title = data.get("squash_commit_message") if squash else data.get("merge_commit_message")
        message = title or (
            mr.title
            if squash
            else f"Merge branch '{mr.source}' into '{mr.target}'\n\n{mr.title}\n\n"
            f"See merge request {project.path_with_namespace}!{mr.iid}"
        )
        sha = g.merge(project.path, base=mr.target, head=mr.source, squash=squash, message=message)
        if sha is None:
            return self.error(406, "Branch cannot be merged")
        self.merges += 1
        mr.state, mr.merged_at, mr.merge_commit_sha = "merged", now_iso(), sha
        mr.squash_commit_sha = sha if squash else None
        self.touch(mr)
        self.events.merge_request(project, mr, "merge")
        return self.answer(request, self.mr_json(project, mr))

    async def diffs(self, request: Request, project: Project, user: str) -> Response:
        mr = self._mr(request, project)
        if mr is None:
            return self.error(404, "404 Not found")
        base = f"{mr.merge_commit_sha}^" if mr.merge_commit_sha else mr.target
        head = mr.merge_commit_sha or mr.source
        items = []
        for path in g.changed_files(project.path, base, head):
            text = g.git(project.path, "diff", f"{base}...{head}", "--", path).stdout
            hunk = text[text.find("@@") :] if "@@" in text else ""
            items.append({"old_path": path, "new_path": path, "diff": hunk, "new_file": False})
        batch, headers = self.page(request, items)
        return self.answer(request, batch, headers=headers)

    async def reviewers(self, request: Request, project: Project, user: str) -> Response:
        mr = self._mr(request, project)
        if mr is None:
            return self.error(404, "404 Not found")
        body = [
            {"user": self.user_json(name), "state": state, "created_at": mr.created_at}
            for name, state in mr.reviewers.items()
        ]
        return self.answer(request, body)

    def _approvals_json(self, project: Project, mr: MergeRequest) -> dict[str, Any]:
        left = max(project.approvals_required - len(mr.approvals), 0)
        return {
            "id": mr.id,
            "iid": mr.iid,
            "project_id": project.id,
            "title": mr.title,
            "state": mr.state,
            "approved": left == 0,
            "approvals_required": project.approvals_required,
            "approvals_left": left,
            "approved_by": [
                {"user": self.user_json(name), "approved_at": at}
                for name, at in mr.approvals.items()
            ],
        }

    async def approvals(self, request: Request, project: Project, user: str) -> Response:
        mr = self._mr(request, project)
        if mr is None:
            return self.error(404, "404 Not found")
        return self.answer(request, self._approvals_json(project, mr))

    async def approve(self, request: Request, project: Project, user: str) -> Response:
        mr = self._mr(request, project)
        if mr is None:
            return self.error(404, "404 Not found")
        data = await self.params(request)
        head = self.sha(project, mr.source)
        own = user == mr.author and not project.merge_requests_author_approval
        if mr.state != "opened" or user in mr.approvals or own:
            return self.error(401, "401 Unauthorized")  # `can_approve?` is false
        if data.get("sha") and data["sha"] != head:
            return self.error(409, f"SHA does not match HEAD of source branch: {head}")
        mr.approvals[user] = now_iso()
        if user in mr.reviewers:
            mr.reviewers[user] = "approved"
        self.add_note(project, "MergeRequest", mr.iid, author=user, body="approved", system=True)
        self.events.merge_request(project, mr, "approved")
        return self.answer(request, self._approvals_json(project, mr), status=201)

    async def unapprove(self, request: Request, project: Project, user: str) -> Response:
        mr = self._mr(request, project)
        if mr is None or user not in mr.approvals:
            return self.error(404, "404 Not found")
        del mr.approvals[user]
        if user in mr.reviewers:
            mr.reviewers[user] = "unapproved"
        self.add_note(project, "MergeRequest", mr.iid, author=user, body="unapproved", system=True)
        return self.answer(request, self._approvals_json(project, mr), status=201)

    # ---- REST endpoints: notes, discussions, reviews ---------------------------------

    def _noteable(self, request: Request, project: Project) -> tuple[str, int] | None:
        iid = int(request.path_params["iid"])
        if "/merge_requests/" in request.url.path:
            return ("MergeRequest", iid) if iid in project.mrs else None
        return ("Issue", iid) if iid in project.issues else None

    async def notes(self, request: Request, project: Project, user: str) -> Response:
        noteable = self._noteable(request, project)
        if noteable is None:
            return self.error(404, "404 Not found")
        if request.method == "POST":
            data = await self.params(request)
            if not data.get("body"):
                return JSONResponse({"error": "body is missing"}, status_code=400)
            note = self.add_note(project, *noteable, author=user, body=str(data["body"]))
            return self.answer(request, note, status=201)
        order = request.query_params.get("order_by", "created_at")
        found = sorted(project.notes(*noteable), key=lambda n: (n[order], n["id"]))
        if request.query_params.get("sort", "desc") == "desc":
            found.reverse()
        batch, headers = self.page(request, found)
        return self.answer(request, batch, headers=headers)

    async def discussions(self, request: Request, project: Project, user: str) -> Response:
        mr = self._mr(request, project)
        if mr is None:
            return self.error(404, "404 Not found")
        if request.method == "GET":
            found = project.discussions.get(("MergeRequest", mr.iid), [])
            batch, headers = self.page(request, found)
            return self.answer(request, batch, headers=headers)
        data = await self.params(request)
        if not data.get("body"):
            return JSONResponse({"error": "body is missing"}, status_code=400)
        position = data.get("position")
        if position is not None and (refused := self.position_error(project, mr, position)):
            return refused
        note = self.add_note(
            project, "MergeRequest", mr.iid, author=user, body=str(data["body"]), position=position
        )
        discussion = next(
            d
            for d in project.discussions[("MergeRequest", mr.iid)]
            if any(n["id"] == note["id"] for n in d["notes"])
        )
        return self.answer(request, discussion, status=201)

    async def resolve(self, request: Request, project: Project, user: str) -> Response:
        mr = self._mr(request, project)
        found = [
            d
            for d in project.discussions.get(("MergeRequest", mr.iid if mr else 0), [])
            if d["id"] == request.path_params["did"]
        ]
        if mr is None or not found:
            return self.error(404, "404 Not found")
        resolved = str((await self.params(request)).get("resolved")).lower() == "true"
        for note in found[0]["notes"]:
            if note["resolvable"]:
                note["resolved"] = resolved
        self.touch(mr)
        return self.answer(request, found[0])

    async def draft_notes(self, request: Request, project: Project, user: str) -> Response:
        mr = self._mr(request, project)
        if mr is None:
            return self.error(404, "404 Not found")
        uid = self.user_ids[user]
        if request.method == "GET":
            mine = [d for d in mr.drafts if d["author_id"] == uid]
            return self.answer(request, mine)
        data = await self.params(request)
        if not data.get("note"):
            return JSONResponse({"error": "note is missing"}, status_code=400)
        position = data.get("position")
        if position is not None and (refused := self.position_error(project, mr, position)):
            return refused
        draft = {
            "id": next(self.ids),
            "author_id": uid,
            "merge_request_id": mr.id,
            "note": str(data["note"]),
            "position": position,
            "discussion_id": None,
            "resolve_discussion": False,
        }
        mr.drafts.append(draft)
        return self.answer(request, draft, status=201)

    async def publish(self, request: Request, project: Project, user: str) -> Response:
        mr = self._mr(request, project)
        if mr is None:
            return self.error(404, "404 Not found")
        data = await self.params(request)
        state = data.get("reviewer_state")
        if state is not None and state not in REVIEWER_STATES:
            return JSONResponse({"error": "reviewer_state does not have a valid value"}, 400)
        uid = self.user_ids[user]
        for draft in [d for d in mr.drafts if d["author_id"] == uid]:
            mr.drafts.remove(draft)
            self.add_note(
                project,
                "MergeRequest",
                mr.iid,
                author=user,
                body=draft["note"],
                position=draft["position"],
            )
        if data.get("note"):
            self.add_note(project, "MergeRequest", mr.iid, author=user, body=str(data["note"]))
        # Only a reviewer has a review state; requesting changes withdraws an approval.
        if state is not None and user in mr.reviewers:
            mr.reviewers[user] = state
            if state == "requested_changes":
                mr.approvals.pop(user, None)
            self.touch(mr)
        return Response(status_code=204)

    # ---- REST endpoints: issues, pipelines, jobs -------------------------------------

    async def issue(self, request: Request, project: Project, user: str) -> Response:
        issue = project.issues.get(request.path_params["iid"])
        if issue is None:
            return self.error(404, "404 Not found")
        if request.method == "PUT":
            data = await self.params(request)
            if data.get("state_event") == "close":
                issue.update(state="closed", closed_at=now_iso())
            elif data.get("state_event") == "reopen":
                issue.update(state="opened", closed_at=None)
            if data.get("add_labels"):
                labels = issue.setdefault("labels", [])
                labels.extend(x for x in str(data["add_labels"]).split(",") if x not in labels)
            issue["updated_at"] = now_iso()
        return self.answer(request, issue)

    def add_issue(
        self,
        project: Project,
        title: str,
        *,
        description: str = "",
        labels: list[str] | None = None,
    ) -> dict[str, Any]:
        iid = next(project.iids)
        issue: dict[str, Any] = {
            "id": next(self.ids),
            "iid": iid,
            "project_id": project.id,
            "title": title,
            "description": description,
            "state": "opened",
            "labels": list(labels or []),
            "author": self.user_json("alice"),
            "assignee": None,
            "web_url": f"{self.base_url}/{project.path_with_namespace}/-/issues/{iid}",
            "created_at": now_iso(),
            "updated_at": now_iso(),
            "closed_at": None,
        }
        project.issues[iid] = issue
        return issue

    async def list_issues(self, request: Request, project: Project, user: str) -> Response:
        """GET /projects/:id/issues: `state` (opened|closed), `labels` (all of them),
        offset-paginated; `user_notes_count` counts the notes that are not system notes."""
        query = request.query_params
        wanted = {x for x in query.get("labels", "").split(",") if x}
        found = []
        for iid in sorted(project.issues):
            issue = project.issues[iid]
            if query.get("state") not in (None, issue.get("state", "opened")):
                continue
            if not wanted <= set(issue.get("labels", [])):
                continue
            notes = [n for n in project.notes("Issue", iid) if not n.get("system")]
            found.append({**issue, "user_notes_count": len(notes)})
        batch, headers = self.page(request, found)
        return self.answer(request, batch, headers=headers)

    async def pipelines(self, request: Request, project: Project, user: str) -> Response:
        query = request.query_params
        found = [
            p
            for p in project.pipelines
            if query.get("sha") in (None, p["sha"])
            and query.get("ref") in (None, p["ref"])
            and query.get("status") in (None, p["status"])
        ]
        order = "updated_at" if query.get("order_by") == "updated_at" else "id"
        found.sort(key=lambda p: (p[order], p["id"]), reverse=query.get("sort", "desc") == "desc")
        batch, headers = self.page(request, found)
        return self.answer(request, batch, headers=headers)

    async def pipeline_jobs(self, request: Request, project: Project, user: str) -> Response:
        jobs = project.jobs.get(request.path_params["pid"])
        if jobs is None:
            return self.error(404, "404 Not found")
        batch, headers = self.page(request, jobs)
        return self.answer(request, batch, headers=headers)

    async def project_jobs(self, request: Request, project: Project, user: str) -> Response:
        jobs = sorted((j for js in project.jobs.values() for j in js), key=lambda j: -j["id"])
        batch, headers = self.page(request, jobs, keyset=True)
        return self.answer(request, batch, headers=headers)

    async def trace(self, request: Request, project: Project, user: str) -> Response:
        job = request.path_params["job"]
        if job not in self.traces:
            return self.error(404, "404 Not found")
        return PlainTextResponse(self.traces[job])
