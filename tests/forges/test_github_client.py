"""The GitHub client against the double: ETags and 304s, pagination, rate limits, idempotency."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from integrations.forges.base import EtagCache, RateLimited, RepoRef, retry_after
from integrations.forges.github import GitHubForge
from integrations.forges.watch import PollPolicy, PrObserver
from tests.forges.conftest import OPTIO_TOKEN
from tests.forges.git_http import commit_file
from tests.forges.github_double import GitHubDouble


def client(double: GitHubDouble, cache: EtagCache | None = None) -> GitHubForge:
    return GitHubForge(
        ref=RepoRef.parse("http://forge.test/acme/app.git"),
        token=OPTIO_TOKEN,
        cache=cache or EtagCache(),
        api_url="http://forge.test/api/v3",
        transport=httpx.ASGITransport(app=double.app),
    )


@pytest.fixture
def double(tmp_path: Path, make_repo: Callable[..., Path]) -> GitHubDouble:
    gh = GitHubDouble(tmp_path / "gh", users={OPTIO_TOKEN: "optio-bot"})
    gh.base_url = "http://forge.test"
    repo = gh.add_repo("acme", "app", make_repo())
    commit_file(repo.path, branch="main", path="x", content="1\n", message="x")
    from tests.forges.git_http import git

    git(repo.path, "branch", "optio/task-1", "main~1")
    return gh


async def test_open_is_idempotent_and_unchanged_polls_are_free(double: GitHubDouble) -> None:
    gh = client(double)
    commit_file(
        double.repos["acme/app"].path, branch="optio/task-1", path="y", content="2\n", message="y"
    )
    first = await gh.open_pr(head="optio/task-1", base="main", title="t", body="b", draft=False)
    again = await gh.open_pr(head="optio/task-1", base="main", title="t", body="b", draft=False)
    assert first.number == again.number == 1 and len(double.repos["acme/app"].pulls) == 1
    observer = PrObserver(gh, 1)
    snapshot = await observer.observe()
    assert snapshot.state == "open" and snapshot.checks_status == "none"
    charged = double.rate_limit - double.remaining[OPTIO_TOKEN]
    for _ in range(10):
        assert await observer.observe() == snapshot
    # Every later request was a conditional one answered 304: no rate limit spent.
    assert double.rate_limit - double.remaining[OPTIO_TOKEN] == charged
    assert double.not_modified >= 10
    assert gh.http.counters.not_modified == double.not_modified


async def test_pagination_follows_link_headers(double: GitHubDouble) -> None:
    gh = client(double)
    repo = double.repos["acme/app"]
    repo.issues[7] = {"number": 7, "state": "open", "title": "bug"}
    for n in range(130):
        repo.comments.setdefault(7, []).append({"id": n, "body": f"c{n}", "user": {"login": "a"}})
    assert len(await gh.discussion(7)) == 130
    await gh.close_issue(7, comment="done", key="k")
    await gh.close_issue(7, comment="done", key="k")
    assert sum("done" in c["body"] for c in repo.comments[7]) == 1  # the marker: never twice
    assert repo.issues[7]["state"] == "closed"


async def test_rate_limits_are_honoured(double: GitHubDouble) -> None:
    gh = client(double)
    double.remaining[OPTIO_TOKEN] = 0
    with pytest.raises(RateLimited) as raised:
        await gh.branch_sha("main")
    assert 1 <= raised.value.retry_after <= 3700
    double.remaining[OPTIO_TOKEN] = 100
    double.secondary_limit_next = 1
    with pytest.raises(RateLimited) as raised:
        await gh.branch_sha("main")
    assert raised.value.retry_after == 2  # Retry-After wins
    assert await gh.branch_sha("main")


def test_retry_after_and_poll_policy() -> None:
    request = httpx.Request("GET", "http://x")
    reset = httpx.Response(
        403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1060"}, request=request
    )
    assert retry_after(reset, now=1000) == 61
    assert retry_after(httpx.Response(404, request=request)) is None
    policy = PollPolicy(base_seconds=30, max_idle_seconds=600, webhook_safety_seconds=1800)
    assert policy.next_interval(pending=True, unchanged_polls=9, webhooks=False) == 30
    assert policy.next_interval(pending=False, unchanged_polls=1, webhooks=False) == 60
    assert policy.next_interval(pending=False, unchanged_polls=9, webhooks=False) == 600
    assert policy.next_interval(pending=True, unchanged_polls=0, webhooks=True) == 1800
