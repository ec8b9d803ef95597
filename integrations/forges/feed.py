"""One change feed per repository (and token) in the worker, shared by all its PR watches.

Polling each PR costs requests in proportion to the number of PRs. The feed instead asks
the forge for the repository's recently updated PRs and CI runs (`Forge.repo_activity`:
two conditional GETs, a free 304 on GitHub while nothing moved), works out which PRs
changed (`diff`, `whom_to_wake`: pure functions, driven by a simulated clock in
bench/forge.py) and wakes only their watches. Each PR's own poll becomes a rare safety
net: for what the feed does not list (commit statuses, third-party check apps, whose
pending checks keep a faster poll of their own), for mergeability (re-read when the base
branch moves) and for anything lost.

A `PrWatch` (one per PR) outlives the watch activity's rounds, so a new round, or one
started by a webhook, refetches only what may have changed. With webhooks a delivery
says what happened and requests are made only for what a decision needs (`PrWatch.apply`):
a push is taken as is, a check run started or failed too, a passing verdict is verified
by one look (a merge may follow). The feed is then the safety net for every PR at once,
every `feed_webhook_seconds`: it wakes a PR only for what no delivery explained
(`explained`), and a PR whose checks it lists all needs no poll of its own.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from integrations.forges.base import (
    Check,
    CheckState,
    CiRun,
    Forge,
    ForgeError,
    PullActivity,
    RateLimited,
    RepoActivity,
)
from integrations.forges.watch import PollPolicy, PrObserver
from schemas.workflow import PrEvent, PrSnapshotData

log = logging.getLogger(__name__)

# What a look at one PR refetches: the PR itself, its checks, its reviews.
PR, CHECKS, REVIEWS = "pr", "checks", "reviews"
EVERYTHING = frozenset({PR, CHECKS, REVIEWS})
# Marked with PR and CHECKS: deliveries say the checks pass, a look verifies it (a merge
# may follow). Commit statuses are skipped there if the repository is known not to use them.
VERIFY = "verify"
MAX_VIEW_PULLS = 5000
MAX_WATCHES = 5000
# A rate-limit pause never exceeds this (GitHub's reset is at most an hour away).
MAX_BACKOFF_SECONDS = 3600.0
# A round that starts this soon after the last one ended (a webhook cancelled it) trusts
# what the PR's watch knows and refetches only what the deliveries touch.
CONTINUITY_SECONDS = 30.0
# The workflow keeps the last 10 deliveries: with that many some may have been dropped.
MAX_EVENTS = 10

# Webhook events (GitHub's X-GitHub-Event, GitLab's X-Gitlab-Event) and what they can change.
CI_EVENTS = frozenset(
    {
        "check_run",
        "check_suite",
        "status",
        "workflow_run",
        "workflow_job",
        "Pipeline Hook",
        "Job Hook",
    }
)
REVIEW_EVENTS = frozenset(
    {
        "pull_request_review",
        "pull_request_review_comment",
        "pull_request_review_thread",
        "issue_comment",
        "Note Hook",
    }
)
PR_EVENTS = frozenset({"pull_request", "Merge Request Hook", "push", "Push Hook"})
PUSH_EVENTS = frozenset({"push", "Push Hook"})
CHECK_STATES: dict[str | None, CheckState] = {
    "pending": "pending",
    "success": "success",
    "failure": "failure",
}


# ---- what changed, and whom to wake (pure) ----------------------------------------------


@dataclass
class FeedView:
    """The feed as last seen: PRs by number (kept beyond one page), runs of the last page."""

    pulls: dict[int, PullActivity] = field(default_factory=dict)
    runs: dict[str, CiRun] = field(default_factory=dict)


@dataclass(frozen=True)
class Changes:
    pulls: frozenset[int] = frozenset()  # PRs whose state, head or updated_at moved
    shas: frozenset[str] = frozenset()  # head commits whose CI runs moved
    overflow: bool = False  # more moved than one page shows: everybody looks


def diff(previous: FeedView | None, activity: RepoActivity) -> tuple[FeedView, Changes]:
    """The new view and what changed since `previous` (None: a first look, a baseline)."""
    pulls = {p.number: p for p in activity.pulls}
    runs = {r.id: r for r in activity.runs}
    kept = OrderedDict((previous.pulls if previous else {}).items())
    for number in reversed([p.number for p in activity.pulls]):  # newest last
        kept.pop(number, None)
    kept.update((p.number, p) for p in reversed(activity.pulls))
    while len(kept) > MAX_VIEW_PULLS:
        kept.popitem(last=False)
    view = FeedView(pulls=dict(kept), runs=runs)
    if previous is None:
        return view, Changes()
    changed = frozenset(n for n, p in pulls.items() if previous.pulls.get(n) != p)
    shas = {r.head_sha for r in activity.runs if previous.runs.get(r.id) != r}
    # A run still running that fell off the page: its end would go unseen, so look now.
    shas |= {r.head_sha for i, r in previous.runs.items() if r.state == "pending" and i not in runs}
    # Sorted newest first: if even the last entry of a full page is news, more may be cut off.
    overflow = (
        not activity.pulls_complete
        and bool(activity.pulls)
        and activity.pulls[-1].number in changed
    ) or (
        not activity.runs_complete
        and bool(activity.runs)
        and activity.runs[-1].id not in previous.runs
    )
    return view, Changes(changed, frozenset(shas), overflow)


def whom_to_wake(
    changes: Changes, heads: Mapping[int, Iterable[str | None]]
) -> dict[int, frozenset[str]]:
    """Watched PRs (number -> head commits known for it) to look at, and what to refetch."""
    wake: dict[int, frozenset[str]] = {}
    for number, shas in heads.items():
        parts: set[str] = set()
        if changes.overflow:
            parts |= {PR, CHECKS}
        if number in changes.pulls:
            parts.add(PR)
        if any(sha is not None and sha in changes.shas for sha in shas):
            parts.add(CHECKS)
        if parts:
            wake[number] = frozenset(parts)
    return wake


def explained(
    parts: frozenset[str],
    *,
    seen: PullActivity | None,
    runs: Iterable[CiRun],
    known: PrSnapshotData | None,
    updated_at: str | None,
    pushed: bool,
) -> frozenset[str]:
    """What a feed change still calls for at a PR that deliveries told about since the
    previous feed look: nothing the PR's watch already knows. The PR part goes when its
    head and state are the watch's and `updated_at` is the one the watch accounted for or
    was moved by a push a delivery told about (`pushed`); the checks part when the feed's
    runs for the watch's head end in the status the watch has."""
    if known is None:
        return parts
    left = set(parts)
    if (
        seen is not None
        and seen.head_sha == known.head_sha
        and seen.state == known.state
        and (seen.updated_at == updated_at or pushed)
    ):
        left.discard(PR)
    states = [r.state for r in runs if r.head_sha == known.head_sha]
    if states and _verdict(states) == known.checks_status:
        left.discard(CHECKS)
    return frozenset(left)


