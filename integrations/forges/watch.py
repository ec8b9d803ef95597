"""Observing one remote PR cheaply: which requests a poll makes, and when the next poll is.

Both the watch activity and the benchmark (bench/forge.py) use this module, so the numbers
the benchmark reports are those of the product code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from integrations.forges.base import Check, Forge, Review
from schemas.workflow import PrSnapshotData

# Completed checks rarely change (a re-run does): look again every this many polls.
CHECKS_REFRESH_EVERY = 5


@dataclass(frozen=True)
class PollPolicy:
    """Seconds between polls: fast while CI runs, slower while nothing moves."""

    base_seconds: float = 30.0
    max_idle_seconds: float = 600.0
    # With webhooks arriving, polling is only a safety net for a lost delivery.
    webhook_safety_seconds: float = 21600.0

    def next_interval(self, *, pending: bool, unchanged_polls: int, webhooks: bool) -> float:
        if webhooks:
            return self.webhook_safety_seconds
        if pending:
            return self.base_seconds
        return min(self.base_seconds * 2 ** min(unchanged_polls, 10), self.max_idle_seconds)


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


class PrObserver:
    """Polls one PR, skipping requests whose answer cannot have changed."""

    def __init__(self, forge: Forge, number: int) -> None:
        self.forge = forge
        self.number = number
        self._sha: str | None = None
        self._checks = "none"
        self._updated: str | None = None
        self._review: tuple[str, str | None] = ("none", None)
        self._polls = 0
        # updated_at has one-second resolution: look again once after each change.
        self._recheck_reviews = 0

    @property
    def pending(self) -> bool:
        return self._checks == "pending"

    async def observe(self) -> PrSnapshotData:
        pr = await self.forge.get_pr(self.number)
        self._polls += 1
        if pr.state != "open":
            return PrSnapshotData(pr.state, None, self._checks, self._review[0], pr.head_sha)
        # "none" is looked at again too: CI may register its checks a moment after a push.
        refresh = self._polls % CHECKS_REFRESH_EVERY == 0
        if pr.head_sha != self._sha or self._checks in ("pending", "none") or refresh:
            self._checks = checks_status(await self.forge.checks(pr.head_sha))
            self._sha = pr.head_sha
        # Submitting a review touches the PR's updated_at, so unchanged means no new review.
        if pr.updated_at != self._updated or not pr.updated_at:
            self._recheck_reviews = 2
        if self._recheck_reviews > 0 or refresh:
            self._review = review_status(await self.forge.reviews(self.number))
            self._recheck_reviews -= 1
            self._updated = pr.updated_at
        return PrSnapshotData(
            "open", pr.mergeable, self._checks, self._review[0], pr.head_sha, self._review[1]
        )
