"""Pull request activities: open, watch, merge, feedback, finish.

The `local` forge is implemented here (CI = the repo's testCommand); GitHub and GitLab
repositories go to activities/remote_prs.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TypeVar, cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.forge_access import is_remote
from activities.heartbeats import heartbeat_every
from activities.remote_prs import RemotePullRequests, Target
from activities.tasks import checks_dir
from core.settings import Settings
from integrations.forges import local as forge
from integrations.forges.base import tail
from integrations.git import GitError, branch_head, head_sha, resolve_local_repo
from schemas.workflow import (
    FinishPrInput,
    MergePrInput,
    MergePrResult,
    OpenPrInput,
    OpenPrResult,
    PrFeedbackInput,
    PrFeedbackResult,
    PrSnapshotData,
    WatchPrInput,
)
from store.db import transaction
from store.models import PullRequest, Repo, Task
from store.pull_requests import find_open_pr, latest_pr_for_task, lock_numbers, next_number
from store.tasks import find_repo
from store.types import utcnow

RetT = TypeVar("RetT")
CHECKS_TIMEOUT_SECONDS = 1800.0
BOT_NAME, BOT_EMAIL = "Optio", "optio@noreply.local"


def local_pr_url(repo_url: str, number: int) -> str:
    base = repo_url if repo_url.startswith("file://") else f"file://{repo_url}"
    return f"{base.rstrip('/')}/pull/{number}"


def _forge_repo(repo_url: str) -> Path:
    repo = resolve_local_repo(repo_url)
    if repo is None:
        raise ApplicationError(
            f"No forge for {repo_url}: only local repositories are supported so far",
            type="ForgeUnsupported",
            non_retryable=True,
        )
    return repo


async def _heartbeat_while(awaitable: asyncio.Future[object] | asyncio.Task[object]) -> object:
    # A local activity has no heartbeat (the SDK logs "UnknownActivity" for each one): the
    # workflow task it runs in is what notices a dead worker.
    beats = not activity.info().is_local
    while True:
        done, _ = await asyncio.wait({awaitable}, timeout=heartbeat_every())
        if done:
            return awaitable.result()
        if beats:
            activity.heartbeat()


async def _uncancelled(work: Coroutine[object, object, RetT]) -> RetT:
    """Run database work to its end even when the activity is cancelled meanwhile.

    A cancel landing inside a transaction leaves its connection needing a rollback
    (PendingRollbackError, with a page of traceback) instead of the clean CancelledError
    Temporal expects; the watch is cancelled by design (a webhook, a command), so it
    lets the step finish and takes the cancel right after.
    """
    job = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await job
        raise


class PullRequestActivities:
    def __init__(self, *, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.remote = RemotePullRequests(settings=settings, sessions=sessions)

    async def _task(self, task_id: str) -> Task:
        async with self.sessions() as session:
            task = await session.get(Task, task_id)
        if task is None:
            raise ApplicationError("Task was deleted", type="TaskMissing", non_retryable=True)
        return task

    async def _remote(self, task: Task) -> Target | None:
        """The GitHub/GitLab target of a task, or None for the local forge."""
        async with self.sessions() as session:
            repo: Repo | None = await find_repo(
                session, workspace_id=task.workspace_id, repo_url=task.repo_url
            )
        return Target(task=task, repo=repo) if repo is not None and is_remote(repo) else None

    @activity.defn
    async def open_pull_request(self, input: OpenPrInput) -> OpenPrResult:
        """Open the task's PR, or adopt the open one on its branch (never a second PR)."""
        task = await self._task(input.task_id)
        if (target := await self._remote(task)) is not None:
            return await self.remote.open(target, summary=input.summary)
        repo = _forge_repo(task.repo_url)
        branch = f"optio/task-{task.id}"
        sha = await asyncio.to_thread(branch_head, repo=repo, branch=branch)
        if sha is None:
            return OpenPrResult(opened=False, reason=f"The agent pushed no branch {branch}")
        stats = await asyncio.to_thread(
            forge.diff_stats, repo=repo, base=task.repo_branch, head=branch
        )
        if stats.changed_files == 0:
            return OpenPrResult(
                opened=False, reason=f"The agent made no changes on {branch}; nothing to review"
            )
        for _ in range(5):
            try:
                async with transaction(self.sessions) as session:
                    pr = await find_open_pr(session, repo_url=task.repo_url, head_branch=branch)
                    if pr is None:
                        await lock_numbers(session, repo_url=task.repo_url)
                        pr = PullRequest(
                            workspace_id=task.workspace_id,
                            repo_url=task.repo_url,
                            number=next_number(repo_url=task.repo_url),
                            task_id=task.id,
                            head_branch=branch,
                            base_branch=task.repo_branch,
                            title=task.title,
                            body=input.summary or "",
                        )
                        session.add(pr)
                        await session.flush()
                        await session.refresh(pr, attribute_names=["number"])
                    pr.head_sha = sha
                    pr.additions, pr.deletions = stats.additions, stats.deletions
                    pr.changed_files = stats.changed_files
                    number = pr.number
                return OpenPrResult(
                    opened=True,
                    pr_url=local_pr_url(task.repo_url, number),
                    pr_number=number,
                    snapshot=await self._snapshot(task, run_checks=False),
                )
            except IntegrityError:
                continue  # another PR took the number at the same moment: take the next
        raise ApplicationError("Could not allocate a PR number")

    @activity.defn
    async def watch_pull_request(self, input: WatchPrInput) -> PrSnapshotData:
        """Return the PR's state as soon as it differs from `known` (or after max wait)."""
        if (target := await self._remote(await self._task(input.task_id))) is not None:
            return await self.remote.watch(
                target, known=input.known, max_wait=input.max_wait_seconds, events=input.events
            )
        deadline = time.monotonic() + input.max_wait_seconds
        interval = self.settings.pr_watch_interval_ms / 1000
        while True:
            activity.heartbeat()
            task = await _uncancelled(self._task(input.task_id))
            snapshot = await self._snapshot(task)
            assert snapshot is not None  # checks are run, never skipped
            if snapshot != input.known or time.monotonic() >= deadline:
                return snapshot
            # The interval may be longer than the heartbeat timeout: beat while waiting.
            wake = min(time.monotonic() + interval, deadline)
            while (left := wake - time.monotonic()) > 0:
                await asyncio.sleep(min(left, heartbeat_every()))
                activity.heartbeat()

    async def _snapshot(self, task: Task, *, run_checks: bool = True) -> PrSnapshotData | None:
        """The PR as it stands, running the repo's testCommand on a new head; None when
        that is needed but not `run_checks` (the watch will run them)."""
        repo = _forge_repo(task.repo_url)
        pr, settings_repo = await _uncancelled(self._pr_and_repo(task))
        if pr is None:
            return PrSnapshotData("closed", None, "none", "none", None)
        if pr.state != "open":
            return PrSnapshotData(pr.state, None, pr.checks_status, "none", pr.head_sha)
        sha = await asyncio.to_thread(head_sha, repo=repo, ref=pr.head_branch)
        test_command = settings_repo.test_command if settings_repo else None
        checks = pr.checks_status if test_command else "none"
        if test_command and pr.checks_sha != sha:
            if not run_checks:
                return None
            checks = await self._run_checks(
                task_id=task.id, pr_id=pr.id, repo=repo, sha=sha, command=test_command
            )
        mergeable = (
            await asyncio.to_thread(forge.check_mergeable, repo=repo, base=pr.base_branch, head=sha)
        ).mergeable
        await _uncancelled(self._update_pr(pr.id, head_sha=sha, mergeable=mergeable))
        return PrSnapshotData("open", mergeable, checks, "none", sha)

    async def _pr_and_repo(self, task: Task) -> tuple[PullRequest | None, Repo | None]:
        async with self.sessions() as session:
            pr = await latest_pr_for_task(session, task_id=task.id)
            repo = await find_repo(session, workspace_id=task.workspace_id, repo_url=task.repo_url)
        return pr, repo

    async def _update_pr(self, pr_id: str, **fields: object) -> None:
        async with transaction(self.sessions) as session:
            row = await session.get(PullRequest, pr_id)
            if row is not None:
                for name, value in fields.items():
                    setattr(row, name, value)

    async def _run_checks(
        self, *, task_id: str, pr_id: str, repo: Path, sha: str, command: str
    ) -> str:
        await _uncancelled(self._update_pr(pr_id, checks_status="pending"))
        # One scratch dir per task: what a killed worker left there goes before the next
        # run of the checks, and the task's end removes it (release_worktree).
        scratch = checks_dir(self.settings, task_id)
        await asyncio.to_thread(shutil.rmtree, scratch, True)
        scratch.mkdir(parents=True, exist_ok=True)
        job = asyncio.ensure_future(
            asyncio.to_thread(
                forge.run_checks,
                repo=repo,
                head=sha,
                command=command,
                scratch_dir=scratch,
                timeout=CHECKS_TIMEOUT_SECONDS,
            )
        )
        try:
            result = await _heartbeat_while(job)
        finally:
            if job.done():
                await asyncio.to_thread(shutil.rmtree, scratch, True)
        assert isinstance(result, forge.CheckResult)
        status = "passing" if result.passed else "failing"
        await _uncancelled(
            self._update_pr(
                pr_id, checks_status=status, checks_sha=sha, checks_output=result.output_tail
            )
        )
        return status

    @activity.defn
    async def merge_pull_request(self, input: MergePrInput) -> MergePrResult:
        """Merge with a real git merge; merging twice is a no-op that reports success."""
        task = await self._task(input.task_id)
        if (target := await self._remote(task)) is not None:
            remote = asyncio.ensure_future(self.remote.merge(target, method=input.method))
            return cast(MergePrResult, await _heartbeat_while(remote))
        repo = _forge_repo(task.repo_url)
        async with self.sessions() as session:
            pr = await latest_pr_for_task(session, task_id=task.id)
        if pr is None:
            return MergePrResult(merged=False, message="The task has no pull request")
        if pr.state == "merged":
            return MergePrResult(merged=True)
        if pr.state == "closed":
            return MergePrResult(merged=False, message="The pull request is closed")
        method = input.method if input.method in ("merge", "squash", "rebase") else "squash"
        merging = asyncio.ensure_future(
            asyncio.to_thread(
                forge.merge,
                repo=repo,
                base=pr.base_branch,
                head=pr.head_branch,
                method=method,  # type: ignore[arg-type]
                title=f"{pr.title} (#{pr.number})",
                author_name=BOT_NAME,
                author_email=BOT_EMAIL,
            )
        )
        try:
            # Heartbeats let Temporal notice a dead worker within seconds, not minutes.
            result = cast(forge.MergeResult, await _heartbeat_while(merging))
        except GitError as exc:
            return MergePrResult(merged=False, message=str(exc))
        if result.conflict_files:
            files = ", ".join(result.conflict_files[:20])
            return MergePrResult(
                merged=False, conflict=True, message=f"Merge conflicts in: {files}"
            )
        if not (result.merged or result.already_merged):
            return MergePrResult(merged=False, message="The merge did not happen")
        async with transaction(self.sessions) as session:
            row = await session.get(PullRequest, pr.id)
            if row is not None and row.state == "open":
                row.state, row.merged_at, row.merge_method = "merged", utcnow(), method
                row.merge_commit_sha = result.sha
        return MergePrResult(merged=True)

    @activity.defn
    async def pr_feedback(self, input: PrFeedbackInput) -> PrFeedbackResult:
        """What a resumed agent needs to know: failing checks with logs, or review comments."""
        task = await self._task(input.task_id)
        if (target := await self._remote(task)) is not None:
            return await self.remote.feedback(
                target, reason=input.reason, review_id=input.review_id
            )
        if input.reason != "ci_failure":
            return PrFeedbackResult(text=None)
        async with self.sessions() as session:
            pr = await latest_pr_for_task(session, task_id=task.id)
        if pr is None or not pr.checks_output:
            return PrFeedbackResult(text=None)
        output = tail(pr.checks_output, 3000)
        return PrFeedbackResult(text=f"Failing check: testCommand\n```\n{output}\n```")

    @activity.defn
    async def finish_pull_request(self, input: FinishPrInput) -> None:
        """After the merge: close the linked issue on the forge (the local forge has none)."""
        task = await self._task(input.task_id)
        if input.merged and (target := await self._remote(task)) is not None:
            await self.remote.finish(target)
