"""Observing one remote PR cheaply: which requests a poll makes, and when the next poll is.

Both the watch activity and the benchmark (bench/forge.py) use this module, so the numbers
the benchmark reports are those of the product code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from integrations.forges.base import Check, Forge, PullRequestInfo, Review
from schemas.workflow import PrSnapshotData

# Completed checks rarely change (a re-run does): look again every this many polls.
CHECKS_REFRESH_EVERY = 5
# After the PR changed, reviews are read once more this much later (past the second of
# the change, which is all `updated_at` tells). Only when polling: with webhooks a review
# sends its own delivery.
REVIEWS_AGAIN_SECONDS = 1.5
# Head commits whose check runs are remembered (the current one and a few before it).
KEPT_HEADS = 4


@dataclass(frozen=True)
class PollPolicy:
    """Seconds between looks: fast while CI runs, slower while nothing moves.

    `next_interval` is one PR's own poll as it was before the repository feed; the feed
    (integrations/forges/feed.py) uses the other fields.
    """

    base_seconds: float = 30.0
    max_idle_seconds: float = 600.0
    # With webhooks arriving, a PR's own poll is only a safety net for a lost delivery,
    # and only for checks the feed does not list (its look covers the rest).
    webhook_safety_seconds: float = 21600.0
    # The feed while nothing moves: it costs two requests whatever the number of PRs.
    feed_max_idle_seconds: float = 120.0
    # With webhooks the feed is the safety net, for every PR of the repository at once.
    feed_webhook_seconds: float = 600.0
    # One PR's own poll, now that the feed tells it what changed: a rare safety net...
    safety_seconds: float = 7200.0
    # ...but faster while checks that the feed does not list (commit statuses, other
    # check apps) are pending.
    unlisted_pending_seconds: float = 120.0
    # A new head commit without checks counts as pending this long: CI registers its
    # checks a moment after a push, and "no CI" would let the PR merge before it starts.
    ci_grace_seconds: float = 60.0

    def next_interval(self, *, pending: bool, unchanged_polls: int, webhooks: bool) -> float:
        if webhooks:
            return self.webhook_safety_seconds
        if pending:
            return self.base_seconds
        return min(self.base_seconds * 2 ** min(unchanged_polls, 10), self.max_idle_seconds)

    @classmethod
    def scaled(cls, *, base: float, max_idle: float, webhook_safety: float) -> PollPolicy:
        """The product's policy from its three settings (tests shrink `base` to 0.2 s)."""
        return cls(
            base_seconds=base,
            max_idle_seconds=max_idle,
            webhook_safety_seconds=webhook_safety,
            feed_max_idle_seconds=min(4 * base, max_idle),
            feed_webhook_seconds=min(20 * base, max_idle),
            safety_seconds=max(12 * max_idle, base),
            unlisted_pending_seconds=min(4 * base, max_idle),
            ci_grace_seconds=2 * base,
        )


def checks_status(checks: Sequence[Check]) -> str:
    """Reference rules: none without checks; pending until all completed; then pass/fail."""
    if not checks:
        return "none"
    if any(c.state == "pending" for c in checks):
        return "pending"
    return "passing" if all(c.state == "success" for c in checks) else "failing"


def review_status(reviews: Sequence[Review]) -> tuple[str, str | None]:
    """Each reviewer's latest substantive review counts; changes requested beats approval.

    Returns the status and the id of the review it comes from, so a requested change is
    reacted to once per review, not once per observation.
    """
    latest: dict[str, Review] = {}
    commented = False
    for review in reviews:
        if review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[review.author] = review
        elif review.state == "COMMENTED":
            commented = True
    requested = [r for r in latest.values() if r.state == "CHANGES_REQUESTED"]
    if requested:
        return "changes_requested", requested[-1].id
    approved = [r for r in latest.values() if r.state == "APPROVED"]
    if approved:
        return "approved", approved[-1].id
    return ("pending" if commented else "none"), None


# Check apps whose runs the repository feed lists (GitHub Actions, GitLab pipelines).
FEED_APPS = frozenset({"github-actions", "gitlab-ci"})


def _newer(a: str | None, b: str | None) -> bool:
    """Whether check run id `a` is newer than `b` (GitHub's ids grow; unknown: not newer)."""
    return a is not None and b is not None and a.isdigit() and b.isdigit() and int(a) > int(b)


