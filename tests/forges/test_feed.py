"""The repository feed: what changed -> whom to wake, against the GitHub double, rate limits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from integrations.forges.base import (
    CiRun,
    EtagCache,
    PullActivity,
    RateLimited,
    RepoActivity,
    RepoRef,
)
from integrations.forges.feed import (
    CHECKS,
    EVERYTHING,
    PR,
    REVIEWS,
    Changes,
    RepoFeed,
    diff,
    parts_for,
    whom_to_wake,
)
from integrations.forges.github import GitHubForge
from integrations.forges.watch import PollPolicy
from schemas.workflow import PrEvent
from tests.forges.conftest import OPTIO_TOKEN
from tests.forges.git_http import commit_file, git, sha_of
from tests.forges.github_double import GitHubDouble, Pull


def pull(number: int, sha: str, updated: str = "t1", state: str = "open") -> PullActivity:
    return PullActivity(number, state, sha, updated, "main")


def run(id: str, sha: str, state: str = "pending") -> CiRun:
    return CiRun(id, sha, state, "t")  # type: ignore[arg-type]


def test_only_what_moved_wakes_and_a_first_look_is_a_baseline() -> None:
    before = RepoActivity([pull(1, "a"), pull(2, "b")], [run("10", "a"), run("11", "b")])
    view, changes = diff(None, before)
    assert changes == Changes()  # nothing to compare with yet
    after = RepoActivity(
        [pull(2, "b2", "t2"), pull(1, "a")], [run("12", "b2"), run("10", "a", "failure")]
    )
    view, changes = diff(view, after)
    assert changes.pulls == {2} and changes.shas == {"a", "b2", "b"}  # run 11 vanished pending
    heads = {1: ("a", "a"), 2: ("b", "b2"), 3: ("c", None)}
    assert whom_to_wake(changes, heads) == {1: {CHECKS}, 2: {PR, CHECKS}}
    # Unchanged: nobody.
    _, changes = diff(view, after)
    assert whom_to_wake(changes, heads) == {}
    # A full page whose oldest entry is news: changes may be cut off, everybody looks.
    cut = RepoActivity([pull(4, "d", "t3")], [], pulls_complete=False)
    _, changes = diff(view, cut)
    assert changes.overflow and set(whom_to_wake(changes, heads)) == {1, 2, 3}


def test_webhook_deliveries_refetch_only_what_they_touch() -> None:
    assert parts_for([PrEvent("check_run", head_sha="a")], head_sha="a") == {CHECKS}
    assert parts_for([PrEvent("push", head_sha="a")], head_sha="a") == set()  # known head
    assert parts_for([PrEvent("push", head_sha="b")], head_sha="a") == {PR}
    assert parts_for([PrEvent("pull_request_review")], head_sha="a") == {PR, REVIEWS}
    assert parts_for([PrEvent("*")], head_sha="a") == EVERYTHING


@pytest.fixture
def double(tmp_path: Path, make_repo: Callable[..., Path]) -> GitHubDouble:
    gh = GitHubDouble(tmp_path / "gh", users={OPTIO_TOKEN: "optio-bot"})
    gh.base_url = "http://forge.test"
    repo = gh.add_repo("acme", "app", make_repo())
    for n in (1, 2, 3):
        git(repo.path, "branch", f"optio/task-{n}", "main")
        commit_file(repo.path, branch=f"optio/task-{n}", path=f"f{n}", content="1\n", message="x")
        repo.pulls[n] = Pull(n, f"PR {n}", "", f"optio/task-{n}", "main", "optio-bot")
        repo.check_runs[str(sha_of(repo.path, f"refs/heads/optio/task-{n}"))] = [
            {
                "id": 100 + n,
                "name": "test",
                "head_sha": sha_of(repo.path, f"refs/heads/optio/task-{n}"),
                "status": "in_progress",
                "conclusion": None,
                "started_at": "2025-01-01T00:00:00Z",
                "completed_at": None,
                "output": {},
                "app": {"slug": "github-actions"},
            }
        ]
    return gh


def feed_of(double: GitHubDouble) -> RepoFeed:
    forge = GitHubForge(
        ref=RepoRef.parse("http://forge.test/acme/app.git"),
        token=OPTIO_TOKEN,
        cache=EtagCache(),
        api_url="http://forge.test/api/v3",
        transport=httpx.ASGITransport(app=double.app),
    )
    return RepoFeed(forge, PollPolicy(), clock=lambda: 0.0)


async def test_the_feed_wakes_only_the_changed_prs_watch_and_304s_are_free(
    double: GitHubDouble,
) -> None:
    feed = feed_of(double)
    await feed.poll(0.0)  # the baseline
    watches = {n: feed.watch(n) for n in (1, 2, 3)}
    for watch in watches.values():
        await watch.look(0.0)
        assert watch.snapshot is not None and watch.snapshot.checks_status == "pending"
    http = feed.forge.http  # type: ignore[attr-defined]
    charged = http.counters.charged
    assert await feed.poll(10.0) == {}
    assert http.counters.charged == charged  # nothing moved: 304s, free on GitHub
    assert http.counters.not_modified >= 2

    repo = double.repos["acme/app"]
    commit_file(repo.path, branch="optio/task-2", path="f2", content="2\n", message="push")
    repo.pulls[2].updated_at = "2999-01-01T00:00:00Z"
    sha1 = str(sha_of(repo.path, "refs/heads/optio/task-1"))
    double.complete_check(repo, repo.check_runs[sha1][0], "failure")
    woken = await feed.poll(20.0)
    assert woken == {1: {CHECKS}, 2: {PR}}
    assert not watches[3].woken.is_set() and not watches[3].stale
    failing = await watches[1].look(20.0)
    assert failing.checks_status == "failing"
    pushed = await watches[2].look(20.0)
    assert pushed.head_sha == sha_of(repo.path, "refs/heads/optio/task-2")
    # A new head with no checks yet is pending (CI has not registered), not "no CI".
    assert pushed.checks_status == "pending" and watches[2].observer.in_grace
    await feed.forge.aclose()  # type: ignore[attr-defined]


async def test_the_feed_backs_off_on_a_429_with_retry_after(double: GitHubDouble) -> None:
    feed = feed_of(double)
    await feed.poll(0.0)
    double.secondary_limit_next = 1
    with pytest.raises(RateLimited):
        await feed.poll(100.0)
    assert feed.blocked_until == 102.0 and feed.next_poll >= 102.0
    await feed.poll(102.0)
    assert feed.polls == 2
    await feed.forge.aclose()  # type: ignore[attr-defined]