def _verdict(states: Sequence[CheckState]) -> str:
    """`watch.checks_status` for runs: pending until all completed, then pass/fail."""
    if "pending" in states:
        return "pending"
    return "passing" if all(s == "success" for s in states) else "failing"


def head_move(event: PrEvent) -> str | None:
    """The PR's new head commit when the delivery is a push to its branch (GitHub's `push`
    or `pull_request` `synchronize`; GitLab's `Push Hook`), else None."""
    if not event.head_sha:
        return None
    if event.kind in PUSH_EVENTS or (
        event.kind == "pull_request" and event.action == "synchronize"
    ):
        return event.head_sha
    return None


def reported_check(event: PrEvent) -> Check | None:
    """The check run a `check_run` delivery carries (GitHub), else None."""
    if (
        event.kind != "check_run"
        or not event.head_sha
        or not event.check_name
        or event.check_state not in CHECK_STATES
    ):
        return None
    state = CHECK_STATES[event.check_state]
    return Check(event.check_name, state, event.check_id, "", event.check_app or "")


def suite_told(event: PrEvent) -> bool:
    """A `check_suite` `completed` delivery naming its commit and app (GitHub)."""
    return (
        event.kind == "check_suite"
        and event.action == "completed"
        and bool(event.head_sha)
        and bool(event.check_app)
    )


def parts_for(events: Iterable[PrEvent], *, head_sha: str | None) -> frozenset[str]:
    """What webhook deliveries say may have changed (all of it when unsure)."""
    parts: set[str] = set()
    for event in events:
        same_head = event.head_sha is not None and event.head_sha == head_sha
        if event.kind in PUSH_EVENTS and same_head:
            continue  # the head we know already: a second delivery about the same push
        if event.kind in CI_EVENTS:
            parts |= {CHECKS} if same_head or event.head_sha is None else {PR, CHECKS}
        elif event.kind in REVIEW_EVENTS:
            parts |= {PR, REVIEWS}
        elif event.kind in PR_EVENTS:
            parts.add(PR)
        else:
            parts |= EVERYTHING
    return frozenset(parts)


