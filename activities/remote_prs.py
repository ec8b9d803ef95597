"""Pull requests on GitHub and GitLab: open or adopt, watch cheaply, merge, feedback, finish."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.forge_access import build_forge, forge_token, webhooks_active
from core.settings import Settings
from integrations.forges.base import EtagCache, ForgeError, MergeMethod, RateLimited
from integrations.forges.feed import RepoFeed
from integrations.forges.github import GitHubForge
from integrations.forges.gitlab import GitLabForge
from integrations.forges.watch import PollPolicy
from schemas.workflow import (
    MergePrResult,
    OpenPrResult,
    PrEvent,
    PrFeedbackResult,
    PrSnapshotData,
)
from store.models import Repo, Task

HEARTBEAT_EVERY = 10.0
# How long a first watch waits for the feed's first look (its baseline) before polling.
FEED_READY_SECONDS = 10.0
# A feed unused this long is dropped (kept meanwhile: its ETags make the next look free).
FEED_IDLE_SECONDS = 3600.0
MAX_FAILING_CHECKS = 3
LOG_TAIL_CHARS = 3000
MAX_INLINE_COMMENTS = 20


@dataclass
class Target:
    task: Task
    repo: Repo


def _rate_limited(exc: RateLimited) -> ApplicationError:
    # Retryable, but not before the forge says the limit resets.
    return ApplicationError(
        str(exc), type="RateLimited", next_retry_delay=timedelta(seconds=exc.retry_after)
    )


def _forge_failure(exc: ForgeError) -> ApplicationError:
    # 401/403/404/422 do not heal by retrying: a person must fix the token or the repo.
    permanent = exc.status in (401, 403, 404, 422)
    return ApplicationError(str(exc), type="ForgeError", non_retryable=permanent)


async def _sleep_heartbeating(seconds: float) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        activity.heartbeat()
        await asyncio.sleep(min(left, HEARTBEAT_EVERY))


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Until the event is set or the time is up, heartbeating meanwhile."""
    end = time.monotonic() + seconds
    while not event.is_set() and (left := end - time.monotonic()) > 0:
        activity.heartbeat()
        try:
            await asyncio.wait_for(event.wait(), timeout=min(left, HEARTBEAT_EVERY))
        except TimeoutError:
            pass


