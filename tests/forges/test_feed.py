"""The repository feed: what changed -> whom to wake, against the GitHub double, rate limits."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.routes.webhooks import pr_event
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
    PrWatch,
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


def feed_of(double: GitHubDouble, clock: Callable[[], float] = lambda: 0.0) -> RepoFeed:
    forge = GitHubForge(
        ref=RepoRef.parse("http://forge.test/acme/app.git"),
        token=OPTIO_TOKEN,
        cache=EtagCache(),
        api_url="http://forge.test/api/v3",
        transport=httpx.ASGITransport(app=double.app),
    )
    return RepoFeed(forge, PollPolicy(), clock=clock)


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


# ---- with webhooks: deliveries say what happened ----------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def hooked(double: GitHubDouble, clock: Clock, numbers: tuple[int, ...]) -> RepoFeed:
    """A feed with webhooks arriving, its baseline taken and each PR looked at once."""
    feed = feed_of(double, clock)
    feed.webhooks = True
    await feed.poll(clock.now)
    for number in numbers:
        watch = feed.watch(number)
        watch.waiting = 1  # a watch activity waits on it: deliveries are applied
        watch.begin_round(clock.now, known=None, events=[])
        await watch.look(clock.now)
    return feed


def requests(feed: RepoFeed) -> int:
    return int(feed.forge.http.counters.requests)  # type: ignore[attr-defined]


def push(double: GitHubDouble, number: int, *, at: str = "2999-01-01T00:00:00Z") -> str:
    repo = double.repos["acme/app"]
    sha = commit_file(
        repo.path, branch=f"optio/task-{number}", path=f"f{number}", content=at, message="push"
    )
    repo.pulls[number].updated_at = at
    return sha


def start_run(double: GitHubDouble, sha: str, name: str = "test") -> dict[str, Any]:
    """A GitHub Actions check run registered on a pushed commit, as the double's CI does."""
    run: dict[str, Any] = {
        "id": next(double.ids),
        "name": name,
        "head_sha": sha,
        "status": "in_progress",
        "conclusion": None,
        "started_at": "2999-01-01T00:00:00Z",
        "completed_at": None,
        "output": {},
        "app": {"slug": "github-actions"},
        "pull_requests": [],
    }
    double.repos["acme/app"].check_runs.setdefault(sha, []).append(run)
    return run


def check_run(run: dict[str, Any], action: str) -> PrEvent:
    """The signal the webhook route makes of a `check_run` delivery about `run`."""
    return pr_event("github", "check_run", None, {"action": action, "check_run": dict(run)})


def pushed(sha: str) -> list[PrEvent]:
    return [
        PrEvent("push", head_sha=sha),
        PrEvent("pull_request", head_sha=sha, action="synchronize"),
    ]


async def test_a_push_delivery_costs_no_request(double: GitHubDouble) -> None:
    clock = Clock()
    feed = await hooked(double, clock, (1, 2))
    one, two = feed.watch(1), feed.watch(2)
    spent = requests(feed)
    clock.now = 5.0
    sha = push(double, 1)
    run = start_run(double, sha)
    one.begin_round(5.0, known=None, events=[*pushed(sha), check_run(run, "created")])
    assert not one.needs_look(5.0) and requests(feed) == spent
    assert one.snapshot is not None and one.snapshot.head_sha == sha
    assert one.snapshot.checks_status == "pending" and one.snapshot.mergeable is None
    # Mergeability is read when a decision needs it (the CI verdict), not polled for.
    assert one.due == math.inf

    # No check run delivered for the new head: pending through the grace, then one look.
    sha2 = push(double, 2)
    two.begin_round(5.0, known=None, events=pushed(sha2))
    assert requests(feed) == spent and two.snapshot is not None
    assert two.snapshot.checks_status == "pending" and two.observer.in_grace
    assert two.due == 5.0 + feed.policy.ci_grace_seconds
    clock.now = two.due
    assert two.needs_look(clock.now)
    looked = await two.look(clock.now)
    assert looked.checks_status == "none"  # CI never registered: no CI, as when polling
    # The PR, its check runs and statuses; no reviews (the push explains `updated_at`).
    assert requests(feed) == spent + 3
    await feed.forge.aclose()  # type: ignore[attr-defined]


async def failed_after_push(double: GitHubDouble) -> tuple[RepoFeed, PrWatch, dict[str, Any]]:
    """PR 1's watch told of a push and its CI run starting, and that run since failed on
    GitHub (no delivery about the failure applied yet)."""
    feed = await hooked(double, Clock(), (1,))
    watch = feed.watch(1)
    sha = push(double, 1)
    run = start_run(double, sha)
    watch.begin_round(1.0, known=None, events=[*pushed(sha), check_run(run, "created")])
    double.complete_check(double.repos["acme/app"], run, "failure")
    return feed, watch, run