def jitter(number: int, span: float) -> float:
    """A fixed spread in [0, span) so that PRs woken together do not all ask at once."""
    return (zlib.crc32(str(number).encode()) % 1000) / 1000 * span


# ---- one PR -----------------------------------------------------------------------------


class PrWatch:
    """One PR's observer and what is known to be stale about it; kept across watch rounds."""

    def __init__(self, feed: RepoFeed, number: int) -> None:
        self.feed = feed
        self.number = number
        self.observer = PrObserver(
            feed.forge, number, ci_grace=feed.policy.ci_grace_seconds, clock=feed.clock
        )
        self.snapshot: PrSnapshotData | None = None
        self.stale: set[str] = set()
        self.due = 0.0
        self.woken = asyncio.Event()
        self.waiting = 0  # watch activities waiting on this PR now
        self.left_at = float("-inf")  # when the last one returned
        self.delivered_at = float("-inf")  # when deliveries about this PR were last applied
        self.planned_with_webhooks = False  # `due` assumes webhooks arrive

    @property
    def base_branch(self) -> str | None:
        return self.observer.pr.base_branch if self.observer.pr is not None else None

    def begin_round(
        self, now: float, *, known: PrSnapshotData | None, events: Sequence[PrEvent]
    ) -> None:
        """A watch round starts. `known` None means "tell me now": after a webhook only
        what its deliveries touch is refetched, after anything else (a first round, a
        subtask that finished, a gap in watching) everything is."""
        if known is not None:
            return
        continuous = self.waiting > 0 or now - self.left_at <= CONTINUITY_SECONDS
        if events and len(events) < MAX_EVENTS and continuous and self.snapshot is not None:
            self.delivered_at = now
            self.mark(self.apply(events, now))
        else:
            self.mark(EVERYTHING)

    def apply(self, events: Sequence[PrEvent], now: float) -> frozenset[str]:
        """Take in what the deliveries say happened, and return what must still be fetched.

        A push names the new head: taken as is (checks pending, mergeability unknown). A
        check run started or finished on the head updates its known runs: pending, or
        failing, with no request; passing is verified by a look at the checks and the PR
        (a merge may follow). A check run on an older head is moot. Any other delivery
        refetches what it may have changed (`parts_for`).
        """
        observer = self.observer
        parts: set[str] = set()
        # A push and the check runs it starts arrive together: the head first.
        ordered = sorted(events, key=lambda e: head_move(e) is None)
        for event in ordered:
            if event.kind == "status":
                self.feed.statuses_used = True
            sha = head_move(event)
            if sha is not None and observer.pr is not None:
                if sha != observer.head_sha:
                    observer.head_moved(sha)
                continue
            if suite_told(event) and observer.suite_settled(
                str(event.head_sha), str(event.check_app)
            ):
                continue  # the suite's check runs were delivered one by one already
            check = reported_check(event)
            if check is not None and event.head_sha is not None:
                if event.head_sha == observer.head_sha:
                    if observer.check_reported(event.head_sha, check):
                        parts |= {PR, CHECKS, VERIFY}
                    continue
                if observer.knows_head(event.head_sha):
                    continue  # CI of a commit the PR has moved past
            parts |= parts_for([event], head_sha=observer.head_sha)
        if observer.pr is not None:
            self.snapshot = observer.snapshot()
            self.due = min(self.due, now + self.own_interval())
        return frozenset(parts)

    def mark(self, parts: Iterable[str]) -> None:
        self.stale |= set(parts)
        self.woken.set()

    def needs_look(self, now: float) -> bool:
        if self.planned_with_webhooks and not self.feed.webhooks:
            # Webhooks stopped arriving: the own poll they made unnecessary is due now.
            self.planned_with_webhooks = False
            self.due = min(self.due, now)
        return self.snapshot is None or bool(self.stale) or now >= self.due

    async def look(self, now: float) -> PrSnapshotData:
        """Refetch what is stale (a due own poll refetches the PR) and plan the next poll."""
        parts = set(self.stale)
        if self.snapshot is None or now >= self.due or CHECKS in parts:
            # With CI done the workflow may merge: mergeability must be fresh, not what it
            # was at the push (the base may have moved since). A 304 when unchanged.
            parts.add(PR)
        self.stale.clear()
        self.woken.clear()
        feed, observer = self.feed, self.observer
        observer.webhooks = feed.webhooks
        try:
            snapshot = await observer.observe(
                pr=PR in parts,
                checks=CHECKS in parts,
                reviews=REVIEWS in parts,
                # Verifying what deliveries said, commit statuses are skipped if the
                # repository is known not to use them: none seen on any fetch, and no
                # `status` delivery (one would say they are in use).
                statuses=not (VERIFY in parts and feed.statuses_used is False),
            )
        except BaseException:
            self.stale |= parts
            raise
        if observer.statuses_seen is not None:
            feed.statuses_used = bool(feed.statuses_used) or observer.statuses_seen
        self.snapshot = snapshot
        interval = self.own_interval()
        if interval >= self.feed.policy.safety_seconds and math.isfinite(interval):
            # Spread the safety polls so PRs first seen together do not all ask together.
            interval *= 0.75 + 0.5 * jitter(self.number + self.observer.polls, 1.0)
        self.due = now + interval
        self.planned_with_webhooks = feed.webhooks
        return snapshot

    def own_interval(self) -> float:
        policy, observer, snapshot = self.feed.policy, self.observer, self.snapshot
        webhooks = self.feed.webhooks
        if (
            snapshot is not None
            and snapshot.state == "open"
            and snapshot.mergeable is None
            and not (webhooks and observer.mergeable_unread)
        ):
            # Forges compute mergeability in the background and send no webhook when
            # they are done: an unknown answer is looked at again soon. (Unknown because
            # a push delivery made it so, it is read when a decision needs it: with the
            # look that verifies passing checks.)
            return policy.base_seconds
        if observer.in_grace:
            return max(observer.grace_left(), 0.001)
        again = observer.recheck_in()
        if again is not None and not webhooks:
            return max(again, 0.001)
        if webhooks:
            # The feed's safety look covers the PR and GitHub Actions / GitLab pipelines;
            # commit statuses and other check apps keep a rare poll of their own.
            return math.inf if observer.listed else policy.webhook_safety_seconds
        if observer.unlisted_pending:
            return policy.unlisted_pending_seconds
        if observer.pending:
            return policy.max_idle_seconds
        return policy.safety_seconds