class PrObserver:
    """Looks at one PR, skipping requests whose answer cannot have changed.

    `observe()` with no arguments is a full poll: the PR, plus checks and reviews when they
    may have changed. Callers that know more (the repository feed, a webhook) ask for less:
    `pr=False` reuses the PR as last fetched, `checks=True`/`reviews=True` force a refetch.

    Webhook deliveries that say what happened are applied without a request:
    `head_moved` (a push) and `check_reported` (a check run created or completed).
    """

    def __init__(
        self,
        forge: Forge,
        number: int,
        *,
        ci_grace: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.forge = forge
        self.number = number
        self.ci_grace = ci_grace
        self.clock = clock
        self.pr: PullRequestInfo | None = None
        self._sha: str | None = None
        self._checks = "none"
        self._listed = False  # every check of the head commit shows in the feed
        # The checks known per head commit, newest head last: (app, name) -> the latest
        # run, as fetched or as deliveries told (GitHub lists the latest run per name).
        self._runs: dict[str, dict[tuple[str, str], Check]] = {}
        # Set by the PR's watch: webhooks arrive, so a change sends its own delivery.
        self.webhooks = False
        # A push delivery moved the PR (its head, hence `updated_at`) since it was fetched:
        # that move of `updated_at` is no sign of a new review.
        self.explained = False
        # Mergeability is unknown because a push delivery made it so (not because the
        # forge said it is still computing it): read when a decision needs it.
        self.mergeable_unread = False
        # Whether the last fetch of checks saw commit statuses (None: none fetched).
        self.statuses_seen: bool | None = None
        self._head_seen_at = 0.0
        self._updated: str | None = None
        self._review: tuple[str, str | None] = ("none", None)
        self._polls = 0
        # updated_at has one-second resolution: look again once, past that second, after
        # each change (None: no second look owed).
        self._reviews_again_at: float | None = None

    @property
    def pending(self) -> bool:
        return self._checks == "pending"

    @property
    def head_sha(self) -> str | None:
        return self.pr.head_sha if self.pr is not None else None

    @property
    def in_grace(self) -> bool:
        """No checks yet on a head commit younger than the grace period."""
        return self.pending and not self._listed and self.grace_left() > 0

    @property
    def unlisted_pending(self) -> bool:
        """Checks are pending that the repository feed would not report."""
        return self.pending and not self._listed

    @property
    def listed(self) -> bool:
        """The head commit has checks, and the repository feed lists every one of them."""
        return self._listed

    @property
    def updated_at(self) -> str | None:
        """The PR's `updated_at` as last accounted for (reviews read, or a delivery's move)."""
        return self._updated

    def knows_head(self, sha: str) -> bool:
        """`sha` is the head commit, or was one before a push."""
        return sha in self._runs or sha == self._sha

    def snapshot(self) -> PrSnapshotData:
        """What is known now, without asking the forge."""
        info = self.pr
        if info is None:
            raise RuntimeError("The PR was never fetched")
        if info.state != "open":
            return PrSnapshotData(info.state, None, self._checks, self._review[0], info.head_sha)
        return PrSnapshotData(
            "open", info.mergeable, self._checks, self._review[0], info.head_sha, self._review[1]
        )

    def head_moved(self, sha: str) -> None:
        """A push delivery named the PR's new head commit: take it without a request.

        No checks are known for it yet, so they are pending for the CI grace period (as
        after a fetch that finds none); mergeability is unknown until read.
        """
        info = self.pr
        if info is None or info.state != "open" or sha == info.head_sha:
            return
        self.pr = replace(info, head_sha=sha, mergeable=None)
        self.mergeable_unread = True
        self.explained = True
        self._head_seen_at = self.clock()
        self._sha = sha
        self._checks = "pending"
        self._remember(sha, {})
        self._settle(sha)

    def check_reported(self, sha: str, check: Check) -> bool:
        """A check run delivery (created, completed) about the head commit `sha`.

        A started run makes the checks pending and a failed one, once none is pending,
        failing: no request. True when the checks now pass by what is known: a passing
        verdict may lead to a merge, so the caller verifies it with a look first.
        """
        if sha != self._sha or sha != self.head_sha:
            return False  # the caller tells an older head from an unknown one
        runs = self._runs.setdefault(sha, {})
        key = (check.app, check.name)
        if key in runs and _newer(runs[key].log_ref, check.log_ref):
            return False  # a late delivery about a run that has since been re-run
        runs[key] = check
        return self._settle(sha) == "passing" and self._checks != "passing"

    def suite_settled(self, sha: str, app: str) -> bool:
        """Every run of `app` known on the head commit `sha` has completed: a suite's
        `completed` delivery then says nothing the runs' own deliveries did not."""
        if sha != self._sha or sha != self.head_sha:
            return False
        runs = [c for c in self._runs.get(sha, {}).values() if c.app == app]
        return bool(runs) and all(c.state != "pending" for c in runs)

    def _remember(self, sha: str, runs: dict[tuple[str, str], Check]) -> None:
        self._runs.pop(sha, None)
        self._runs[sha] = runs
        while len(self._runs) > KEPT_HEADS:
            del self._runs[next(iter(self._runs))]

    def _settle(self, sha: str) -> str:
        """The checks of the head commit from the runs known for it (a passing verdict
        is left to the look that verifies it)."""
        known = list(self._runs.get(sha, {}).values())
        status = checks_status(known)
        self._listed = bool(known) and all(c.app in FEED_APPS for c in known)
        if status == "none":
            if self.grace_left() <= 0:
                self._checks = "none"
        elif status != "passing":
            self._checks = status
        elif self._checks == "none":
            self._checks = "pending"  # until the look that verifies the passing verdict
        return status

    @property
    def polls(self) -> int:
        return self._polls

    def recheck_in(self) -> float | None:
        """Seconds until the second look at reviews that a change of the PR calls for:
        `updated_at` has one-second resolution, so a review submitted in the second of
        the last change would not move it."""
        if self._reviews_again_at is None:
            return None
        return max(self._reviews_again_at - self.clock(), 0.0)

    def grace_left(self) -> float:
        return self._head_seen_at + self.ci_grace - self.clock()

    async def observe(
        self, *, pr: bool = True, checks: bool = False, reviews: bool = False, statuses: bool = True
    ) -> PrSnapshotData:
        """Refetch what may have changed. `statuses=False`: the repository is known not to
        use commit statuses, so a fetch of checks skips them (GitHub: one request less)."""
        explained = False
        if pr or self.pr is None:
            self.pr = await self.forge.get_pr(self.number)
            self.mergeable_unread = False
            explained, self.explained = self.explained, False
        info = self.pr
        self._polls += 1
        self.statuses_seen = None
        if info.state != "open":
            return self.snapshot()
        if info.head_sha != self._sha:
            self._head_seen_at = self.clock()
        # "none" is looked at again too: CI may register its checks a moment after a push.
        # With webhooks a re-run sends deliveries: no periodic refresh of completed checks.
        refresh = pr and not self.webhooks and self._polls % CHECKS_REFRESH_EVERY == 0
        if (
            checks
            or info.head_sha != self._sha
            or self._checks == "none"
            or (pr and self.pending)
            or refresh
        ):
            found = await self.forge.checks(info.head_sha, statuses=statuses)
            self._checks = checks_status(found)
            self._listed = bool(found) and all(c.app in FEED_APPS for c in found)
            if statuses:
                self.statuses_seen = any(c.app == "status" for c in found)
            if not found and self.grace_left() > 0:
                self._checks = "pending"  # not "no CI": its checks may not be registered yet
            self._sha = info.head_sha
            self._remember(info.head_sha, {(c.app, c.name): c for c in found})
        # Submitting a review touches the PR's updated_at, so unchanged means no new review.
        changed = info.updated_at != self._updated or not info.updated_at
        if changed and explained and not reviews and info.updated_at:
            # A push a delivery told about moved it; a review would have sent its own.
            self._updated = info.updated_at
            changed = False
        again = (
            not self.webhooks
            and self._reviews_again_at is not None
            and self.clock() >= self._reviews_again_at
        )
        if reviews or changed or (pr and again) or refresh:
            self._review = review_status(await self.forge.reviews(self.number))
            self._updated = info.updated_at
            if changed and not self.webhooks:
                self._reviews_again_at = self.clock() + REVIEWS_AGAIN_SECONDS
            elif again or self.webhooks:
                self._reviews_again_at = None
        return self.snapshot()

    def adopt_updated_at(self, updated_at: str) -> None:
        """The feed shows `updated_at` moved by the push a delivery told about: no reads."""
        if self.explained:
            self._updated = updated_at
            self.explained = False