async def test_a_failing_check_run_delivery_reports_failing_without_a_request(
    double: GitHubDouble,
) -> None:
    feed, watch, run = await failed_after_push(double)
    spent = requests(feed)
    watch.begin_round(200.0, known=None, events=[check_run(run, "completed")])
    assert not watch.needs_look(200.0) and requests(feed) == spent
    assert watch.snapshot is not None and watch.snapshot.checks_status == "failing"
    await feed.forge.aclose()  # type: ignore[attr-defined]


async def test_a_passing_verdict_is_verified_with_a_look_before_it_is_reported(
    double: GitHubDouble,
) -> None:
    clock = Clock()
    feed = await hooked(double, clock, (1,))
    watch = feed.watch(1)
    repo = double.repos["acme/app"]
    sha = push(double, 1)
    lint, test = start_run(double, sha, "lint"), start_run(double, sha, "test")
    # The delivery saying `test` started is lost: by what the watch knows, `lint` passing
    # means CI passes. It may merge on that, so it looks first.
    watch.begin_round(1.0, known=None, events=[*pushed(sha), check_run(lint, "created")])
    double.complete_check(repo, lint, "success")
    spent = requests(feed)
    watch.begin_round(100.0, known=None, events=[check_run(lint, "completed")])
    assert watch.snapshot is not None and watch.snapshot.checks_status == "pending"
    assert watch.needs_look(100.0) and {PR, CHECKS} <= watch.stale
    looked = await watch.look(100.0)
    assert looked.checks_status == "pending"  # `test` still runs
    # The PR and its check runs: commit statuses were never seen in the repository.
    assert requests(feed) == spent + 2
    double.complete_check(repo, test, "success")
    watch.begin_round(200.0, known=None, events=[check_run(test, "completed")])
    looked = await watch.look(200.0)
    assert looked.checks_status == "passing" and looked.mergeable is True
    assert requests(feed) == spent + 4
    # A repeated delivery about what is verified costs nothing.
    watch.begin_round(201.0, known=None, events=[check_run(test, "completed")])
    assert not watch.needs_look(201.0) and requests(feed) == spent + 4
    await feed.forge.aclose()  # type: ignore[attr-defined]


async def test_no_own_poll_with_webhooks_for_checks_the_feed_lists(double: GitHubDouble) -> None:
    repo = double.repos["acme/app"]
    sha2 = str(sha_of(repo.path, "refs/heads/optio/task-2"))
    repo.statuses[sha2] = [{"id": 9, "state": "pending", "context": "ext", "description": None}]
    clock = Clock()
    feed = await hooked(double, clock, (1, 2))
    assert feed.watch(1).due == math.inf  # GitHub Actions only: the feed covers it
    # A commit status the feed does not list: a rare poll of its own.
    assert feed.watch(2).due <= 1.25 * feed.policy.webhook_safety_seconds
    assert feed.statuses_used is True
    # Without webhooks every PR keeps its own poll.
    polling = feed_of(double)
    await polling.poll(0.0)
    await polling.watch(1).look(0.0)
    assert math.isfinite(polling.watch(1).due)
    # Webhooks stop: the own poll is due at once, and planned as when polling.
    feed.webhooks = False
    assert feed.watch(1).needs_look(10.0)
    await feed.watch(1).look(10.0)
    assert math.isfinite(feed.watch(1).due)
    for forge in (feed.forge, polling.forge):
        await forge.aclose()  # type: ignore[attr-defined]


async def test_the_feed_wakes_only_prs_whose_change_no_delivery_explained(
    double: GitHubDouble,
) -> None:
    clock = Clock()
    feed = await hooked(double, clock, (1, 2, 3))
    one, two, three = (feed.watch(n) for n in (1, 2, 3))
    # PR 1: pushed, and the deliveries arrived.
    sha1 = push(double, 1)
    run1 = start_run(double, sha1)
    one.begin_round(10.0, known=None, events=[*pushed(sha1), check_run(run1, "created")])
    # PR 2: pushed, its deliveries lost.
    start_run(double, push(double, 2))
    # PR 3: pushed twice, the second push's deliveries lost.
    sha3 = push(double, 3)
    three.begin_round(10.0, known=None, events=pushed(sha3))
    start_run(double, push(double, 3, at="2999-01-01T00:00:09Z"))
    woken = await feed.poll(600.0)
    assert woken == {2: {PR, CHECKS}, 3: {PR, CHECKS}}
    assert not one.stale and two.stale and three.stale
    # The push explained PR 1's `updated_at`: verifying its passing CI reads no reviews.
    double.complete_check(double.repos["acme/app"], run1, "success")
    spent = requests(feed)
    one.begin_round(700.0, known=None, events=[check_run(run1, "completed")])
    assert (await one.look(700.0)).checks_status == "passing"
    assert requests(feed) == spent + 2  # the PR and its check runs
    assert await feed.poll(1200.0) == {}  # nothing new
    # A review on PR 1 whose delivery is lost, while a delivery about its CI arrives:
    # that explains no move of `updated_at`, so the feed's look wakes it.
    double.repos["acme/app"].pulls[1].updated_at = "2999-01-01T00:01:00Z"
    one.begin_round(1300.0, known=None, events=[check_run(run1, "completed")])
    assert await feed.poll(1800.0) == {1: {PR}}
    await feed.forge.aclose()  # type: ignore[attr-defined]


