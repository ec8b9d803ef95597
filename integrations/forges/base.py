"""What every remote forge (GitHub, GitLab) offers Optio, and the HTTP plumbing they share.

The `local` forge keeps its own module-level API (integrations/forges/local.py); remote
forges implement `Forge` over REST with conditional requests, so that watching hundreds of
pull requests costs almost nothing against the rate limit (a 304 is free on GitHub).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol
from urllib.parse import urlparse

import httpx

from core.metrics import observe_forge_answer
from integrations.tls import tls_context

MergeMethod = Literal["merge", "squash", "rebase"]
CheckState = Literal["pending", "success", "failure"]
ReviewEvent = Literal["APPROVE", "REQUEST_CHANGES", "COMMENT"]

# Optio's comments carry this so a retried activity finds its own comment instead of posting twice.
MARKER_PREFIX = "<!-- optio:"


def marker(key: str) -> str:
    return f"{MARKER_PREFIX}{key} -->"


class ForgeError(Exception):
    """The forge answered with an error the caller cannot fix by retrying at once."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RateLimited(ForgeError):
    """403/429 because of a rate limit: wait `retry_after` seconds before the next request."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Rate limited by the forge for {retry_after:.0f}s", status=429)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RepoRef:
    """Where a repository lives: the web host and its path (`owner/name`, or nested groups)."""

    scheme: str
    host: str
    path: str

    @classmethod
    def parse(cls, repo_url: str) -> RepoRef:
        if repo_url.startswith("git@"):
            host, _, path = repo_url[4:].partition(":")
            scheme = "https"
        else:
            parsed = urlparse(repo_url)
            scheme, host, path = parsed.scheme or "https", parsed.netloc, parsed.path
        host = host.rsplit("@", 1)[-1]
        path = path.strip("/").removesuffix(".git")
        if "/" not in path:
            raise ForgeError(f"Cannot tell owner and name from {repo_url!r}")
        return cls(scheme="http" if scheme == "http" else "https", host=host, path=path)


@dataclass(frozen=True)
class PullRequestInfo:
    number: int
    url: str
    state: Literal["open", "closed", "merged"]
    mergeable: bool | None
    head_sha: str
    head_branch: str
    base_branch: str
    title: str = ""
    body: str = ""
    draft: bool = False
    # Changes whenever the PR, its reviews or its comments change (used to skip refetches).
    updated_at: str = ""


@dataclass(frozen=True)
class Check:
    name: str
    state: CheckState
    # Where to read the log tail (a check-run/job id), or the text itself for statuses.
    log_ref: str | None = None
    summary: str = ""
    # Who reports it: "github-actions" and "gitlab-ci" also show in the repository feed
    # (`Forge.repo_activity`); other check apps and commit statuses ("status") do not.
    app: str = ""


@dataclass(frozen=True)
class Review:
    id: str
    author: str
    state: Literal["APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"]
    body: str
    commit_sha: str | None = None


@dataclass(frozen=True)
class InlineComment:
    path: str
    line: int | None
    body: str
    review_id: str | None = None


@dataclass(frozen=True)
class PullActivity:
    """One pull request as the repository's change feed lists it."""

    number: int
    state: str
    head_sha: str
    updated_at: str
    base_branch: str = ""


@dataclass(frozen=True)
class CiRun:
    """One CI run (a GitHub Actions workflow run, a GitLab pipeline) as the feed lists it."""

    id: str
    head_sha: str
    state: CheckState
    updated_at: str


@dataclass(frozen=True)
class RepoActivity:
    """The newest PRs (by update) and CI runs of a repository: one page of each.

    `*_complete` is False when the forge had more than that page, so the caller can tell
    that changes further down may have been cut off.
    """

    pulls: list[PullActivity]
    runs: list[CiRun]
    pulls_complete: bool = True
    runs_complete: bool = True


@dataclass(frozen=True)
class MergeOutcome:
    merged: bool
    conflict: bool = False
    message: str | None = None
    sha: str | None = None


@dataclass(frozen=True)
class ReviewDraft:
    event: ReviewEvent
    body: str
    comments: list[InlineComment] = field(default_factory=list)


