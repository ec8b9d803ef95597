"""A GitHub REST v3 test double over real bare repositories, following the documented API.

Status codes and fields as GitHub documents them; pagination with Link headers; weak ETags
and 304s (free against the rate limit, as on GitHub); X-RateLimit-* headers and 403 when
exhausted; webhooks signed with X-Hub-Signature-256; git over smart HTTP with token auth;
and a CI of its own (a check run per pushed commit, with a job log) so tests have CI.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.forges import git_http as g


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Pull:
    number: int
    title: str
    body: str
    head: str
    base: str
    user: str
    draft: bool = False
    state: str = "open"
    merged: bool = False
    merged_at: str | None = None
    merge_commit_sha: str | None = None
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    closed_at: str | None = None


@dataclass
class GhRepo:
    owner: str
    name: str
    path: Path
    default_branch: str = "main"
    pulls: dict[int, Pull] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    review_comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    check_runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ci_command: str | None = None
    private: bool = False
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class GitHubDouble:
    """State and behaviour; `app` serves it. Users are tokens: {token: login}."""

    def __init__(self, root: Path, *, users: dict[str, str]) -> None:
        self.root = root
        self.users = users
        self.repos: dict[str, GhRepo] = {}
        self.base_url = ""  # set by the server once its port is known
        self.webhook_url: str | None = None
        self.webhook_secret = ""
        self.rate_limit = 5000
        self.remaining: dict[str, int] = {}
        self.reset_at = int(time.time()) + 3600
        self.secondary_limit_next = 0  # answer this many requests with 429 + Retry-After
        self.requests = 0
        self.not_modified = 0
        self.ids = itertools.count(1000)
        self.job_logs: dict[int, str] = {}
        self.deliveries: list[tuple[str, dict[str, Any]]] = []
        self.merges = 0
        self.on_merge: Callable[[], None] | None = None  # called after a merge, before the answer
        self._tasks: set[asyncio.Task[None]] = set()
        self._mergeable: dict[tuple[str, str], bool] = {}
        self.app = Starlette(routes=self._routes())

    # ---- set-up helpers for tests ----------------------------------------------------

    def add_repo(self, owner: str, name: str, source: Path, *, private: bool = False) -> GhRepo:
        target = self.root / owner / f"{name}.git"
        target.parent.mkdir(parents=True, exist_ok=True)
        g.git(self.root, "clone", "-q", "--bare", str(source), str(target))
        repo = GhRepo(owner, name, target, private=private)
        self.repos[repo.full_name] = repo
        return repo

    def clone_url(self, repo: GhRepo) -> str:
        return f"{self.base_url}/{repo.full_name}.git"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v3"

    # ---- plumbing --------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        r = "/api/v3/repos/{owner}/{name}"
        return [
            Route(r + "/branches/{branch:path}", self.get_branch),
            Route(r + "/compare/{basehead:path}", self.compare),
            Route(r + "/pulls", self.pulls, methods=["GET", "POST"]),
            Route(r + "/pulls/{number:int}", self.pull, methods=["GET", "PATCH"]),
            Route(r + "/pulls/{number:int}/merge", self.merge, methods=["PUT", "GET"]),
            Route(r + "/pulls/{number:int}/reviews", self.pull_reviews, methods=["GET", "POST"]),
            Route(r + "/pulls/{number:int}/comments", self.pull_comments),
            Route(r + "/issues", self.list_issues),
            Route(r + "/issues/{number:int}/labels", self.issue_labels, methods=["POST"]),
            Route(r + "/issues/{number:int}", self.issue, methods=["GET", "PATCH"]),
            Route(
                r + "/issues/{number:int}/comments", self.issue_comments, methods=["GET", "POST"]
            ),
            Route(r + "/commits/{sha}/check-runs", self.check_runs),
            Route(r + "/commits/{sha}/status", self.combined_status),
            Route(r + "/statuses/{sha}", self.create_status, methods=["POST"]),
            Route(r + "/actions/runs", self.workflow_runs),
            Route(r + "/actions/jobs/{job:int}/logs", self.job_log_redirect),
            Route("/_logs/{job:int}", self.job_log),
            Route("/{owner}/{name}.git/{rest:path}", self.git, methods=["GET", "POST"]),
        ]

    def _repo(self, request: Request) -> GhRepo | None:
        return self.repos.get(f"{request.path_params['owner']}/{request.path_params['name']}")

    def _auth(self, request: Request) -> tuple[str | None, Response | None]:
        """The login of the caller, or the error GitHub would answer."""
        self.requests += 1
        token = g.token_of(request)
        if token is None or token not in self.users:
            return None, JSONResponse({"message": "Bad credentials"}, status_code=401)
        if self.secondary_limit_next > 0:
            self.secondary_limit_next -= 1
            body = {"message": "You have exceeded a secondary rate limit."}
            return None, JSONResponse(body, status_code=429, headers={"Retry-After": "2"})
        if self.remaining.setdefault(token, self.rate_limit) <= 0:
            return None, JSONResponse(
                {"message": f"API rate limit exceeded for {self.users[token]}."},
                status_code=403,
                headers=self._limit_headers(token),
            )
        return self.users[token], None

    def _limit_headers(self, token: str) -> dict[str, str]:
        left = self.remaining.get(token, self.rate_limit)
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(left, 0)),
            "X-RateLimit-Reset": str(self.reset_at),
            "X-RateLimit-Used": str(self.rate_limit - max(left, 0)),
            "X-RateLimit-Resource": "core",
        }

    def _answer(
        self,
        request: Request,
        body: Any,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """JSON with an ETag; a matching If-None-Match gets a 304 that costs nothing."""
        token = g.token_of(request) or ""
        text = json.dumps(body, sort_keys=True)
        etag = f'W/"{hashlib.sha1(text.encode()).hexdigest()}"'
        if request.method == "GET" and status == 200:
            if etag in request.headers.get("if-none-match", ""):
                self.not_modified += 1
                return Response(
                    status_code=304, headers={"ETag": etag, **self._limit_headers(token)}
                )
        self.remaining[token] = self.remaining.get(token, self.rate_limit) - 1
        out = {"ETag": etag, **self._limit_headers(token), **(headers or {})}
        return Response(text, status_code=status, headers=out, media_type="application/json")

    def _page(self, request: Request, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        per_page = min(int(request.query_params.get("per_page", 30)), 100)
        page = max(int(request.query_params.get("page", 1)), 1)
        last = max((len(items) + per_page - 1) // per_page, 1)
        links = []
        base = str(request.url.remove_query_params("page"))
        sep = "&" if "?" in base else "?"
        if page < last:
            links.append(f'<{base}{sep}page={page + 1}>; rel="next"')
            links.append(f'<{base}{sep}page={last}>; rel="last"')
        headers = {"Link": ", ".join(links)} if links else {}
        return items[(page - 1) * per_page : page * per_page], headers

    @staticmethod
    def _error(message: str, status: int) -> JSONResponse:
        return JSONResponse(
            {"message": message, "documentation_url": "https://docs.github.com/rest"},
            status_code=status,
        )

    @staticmethod
    def _branches(repo: GhRepo) -> dict[str, str]:
        """Every branch's tip in one git call (lists would otherwise ask once per PR)."""
        out = g.git(repo.path, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads")
        tips = (line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
        return {ref.removeprefix("refs/heads/"): sha for sha, ref in tips}

    def _pull_json(
        self, repo: GhRepo, pr: Pull, tips: dict[str, str] | None = None
    ) -> dict[str, Any]:
        if tips is not None:
            head_sha, base_sha = tips.get(pr.head, ""), tips.get(pr.base, "")
        else:
            head_sha = g.sha_of(repo.path, f"refs/heads/{pr.head}") or ""
            base_sha = g.sha_of(repo.path, f"refs/heads/{pr.base}") or ""
        mergeable: bool | None = None
        if pr.state == "open" and head_sha and base_sha:
            key = (base_sha, head_sha)
            if key not in self._mergeable:  # commits never change: compute once per pair
                self._mergeable[key] = g.merge_tree(repo.path, base_sha, head_sha) is not None
            mergeable = self._mergeable[key]
        html = f"{self.base_url}/{repo.full_name}/pull/{pr.number}"
        return {
            "url": f"{self.api_url}/repos/{repo.full_name}/pulls/{pr.number}",
            "html_url": html,
            "number": pr.number,
            "state": pr.state,
            "title": pr.title,
            "body": pr.body,
            "draft": pr.draft,
            "user": {"login": pr.user},
            "head": {"ref": pr.head, "sha": head_sha, "label": f"{repo.owner}:{pr.head}"},
            "base": {"ref": pr.base, "sha": base_sha, "label": f"{repo.owner}:{pr.base}"},
            "merged": pr.merged,
            "merged_at": pr.merged_at,
            "merge_commit_sha": pr.merge_commit_sha,
            "mergeable": mergeable,
            "mergeable_state": "clean"
            if mergeable
            else "dirty"
            if mergeable is False
            else "unknown",
            "created_at": pr.created_at,
            "updated_at": pr.updated_at,
            "closed_at": pr.closed_at,
        }

    def _repo_json(self, repo: GhRepo) -> dict[str, Any]:
        return {
            "full_name": repo.full_name,
            "name": repo.name,
            "owner": {"login": repo.owner},
            "html_url": f"{self.base_url}/{repo.full_name}",
            "clone_url": self.clone_url(repo),
            "default_branch": repo.default_branch,
        }

    # ---- webhooks --------------------------------------------------------------------

    def emit(self, event: str, repo: GhRepo, payload: dict[str, Any]) -> None:
        body = {**payload, "repository": self._repo_json(repo)}
        self.deliveries.append((event, body))
        if self.webhook_url:
            task = asyncio.get_running_loop().create_task(self._deliver(event, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def signed(
        self, event: str, body: dict[str, Any], *, secret: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        raw = json.dumps(body).encode()
        key = (self.webhook_secret if secret is None else secret).encode()
        signature = "sha256=" + hmac.new(key, raw, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": signature,
            "User-Agent": "GitHub-Hookshot/double",
        }
        return raw, headers

    async def _deliver(self, event: str, body: dict[str, Any]) -> None:
        assert self.webhook_url
        raw, headers = self.signed(event, body)
        async with httpx.AsyncClient(timeout=10) as client:
            try:
                await client.post(self.webhook_url, content=raw, headers=headers)
            except httpx.HTTPError:
                pass  # GitHub records the failure and moves on

    def _pulls_of_branch(self, repo: GhRepo, branch: str) -> list[Pull]:
        return [p for p in repo.pulls.values() if p.head == branch and p.state == "open"]

    def _touch(self, repo: GhRepo, pr: Pull, action: str) -> None:
        pr.updated_at = now_iso()
        self.emit(
            "pull_request",
            repo,
            {"action": action, "number": pr.number, "pull_request": self._pull_json(repo, pr)},
        )

    # ---- git and CI ------------------------------------------------------------------

    async def git(self, request: Request) -> Response:
        path = f"{request.path_params['owner']}/{request.path_params['name']}"
        return await g.serve_git(
            request,
            root=self.root,
            repo_path=path,
            rest=request.path_params["rest"],
            push_tokens=set(self.users),
            on_push=self._on_push,
            private=self.repos[path].private if path in self.repos else False,
        )

    async def _on_push(self, path: str, before: dict[str, str], after: dict[str, str]) -> None:
        repo = self.repos[path]
        for ref, sha in after.items():
            if before.get(ref) == sha:
                continue
            branch = ref.removeprefix("refs/heads/")
            self.emit("push", repo, {"ref": ref, "before": before.get(ref), "after": sha})
            for pr in self._pulls_of_branch(repo, branch):
                self._touch(repo, pr, "synchronize")
            if branch != repo.default_branch:
                self.start_ci(repo, sha)
        # A push to a base branch can make open PRs conflict: GitHub recomputes mergeability.
        for pr in repo.pulls.values():
            if pr.state == "open" and after.get(f"refs/heads/{pr.base}") != before.get(
                f"refs/heads/{pr.base}"
            ):
                pr.updated_at = now_iso()

    def start_ci(self, repo: GhRepo, sha: str) -> None:
        if repo.ci_command is None:
            return
        # Registered before the push answers, so nobody sees "no checks" for this commit.
        run = {
            "id": next(self.ids),
            "name": "test",
            "head_sha": sha,
            "status": "in_progress",
            "conclusion": None,
            "started_at": now_iso(),
            "completed_at": None,
            "output": {"title": None, "summary": None, "text": None},
            "app": {"slug": "github-actions"},
            "pull_requests": [],
        }
        repo.check_runs.setdefault(sha, []).append(run)
        self._emit_check_run(repo, run, "created")
        task = asyncio.get_running_loop().create_task(self._run_ci(repo, run, repo.ci_command))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_ci(self, repo: GhRepo, run: dict[str, Any], command: str) -> None:
        passed, output = await g.run_ci(repo.path, run["head_sha"], command)
        self.job_logs[run["id"]] = f"##[group]Run {command}\n{output}##[endgroup]\n" + (
            "" if passed else "##[error]Process completed with exit code 1.\n"
        )
        self.complete_check(repo, run, "success" if passed else "failure")

    def complete_check(self, repo: GhRepo, run: dict[str, Any], conclusion: str) -> None:
        run.update(status="completed", conclusion=conclusion, completed_at=now_iso())
        run["output"] = {"title": conclusion, "summary": f"test {conclusion}", "text": None}
        numbers = self._open_pulls_at(repo, run["head_sha"])
        self._emit_check_run(repo, run, "completed", numbers)
        # One run per suite here: the suite completes with it (GitHub sends repository
        # webhooks only the suite's `completed`, not `requested`).
        suite = {
            "id": run["id"],
            "head_sha": run["head_sha"],
            "status": "completed",
            "conclusion": conclusion,
            "app": run["app"],
            "pull_requests": numbers,
        }
        self.emit("check_suite", repo, {"action": "completed", "check_suite": suite})

    def _emit_check_run(
        self,
        repo: GhRepo,
        run: dict[str, Any],
        action: str,
        numbers: list[dict[str, int]] | None = None,
    ) -> None:
        if numbers is None:
            numbers = self._open_pulls_at(repo, run["head_sha"])
        self.emit(
            "check_run", repo, {"action": action, "check_run": {**run, "pull_requests": numbers}}
        )

    @staticmethod
    def _open_pulls_at(repo: GhRepo, sha: str) -> list[dict[str, int]]:
        heads = g.refs(repo.path)  # one git call, however many PRs
        return [
            {"number": p.number}
            for p in repo.pulls.values()
            if p.state == "open" and heads.get(f"refs/heads/{p.head}") == sha
        ]

    # ---- REST endpoints --------------------------------------------------------------

    async def get_branch(self, request: Request) -> Response:
        user, error = self._auth(request)
        repo = self._repo(request)
        if error or repo is None:
            return error or self._error("Not Found", 404)
        branch = request.path_params["branch"]
        sha = g.sha_of(repo.path, f"refs/heads/{branch}")
        if sha is None:
            return self._error("Branch not found", 404)
        return self._answer(request, {"name": branch, "commit": {"sha": sha}, "protected": False})

    async def compare(self, request: Request) -> Response:
        user, error = self._auth(request)
        repo = self._repo(request)
        if error or repo is None:
            return error or self._error("Not Found", 404)
        base, _, head = request.path_params["basehead"].partition("...")
        if g.sha_of(repo.path, base) is None or g.sha_of(repo.path, head) is None:
            return self._error("Not Found", 404)
        files = [
            {"filename": f, "status": "modified"} for f in g.changed_files(repo.path, base, head)
        ]
        return self._answer(request, {"status": "ahead", "files": files, "total_commits": 1})

    async def pulls(self, request: Request) -> Response:
        user, error = self._auth(request)
        repo = self._repo(request)
        if error or repo is None or user is None:
            return error or self._error("Not Found", 404)
        if request.method == "POST":
            data = await request.json()
            head, base = str(data.get("head", "")), str(data.get("base", repo.default_branch))
            head = head.split(":", 1)[-1]
            if g.sha_of(repo.path, f"refs/heads/{head}") is None:
                return JSONResponse(
                    {
                        "message": "Validation Failed",
                        "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}],
                    },
                    status_code=422,
                )
            if self._pulls_of_branch(repo, head):
                return JSONResponse(
                    {
                        "message": "Validation Failed",
                        "errors": [
                            {
                                "resource": "PullRequest",
                                "code": "custom",
                                "message": f"A pull request already exists for "
                                f"{repo.owner}:{head}.",
                            }
                        ],
                    },
                    status_code=422,
                )
            pr = Pull(
                next(repo.numbers),
                str(data.get("title", "")),
                str(data.get("body") or ""),
                head,
                base,
                user,
                bool(data.get("draft")),
            )
            repo.pulls[pr.number] = pr
            self.emit(
                "pull_request",
                repo,
                {
                    "action": "opened",
                    "number": pr.number,
                    "pull_request": self._pull_json(repo, pr),
                },
            )
            return self._answer(request, self._pull_json(repo, pr), status=201)
        state = request.query_params.get("state", "open")
        head_filter = request.query_params.get("head")
        # `sort`: created (default, by number here), updated; `direction` desc by default.
        by_update = request.query_params.get("sort") == "updated"
        found = sorted(
            (
                p
                for p in repo.pulls.values()
                if (state == "all" or (p.state == state))
                and (head_filter is None or f"{repo.owner}:{p.head}" == head_filter)
            ),
            key=lambda p: (p.updated_at, p.number) if by_update else (p.number,),
            reverse=request.query_params.get("direction", "desc") == "desc",
        )
        page, headers = self._page(request, found)
        tips = self._branches(repo)
        return self._answer(
            request, [self._pull_json(repo, p, tips) for p in page], headers=headers
        )

    async def pull(self, request: Request) -> Response:
        user, error = self._auth(request)
        repo = self._repo(request)
        if error or repo is None:
            return error or self._error("Not Found", 404)
        pr = repo.pulls.get(request.path_params["number"])
        if pr is None:
            return self._error("Not Found", 404)
        if request.method == "PATCH":
            data = await request.json()
            if data.get("state") == "closed" and pr.state == "open":
                pr.state, pr.closed_at = "closed", now_iso()
                self._touch(repo, pr, "closed")
            for key in ("title", "body"):
                if key in data:
                    setattr(pr, key, data[key])
            return self._answer(request, self._pull_json(repo, pr))
        if "diff" in request.headers.get("accept", ""):
            merged = pr.merge_commit_sha
            base = f"{merged}^" if merged else pr.base
            text = g.diff(repo.path, base, merged or pr.head)
            self.remaining[g.token_of(request) or ""] -= 1
            return PlainTextResponse(text, media_type="application/vnd.github.diff")
        return self._answer(request, self._pull_json(repo, pr))

    async def merge(self, request: Request) -> Response:
        user, error = self._auth(request)
        repo = self._repo(request)
        if error or repo is None:
            return error or self._error("Not Found", 404)
        pr = repo.pulls.get(request.path_params["number"])
        if pr is None:
            return self._error("Not Found", 404)
        if request.method == "GET":  # "Check if a pull request has been merged": 204 / 404
            return Response(status_code=204 if pr.merged else 404)
        data = await request.json() if await request.body() else {}
        if pr.state != "open":
            return self._error("Pull Request is not mergeable", 405)
        head_sha = g.sha_of(repo.path, f"refs/heads/{pr.head}")
        if data.get("sha") and data["sha"] != head_sha:
            return self._error("Head branch was modified. Review and try the merge again.", 409)
        method = data.get("merge_method", "merge")
        if method not in ("merge", "squash", "rebase"):
            return JSONResponse({"message": "Validation Failed"}, status_code=422)
        message = data.get("commit_title") or f"{pr.title} (#{pr.number})"
        sha = g.merge(
            repo.path, base=pr.base, head=pr.head, squash=method != "merge", message=message
        )
        if sha is None:
            return self._error("Pull Request is not mergeable", 405)
        self.merges += 1
        pr.state, pr.merged, pr.merged_at, pr.merge_commit_sha = "closed", True, now_iso(), sha
        pr.closed_at = pr.merged_at
        self._touch(repo, pr, "closed")
        if self.on_merge is not None:
            self.on_merge()
        return self._answer(
            request, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}
        )

    async def pull_reviews(self, request: Request) -> Response:
        user, error = self._auth(request)
        repo = self._repo(request)
        if error or repo is None or user is None:
            return error or self._error("Not Found", 404)
        number = request.path_params["number"]
        pr = repo.pulls.get(number)
        if pr is None:
            return self._error("Not Found", 404)
        reviews = repo.reviews.setdefault(number, [])
        if request.method == "GET":
            page, headers = self._page(request, reviews)
            return self._answer(request, page, headers=headers)
        data = await request.json()
        event = data.get("event")
        states = {
            "APPROVE": "APPROVED",
            "REQUEST_CHANGES": "CHANGES_REQUESTED",
            "COMMENT": "COMMENTED",
        }
        if event not in states:
            return JSONResponse({"message": "Validation Failed"}, status_code=422)
        if event != "APPROVE" and not data.get("body"):
            return JSONResponse(
                {"message": "Validation Failed", "errors": ["Body is required"]}, status_code=422
            )
        if user == pr.user and event != "COMMENT":
            return JSONResponse(
                {
                    "message": "Unprocessable Entity",
                    "errors": ["Can not approve your own pull request"],
                },
                status_code=422,
            )
        review = {
            "id": next(self.ids),
            "user": {"login": user},
            "body": data.get("body") or "",
            "state": states[event],
            "commit_id": data.get("commit_id") or g.sha_of(repo.path, f"refs/heads/{pr.head}"),
            "submitted_at": now_iso(),
        }
        reviews.append(review)
        for comment in data.get("comments") or []:
            repo.review_comments.setdefault(number, []).append(
                {
                    "id": next(self.ids),
                    "pull_request_review_id": review["id"],
                    "path": comment["path"],
                    "line": comment.get("line"),
                    "original_line": comment.get("line"),
                    "side": comment.get("side", "RIGHT"),
                    "body": comment["body"],
                    "user": {"login": user},
                }
            )
        pr.updated_at = now_iso()
        self.emit(
            "pull_request_review",
            repo,
            {"action": "submitted", "review": review, "pull_request": self._pull_json(repo, pr)},
        )
        return self._answer(request, review)

    async def pull_comments(self, request: Request) -> Response:
        user, error = self._auth(request)
        repo = self._repo(request)
        if error or repo is None:
            return error or self._error("Not Found", 404)
        page, headers = self._page(
            request, repo.review_comments.get(request.path_params["number"], [])
        )
        return self._answer(request, page, headers=headers)

    async def issue(self, request: Request) -> Response:
        user, error = self._auth(request)
        repo = self._repo(request)
        if error or repo is None:
            return error or self._error("Not Found", 404)
        issue = repo.issues.get(request.path_params["number"])
        if issue is None:
            return self._error("Not Found", 404)
        if request.method == "PATCH":
            data = await request.json()
            if data.get("state") in ("open", "closed"):
                issue["state"] = data["state"]
                issue["state_reason"] = data.get("state_reason")
        return self._answer(request, issue)

    def add_issue(
        self, repo: GhRepo, title: str, *, body: str = "", labels: list[str] | None = None
    ) -> dict[str, Any]:
        """An open issue (numbers are shared with pull requests, as on GitHub)."""
        number = next(repo.numbers)
        issue: dict[str, Any] = {
            "id": next(self.ids),
            "number": number,
            "title": title,
            "body": body,
            "state": "open",
            "state_reason": None,
            "labels": [{"name": name} for name in labels or []],
            "user": {"login": "alice"},
            "assignee": None,
            "html_url": f"{self.base_url}/{repo.full_name}/issues/{number}",
            "comments": 0,
            "created_at": now_iso(),
            "updated_at": now_iso(),
        }
        repo.issues[number] = issue
        return issue

    async def list_issues(self, request: Request) -> Response:
        """GET /repos/{owner}/{repo}/issues: `state` (open|closed|all), `labels` (all of a
        comma-separated list), paginated; `comments` is the live count."""
        user, error = self._auth(request)
        repo = self._repo(request)
        if error or repo is None:
            return error or self._error("Not Found", 404)
        state = request.query_params.get("state", "open")
        wanted = {x for x in request.query_params.get("labels", "").split(",") if x}
        found = []
        for number in sorted(repo.issues):
            issue = repo.issues[number]
            names = {lb["name"] for lb in issue.get("labels", [])}
            if state != "all" and issue.get("state", "open") != state:
                continue
            if not wanted <= names:
                continue
            found.append({**issue, "comments": len(repo.comments.get(number, []))})
        page, headers = self._page(request, found)
        return self._answer(request, page, headers=headers)

    async def issue_labels(self, request: Request) -> Response:
        """POST /repos/{owner}/{repo}/issues/{number}/labels: adds, returns all labels."""
        user, error = self._auth(request)
        repo = self._repo(request)
        if error or repo is None:
            return error or self._error("Not Found", 404)
        issue = repo.issues.get(request.path_params["number"])
        if issue is None:
            return self._error("Not Found", 404)
        data = await request.json()
        names = [lb["name"] for lb in issue.setdefault("labels", [])]
        for name in data.get("labels") or []:
            if name not in names:
                issue["labels"].append({"name": name})
                names.append(name)
        return self._answer(request, issue["labels"])

    async def issue_comments(self, request: Request) -> Response:
        user, error = self._auth(request)
        repo = self._repo(request)
        if error or repo is None or user is None:
            return error or self._error("Not Found", 404)
        number = request.path_params["number"]
        if number not in repo.issues and number not in repo.pulls:
            return self._error("Not Found", 404)
        comments = repo.comments.setdefault(number, [])
        if request.method == "POST":
            data = await request.json()
            comment = {
                "id": next(self.ids),
                "body": data["body"],
                "user": {"login": user},
                "created_at": now_iso(),
            }
            comments.append(comment)
            if number in repo.pulls:
                repo.pulls[number].updated_at = now_iso()
            return self._answer(request, comment, status=201)
        page, headers = self._page(request, comments)
        return self._answer(request, page, headers=headers)

    async def check_runs(self, request: Request) -> Response:
        user, error = self._auth(request)
        repo = self._repo(request)
        if error or repo is None:
            return error or self._error("Not Found", 404)
        runs = repo.check_runs.get(request.path_params["sha"], [])
        page, headers = self._page(request, runs)
        return self._answer(
            request, {"total_count": len(runs), "check_runs": page}, headers=headers
        )

    async def combined_status(self, request: Request) -> Response:
        user, error = self._auth(request)
        repo = self._repo(request)
        if error or repo is None:
            return error or self._error("Not Found", 404)
        sha = request.path_params["sha"]
        latest: dict[str, dict[str, Any]] = {}
        for status in repo.statuses.get(sha, []):
            latest[status["context"]] = status
        states = {s["state"] for s in latest.values()}
        state = (
            "failure"
            if states & {"failure", "error"}
            else "pending"
            if "pending" in states or not states
            else "success"
        )
        body = {
            "state": state,
            "sha": sha,
            "total_count": len(latest),
            "statuses": list(latest.values()),
        }
        return self._answer(request, body)

    async def create_status(self, request: Request) -> Response:
        user, error = self._auth(request)
        repo = self._repo(request)
        if error or repo is None:
            return error or self._error("Not Found", 404)
        data = await request.json()
        status = {
            "id": next(self.ids),
            "state": data["state"],
            "context": data.get("context", "default"),
            "description": data.get("description"),
            "target_url": data.get("target_url"),
        }
        sha = request.path_params["sha"]
        repo.statuses.setdefault(sha, []).append(status)
        self.emit("status", repo, {"sha": sha, **status})
        return self._answer(request, status, status=201)

    async def workflow_runs(self, request: Request) -> Response:
        """GitHub Actions' workflow runs of the repository, newest first: here, one per
        check run the double's CI (app `github-actions`) created."""
        user, error = self._auth(request)
        repo = self._repo(request)
        if error or repo is None:
            return error or self._error("Not Found", 404)
        tips = self._branches(repo)
        branch_of = {sha: branch for branch, sha in tips.items()}
        runs = sorted(
            (
                run
                for found in repo.check_runs.values()
                for run in found
                if (run.get("app") or {}).get("slug") == "github-actions"
            ),
            key=lambda run: -int(run["id"]),
        )
        items = [
            {
                "id": run["id"],
                "name": run["name"],
                "head_sha": run["head_sha"],
                "head_branch": branch_of.get(run["head_sha"]),
                "status": run["status"],
                "conclusion": run["conclusion"],
                "event": "push",
                "created_at": run.get("started_at"),
                "updated_at": run.get("completed_at") or run.get("started_at"),
                "pull_requests": [
                    {"number": p.number}
                    for p in repo.pulls.values()
                    if p.state == "open" and tips.get(p.head) == run["head_sha"]
                ],
            }
            for run in runs
        ]
        page, headers = self._page(request, items)
        return self._answer(
            request, {"total_count": len(items), "workflow_runs": page}, headers=headers
        )

    async def job_log_redirect(self, request: Request) -> Response:
        user, error = self._auth(request)
        if error:
            return error
        job = request.path_params["job"]
        if job not in self.job_logs:
            return self._error("Not Found", 404)
        return RedirectResponse(f"{self.base_url}/_logs/{job}", status_code=302)

    async def job_log(self, request: Request) -> Response:
        return PlainTextResponse(self.job_logs.get(request.path_params["job"], ""))