class RemotePullRequests:
    def __init__(self, *, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.cache = EtagCache()
        # One change feed per repository and token, with every PR's watch: see feed.py.
        self.feeds: dict[tuple[str, str, str, str], RepoFeed] = {}
        self._feed_used: dict[tuple[str, str, str, str], float] = {}
        self._closing: set[asyncio.Task[None]] = set()

    async def _token(self, target: Target) -> str | None:
        async with self.sessions() as session:
            return await forge_token(
                session,
                settings=self.settings,
                platform=target.repo.git_platform,
                workspace_id=target.task.workspace_id,
                repo_url=target.task.repo_url,
                user_id=target.task.created_by,
            )

    def _policy(self) -> PollPolicy:
        return PollPolicy.scaled(
            base=self.settings.pr_watch_interval_ms / 1000,
            max_idle=self.settings.forge_poll_max_idle_seconds,
            webhook_safety=self.settings.forge_poll_webhook_seconds,
        )

    def feed(self, target: Target, token: str | None) -> RepoFeed:
        repo = target.repo
        key = (repo.git_platform, repo.repo_url, repo.forge_api_url or "", str(hash(token)))
        now = time.monotonic()
        self._prune_feeds(now)
        found = self.feeds.get(key)
        if found is None:
            forge = build_forge(repo=repo, token=token, cache=self.cache)
            found = self.feeds[key] = RepoFeed(forge, self._policy())
        self._feed_used[key] = now
        return found

    def _prune_feeds(self, now: float) -> None:
        """A feed nobody has watched through for FEED_IDLE_SECONDS goes (a repository with
        no open PR left, a rotated token), with its HTTP client."""
        for key, used in list(self._feed_used.items()):
            feed = self.feeds[key]
            if now - used < FEED_IDLE_SECONDS or feed.busy:
                continue
            del self.feeds[key], self._feed_used[key]
            closing = asyncio.get_running_loop().create_task(feed.forge.aclose())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    @asynccontextmanager
    async def forge(
        self, target: Target, *, token: str | None = None
    ) -> AsyncIterator[GitHubForge | GitLabForge]:
        """The repo's forge with Optio's token, or with `token` (a reviewer's) when given."""
        token = token or await self._token(target)
        forge = build_forge(repo=target.repo, token=token, cache=self.cache)
        try:
            yield forge
        except RateLimited as exc:
            raise _rate_limited(exc) from exc
        except ForgeError as exc:
            raise _forge_failure(exc) from exc
        finally:
            await forge.aclose()

    async def open(self, target: Target, *, summary: str) -> OpenPrResult:
        task, repo = target.task, target.repo
        branch = f"optio/task-{task.id}"
        async with self.forge(target) as forge:
            if await forge.branch_sha(branch) is None:
                return OpenPrResult(opened=False, reason=f"The agent pushed no branch {branch}")
            existing = await forge.find_open_pr(head=branch)
            if existing is None:
                if await forge.changed_files(base=task.repo_branch, head=branch) == 0:
                    return OpenPrResult(
                        opened=False,
                        reason=f"The agent made no changes on {branch}; nothing to review",
                    )
                existing = await forge.open_pr(
                    head=branch,
                    base=task.repo_branch,
                    title=task.title,
                    body=_pr_body(task, summary),
                    draft=repo.cautious_mode,
                )
        return OpenPrResult(opened=True, pr_url=existing.url, pr_number=existing.number)

    async def watch(
        self,
        target: Target,
        *,
        known: PrSnapshotData | None,
        max_wait: float,
        events: list[PrEvent] | None = None,
    ) -> PrSnapshotData:
        """Return the PR's state once it differs from `known` (at once when `known` is None).

        The PR's watch (kept by the repository's feed across rounds) refetches only what
        the feed or the webhook deliveries say changed, plus a rare poll of its own.
        """
        number = target.task.pr_number
        if number is None:
            return PrSnapshotData("closed", None, "none", "none", None)
        feed = self.feed(target, await self._token(target))
        feed.webhooks = webhooks_active(target.repo)
        watch = feed.watch(number)
        deadline = time.monotonic() + max_wait
        watch.begin_round(time.monotonic(), known=known, events=events or [])
        watch.waiting += 1
        feed.ensure_running()
        try:
            if feed.view is None:
                # The feed's first look is the baseline later changes are told against:
                # take it before this PR's first look, so nothing falls in between.
                feed.kick()
                await _wait(feed.ready, min(FEED_READY_SECONDS, max_wait))
            while True:
                activity.heartbeat()
                now = time.monotonic()
                if watch.needs_look(now):
                    if now < feed.blocked_until:
                        await _sleep_heartbeating(feed.blocked_until - now)
                        continue
                    try:
                        await watch.look(now)
                    except RateLimited as exc:
                        activity.logger.warning("rate limited on %s: %s", target.repo.repo_url, exc)
                        feed.backoff(now, exc.retry_after)
                        continue
                snapshot = watch.snapshot
                assert snapshot is not None
                if known is None or snapshot != known or time.monotonic() >= deadline:
                    return snapshot
                watch.woken.clear()  # needs_look() just said no: wait for the next wake
                await _wait(watch.woken, min(watch.due, deadline) - time.monotonic())
        except ForgeError as exc:
            raise _forge_failure(exc) from exc
        finally:
            watch.waiting -= 1
            watch.left_at = time.monotonic()
            if watch.snapshot is not None and watch.snapshot.state != "open":
                feed.forget(number)  # merged or closed: nobody watches it again

    async def merge(self, target: Target, *, method: str) -> MergePrResult:
        number = target.task.pr_number
        if number is None:
            return MergePrResult(merged=False, message="The task has no pull request")
        chosen: MergeMethod = method if method in ("merge", "rebase") else "squash"  # type: ignore[assignment]
        async with self.forge(target) as forge:
            outcome = await forge.merge(number, method=chosen, sha=None)
        return MergePrResult(
            merged=outcome.merged, conflict=outcome.conflict, message=outcome.message
        )

    async def feedback(
        self, target: Target, *, reason: str, review_id: str | None
    ) -> PrFeedbackResult:
        number = target.task.pr_number
        if number is None or reason == "conflicts":
            return PrFeedbackResult(text=None)
        async with self.forge(target) as forge:
            if reason == "ci_failure":
                pr = await forge.get_pr(number)
                failing = [c for c in await forge.checks(pr.head_sha) if c.state == "failure"]
                parts = []
                for check in failing[:MAX_FAILING_CHECKS]:
                    log = await forge.check_log_tail(check, max_chars=LOG_TAIL_CHARS)
                    parts.append(f"Failing check: {check.name}\n```\n{log}\n```")
                if len(failing) > MAX_FAILING_CHECKS:
                    more = ", ".join(c.name for c in failing[MAX_FAILING_CHECKS:])
                    parts.append(f"Also failing: {more}")
                return PrFeedbackResult(text="\n\n".join(parts) or None)
            reviews = await forge.reviews(number)
            chosen = next((r for r in reviews if r.id == review_id), None)
            if chosen is None:
                chosen = next(
                    (r for r in reversed(reviews) if r.state == "CHANGES_REQUESTED"), None
                )
            comments = await forge.inline_comments(number)
            if chosen is not None and any(c.review_id for c in comments):
                comments = [c for c in comments if c.review_id in (chosen.id, None)]
        lines = [chosen.body.strip()] if chosen is not None and chosen.body.strip() else []
        if comments:
            lines.append("Inline comments:")
            lines += [
                f"{c.path}:{c.line if c.line is not None else '?'} - {c.body.strip()}"
                for c in comments[-MAX_INLINE_COMMENTS:]
            ]
        return PrFeedbackResult(text="\n".join(lines) or None)

    async def finish(self, target: Target) -> None:
        """On completion: close the linked issue with a comment (once, thanks to the marker)."""
        issue = _linked_issue(target.task)
        if issue is None:
            return
        async with self.forge(target) as forge:
            await forge.close_issue(
                issue,
                comment=f"Completed by Optio in {target.task.pr_url}.",
                key=f"task-{target.task.id}-done",
            )


def _linked_issue(task: Task) -> int | None:
    meta = task.metadata_ or {}
    value = meta.get("issueNumber") or meta.get("issue_number")
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def _pr_body(task: Task, summary: str) -> str:
    issue = _linked_issue(task)
    closes = f"\n\nCloses #{issue}" if issue is not None else ""
    return f"{summary or task.title}{closes}\n\n---\nOpened by Optio for task {task.id}."