async def test_the_webhook_route_fills_the_check_run_fields(double: GitHubDouble) -> None:
    repo = double.repos["acme/app"]
    sha = str(sha_of(repo.path, "refs/heads/optio/task-1"))
    run = repo.check_runs[sha][0]
    double.complete_check(repo, run, "failure")
    event, body = double.deliveries[-2]  # what GitHub would POST: the run, then its suite
    assert event == "check_run"
    got = pr_event("github", event, "d-1", body)
    assert (got.kind, got.delivery_id, got.head_sha, got.action) == (
        "check_run",
        "d-1",
        sha,
        "completed",
    )
    assert (got.check_id, got.check_name, got.check_app, got.check_state) == (
        str(run["id"]),
        "test",
        "github-actions",
        "failure",
    )
    suite_event, suite_body = double.deliveries[-1]
    suite = pr_event("github", suite_event, "d-2", suite_body)
    assert (suite.kind, suite.action, suite.head_sha, suite.check_app) == (
        "check_suite",
        "completed",
        sha,
        "github-actions",
    )
    started = {"action": "created", "check_run": {**run, "status": "queued", "conclusion": None}}
    assert pr_event("github", "check_run", None, started).check_state == "pending"
    skipped = {"action": "completed", "check_run": {**run, "conclusion": "skipped"}}
    assert pr_event("github", "check_run", None, skipped).check_state == "success"
    # A push names its head; a deleted branch names none. Other events carry no run.
    assert pr_event("github", "push", None, {"after": sha}).head_sha == sha
    assert pr_event("github", "push", None, {"after": "0" * 40}).head_sha is None
    review = pr_event("github", "pull_request_review", None, {"action": "submitted"})
    assert review.action == "submitted" and review.check_state is None
    # GitLab's deliveries are refetched: no fields.
    pipeline = {"object_kind": "pipeline", "object_attributes": {"sha": sha, "status": "failed"}}
    hook = pr_event("gitlab", "Pipeline Hook", None, pipeline)
    assert hook.head_sha == sha and hook.check_state is None and hook.action is None


def test_deliveries_without_the_new_fields_refetch_as_before(double: GitHubDouble) -> None:
    """Signals recorded before the fields existed decode with None: today's behaviour."""
    feed = feed_of(double)
    watch: PrWatch = feed.watch(1)
    assert watch.stale == set()
    assert parts_for([PrEvent("check_run", None, "a")], head_sha="a") == {CHECKS}
    assert parts_for([PrEvent("pull_request", None, "a")], head_sha="a") == {PR}


def check_suite_completed(run: dict[str, Any]) -> PrEvent:
    """The signal the webhook route makes of a `check_suite` `completed` delivery."""
    suite = {key: run[key] for key in ("head_sha", "status", "conclusion", "app")}
    return pr_event("github", "check_suite", None, {"action": "completed", "check_suite": suite})


async def test_a_suite_completed_after_its_runs_were_delivered_costs_nothing(
    double: GitHubDouble,
) -> None:
    feed, watch, run = await failed_after_push(double)
    spent = requests(feed)
    watch.begin_round(
        200.0, known=None, events=[check_run(run, "completed"), check_suite_completed(run)]
    )
    assert not watch.needs_look(200.0) and requests(feed) == spent
    assert watch.snapshot is not None and watch.snapshot.checks_status == "failing"
    await feed.forge.aclose()  # type: ignore[attr-defined]


async def test_a_suite_completed_whose_run_delivery_was_lost_is_looked_at(
    double: GitHubDouble,
) -> None:
    feed, watch, run = await failed_after_push(double)
    # The run's `completed` delivery is lost; the suite's arrives.
    watch.begin_round(200.0, known=None, events=[check_suite_completed(run)])
    assert watch.needs_look(200.0) and CHECKS in watch.stale
    looked = await watch.look(200.0)
    assert looked.checks_status == "failing"
    await feed.forge.aclose()  # type: ignore[attr-defined]