# ---- the repository ---------------------------------------------------------------------


class RepoFeed:
    """Polls one repository's feed while PRs are watched, and wakes the watches it concerns.

    The asyncio loop (`ensure_running`) is the product's; `poll(now)` and the `PrWatch`
    methods take the time as an argument so the benchmark can drive them itself.
    """

    def __init__(
        self,
        forge: Forge,
        policy: PollPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.forge = forge
        self.policy = policy
        self.clock = clock
        self.webhooks = False
        self.view: FeedView | None = None
        self.watches: OrderedDict[int, PrWatch] = OrderedDict()
        self.bases: dict[str, str | None] = {}
        self.next_poll = 0.0
        self.polled_at = float("-inf")  # the last look at the feed
        self.next_base_check = 0.0
        self.blocked_until = 0.0
        # Whether the repository uses commit statuses (GitHub): None until a fetch of
        # checks says, True once one is seen or a `status` delivery arrives.
        self.statuses_used: bool | None = None
        self.quiet_polls = 0
        self.polls = 0
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()

    # -- watches --

    def watch(self, number: int) -> PrWatch:
        found = self.watches.get(number)
        if found is None:
            found = self.watches[number] = PrWatch(self, number)
            while len(self.watches) > MAX_WATCHES:
                oldest = next(iter(self.watches))
                if self.watches[oldest].waiting:
                    break
                del self.watches[oldest]
        self.watches.move_to_end(number)
        return found

    @property
    def busy(self) -> bool:
        """A watch is waiting on it, or its loop still runs."""
        running = self._task is not None and not self._task.done()
        return running or any(w.waiting for w in self.watches.values())

    def forget(self, number: int) -> None:
        """The PR is merged or closed: nobody will watch it again."""
        watch = self.watches.get(number)
        if watch is not None and not watch.waiting:
            del self.watches[number]

    def backoff(self, now: float, seconds: float) -> None:
        """A 403/429 rate limit: nobody asks this forge before it says so."""
        self.blocked_until = max(self.blocked_until, now + min(seconds, MAX_BACKOFF_SECONDS))
        self.next_poll = max(self.next_poll, self.blocked_until)

    # -- the feed --

    def interval(self, now: float) -> float:
        policy = self.policy
        if self.webhooks:
            return policy.feed_webhook_seconds
        busy = any(
            w.observer.pending
            or (
                w.snapshot is not None
                and w.snapshot.state == "open"
                and w.snapshot.mergeable is None
            )
            for w in self.watches.values()
        )
        if busy:
            return policy.base_seconds
        quiet = policy.base_seconds * 2 ** min(self.quiet_polls, 10)
        return max(policy.base_seconds, min(quiet, policy.feed_max_idle_seconds))

    async def poll(self, now: float) -> dict[int, frozenset[str]]:
        """One look at the feed: mark (and return) the watches whose PR or CI moved."""
        try:
            activity = await self.forge.repo_activity()
            moved = await self._check_bases(now)
        except RateLimited as exc:
            self.backoff(now, exc.retry_after)
            raise
        self.polls += 1
        self.view, changes = diff(self.view, activity)
        self.ready.set()
        heads = {
            number: (watch.observer.head_sha, self._feed_head(number))
            for number, watch in self.watches.items()
        }
        wake = whom_to_wake(changes, heads)
        if self.webhooks:
            wake = self._unexplained(wake, since=self.polled_at)
        self.polled_at = now
        for number, parts in wake.items():
            self.watches[number].mark(parts)
        for number, watch in self.watches.items():
            if watch.base_branch in moved:
                # Mergeability may have changed: each PR looks within max_idle, spread out.
                watch.due = min(watch.due, now + jitter(number, self.policy.max_idle_seconds))
                watch.woken.set()
        self.quiet_polls = 0 if wake or moved else self.quiet_polls + 1
        self.next_poll = max(now + self.interval(now), self.blocked_until)
        return wake

    def _unexplained(
        self, wake: dict[int, frozenset[str]], *, since: float
    ) -> dict[int, frozenset[str]]:
        """With webhooks: drop what deliveries since the previous look already told the
        PR's watch (`explained`). A PR that moved without a delivery is looked at fully."""
        assert self.view is not None
        left: dict[int, frozenset[str]] = {}
        for number, parts in wake.items():
            watch = self.watches[number]
            seen = self.view.pulls.get(number)
            if watch.delivered_at >= since:
                observer = watch.observer
                remaining = explained(
                    parts,
                    seen=seen,
                    runs=self.view.runs.values(),
                    known=watch.snapshot,
                    updated_at=observer.updated_at,
                    pushed=observer.explained,
                )
                if PR in parts and PR not in remaining and seen is not None:
                    observer.adopt_updated_at(seen.updated_at)
                parts = remaining
            if parts:
                left[number] = parts
        return left

    def _feed_head(self, number: int) -> str | None:
        seen = self.view.pulls.get(number) if self.view else None
        return seen.head_sha if seen else None

    async def _check_bases(self, now: float) -> set[str]:
        """Base branches that moved since the last check (at most every max_idle / 5)."""
        if now < self.next_base_check:
            return set()
        self.next_base_check = now + max(self.policy.max_idle_seconds / 5, self.policy.base_seconds)
        moved: set[str] = set()
        for base in sorted({w.base_branch for w in self.watches.values() if w.base_branch}):
            sha = await self.forge.branch_sha(base)
            if base in self.bases and self.bases[base] != sha:
                moved.add(base)
            self.bases[base] = sha
        return moved

    # -- the product's loop --

    def ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def kick(self) -> None:
        """Look at the feed now (a webhook arrived, or a watch wants a baseline)."""
        self.next_poll = max(self.clock(), self.blocked_until)
        self._kick.set()

    async def _run(self) -> None:
        while any(w.waiting for w in self.watches.values()):
            now = self.clock()
            if now < self.next_poll:
                self._kick.clear()
                try:
                    await asyncio.wait_for(self._kick.wait(), timeout=min(self.next_poll - now, 5))
                except TimeoutError:
                    pass
                continue
            try:
                await self.poll(now)
            except RateLimited as exc:
                log.warning("feed of %s rate limited: %s", self.forge.ref.path, exc)
            except (ForgeError, httpx.HTTPError) as exc:
                log.warning("feed of %s failed: %s", self.forge.ref.path, exc)
                self.next_poll = now + self.policy.base_seconds
                self.ready.set()  # the watches poll on their own meanwhile