class Forge(Protocol):
    """One repository on a remote forge, seen through its REST API."""

    ref: RepoRef

    async def branch_sha(self, branch: str) -> str | None: ...
    async def changed_files(self, *, base: str, head: str) -> int: ...
    async def find_open_pr(self, *, head: str) -> PullRequestInfo | None: ...
    async def open_pr(
        self, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequestInfo: ...
    async def get_pr(self, number: int) -> PullRequestInfo: ...
    async def checks(self, sha: str, *, statuses: bool = True) -> list[Check]: ...
    async def check_log_tail(self, check: Check, *, max_chars: int) -> str: ...
    async def reviews(self, number: int) -> list[Review]: ...
    async def inline_comments(self, number: int) -> list[InlineComment]: ...
    async def discussion(self, number: int) -> list[str]: ...
    async def diff(self, number: int) -> str: ...
    async def merge(self, number: int, *, method: MergeMethod, sha: str | None) -> MergeOutcome: ...
    async def comment(self, number: int, *, body: str, key: str) -> None: ...
    async def close_issue(self, number: int, *, comment: str, key: str) -> None: ...
    async def submit_review(self, number: int, *, draft: ReviewDraft, sha: str) -> None: ...
    async def approvals(self, number: int) -> int: ...
    async def repo_activity(self) -> RepoActivity: ...
    async def aclose(self) -> None: ...


# ---- HTTP with ETags and rate limits ---------------------------------------------------


@dataclass
class Cached:
    etag: str
    body: Any
    headers: dict[str, str]


class EtagCache:
    """Answers of earlier GETs by (credential, URL), so unchanged answers come back as 304s.

    Shared by every watcher of the worker process; bounded so it never grows without limit.
    """

    def __init__(self, max_entries: int = 20_000) -> None:
        self._entries: OrderedDict[tuple[str, str], Cached] = OrderedDict()
        self.max_entries = max_entries

    def get(self, key: tuple[str, str]) -> Cached | None:
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
        return hit

    def put(self, key: tuple[str, str], value: Cached) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


@dataclass
class Counters:
    """What a client spent: every request, and those that counted against the rate limit."""

    requests: int = 0
    not_modified: int = 0

    @property
    def charged(self) -> int:
        return self.requests - self.not_modified


def retry_after(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds to wait if this is a rate-limit answer (GitHub and GitLab headers), else None."""
    if response.status_code not in (403, 429):
        return None
    headers = response.headers
    if "retry-after" in headers:
        value = headers["retry-after"]
        try:
            return max(1.0, float(value))
        except ValueError:
            try:
                return max(1.0, parsedate_to_datetime(value).timestamp() - (now or time.time()))
            except (TypeError, ValueError):
                return 60.0
    remaining = headers.get("x-ratelimit-remaining") or headers.get("ratelimit-remaining")
    if remaining == "0":
        reset = headers.get("x-ratelimit-reset") or headers.get("ratelimit-reset")
        if reset and reset.isdigit():
            return max(1.0, int(reset) - (now or time.time()) + 1)
        return 60.0
    if response.status_code == 429:
        return 60.0
    # GitHub's secondary limit: a 403 whose message says so, without the headers above.
    if "rate limit" in response.text.lower():
        return 60.0
    return None


class RestClient:
    """A JSON REST client that sends If-None-Match and turns rate limits into `RateLimited`."""

    def __init__(
        self,
        *,
        base_url: str,
        headers: dict[str, str],
        cache: EtagCache,
        cache_key: str,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        forge: str = "rest",
    ) -> None:
        async def count(response: httpx.Response) -> None:
            # Every answer, cached or not: requests and rate-limit headroom for /metrics.
            observe_forge_answer(forge, response.status_code, dict(response.headers))

        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            transport=transport,
            event_hooks={"response": [count]},
            verify=tls_context(),
        )
        self._cache = cache
        self._key = cache_key
        self.counters = Counters()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        self.counters.requests += 1
        response = await self._http.request(method, path, json=json, params=params)
        wait = retry_after(response)
        if wait is not None:
            raise RateLimited(wait)
        return response

    async def get(
        self, path: str, *, params: dict[str, Any] | None = None, accept: str | None = None
    ) -> tuple[Any, httpx.Headers]:
        """GET with a conditional request; a 304 returns the cached body."""
        url = str(self._http.build_request("GET", path, params=params).url)
        key = (self._key, f"{accept or ''} {url}")
        cached = self._cache.get(key)
        headers = {"If-None-Match": cached.etag} if cached else {}
        if accept:
            headers["Accept"] = accept
        self.counters.requests += 1
        response = await self._http.get(url, headers=headers)
        if response.status_code == 304 and cached is not None:
            self.counters.not_modified += 1
            return cached.body, httpx.Headers(cached.headers)
        wait = retry_after(response)
        if wait is not None:
            raise RateLimited(wait)
        raise_for(response)
        body = response.text if accept and "json" not in accept else response.json()
        etag = response.headers.get("etag")
        if etag:
            self._cache.put(key, Cached(etag, body, dict(response.headers)))
        return body, response.headers

    async def get_all(self, path: str, *, params: dict[str, Any] | None = None) -> list[Any]:
        """Every page of a list endpoint, following the `Link: rel="next"` header."""
        items: list[Any] = []
        query = {"per_page": 100, **(params or {})}
        page = 1
        while True:
            body, headers = await self.get(path, params={**query, "page": page})
            batch = body if isinstance(body, list) else []
            items.extend(batch)
            if 'rel="next"' not in headers.get("link", "") or not batch:
                return items
            page += 1


def raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        message = response.json().get("message") or response.text
    except ValueError:
        message = response.text
    raise ForgeError(
        f"{response.request.method} {response.request.url.path}: {response.status_code} "
        f"{str(message)[:300]}",
        status=response.status_code,
    )


def tail(text: str, max_chars: int) -> str:
    text = text.strip()
    return text if len(text) <= max_chars else "..." + text[-max_chars:]
