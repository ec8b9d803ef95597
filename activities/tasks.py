"""Activities over the task row: load, record transitions, patch, wipe for redo."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.notify import Notifier
from core.masking import Redactor
from core.metrics import QUEUE_WAIT
from core.names import task_branch
from core.settings import Settings
from integrations.forges.local import delete_branch
from integrations.git import GitError, mirror_path, remove_worktree, resolve_local_repo
from schemas.workflow import (
    LoadTaskInput,
    PatchTaskInput,
    RedoInput,
    ReleaseWorktreeInput,
    TaskPatch,
    TaskSnapshot,
    TransitionInput,
    TransitionResult,
)
from store.db import transaction
from store.live import pr_snapshot, publish_pr_change
from store.masking import WorkspaceMasks
from store.metrics import queued_at
from store.models import Task
from store.pull_requests import find_open_pr
from store.tasks import apply_patch, apply_transition, find_repo, repo_key, wipe_for_redo
from store.types import utcnow

DEFAULT_MAX_TURNS = 250


def checks_dir(settings: Settings, task_id: str) -> Path:
    """Where the local forge checks a task's PR out to run its testCommand."""
    return settings.data_dir / "checks" / f"task-{task_id}"


def _masked(patch: TaskPatch, redact: Redactor) -> TaskPatch:
    return replace(
        patch,
        result_summary=redact.optional(patch.result_summary),
        error_message=redact.optional(patch.error_message),
    )


class TaskActivities:
    def __init__(self, *, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.masks = WorkspaceMasks(settings)
        self.notifier = Notifier(settings=settings, sessions=sessions)

    @activity.defn
    async def load_task(self, input: LoadTaskInput) -> TaskSnapshot:
        async with transaction(self.sessions) as session:
            task = await session.get(Task, input.task_id)
            if task is None:
                raise ApplicationError(
                    f"Task {input.task_id} does not exist", type="TaskMissing", non_retryable=True
                )
            repo = await find_repo(session, workspace_id=task.workspace_id, repo_url=task.repo_url)
        defaults = self.settings
        return TaskSnapshot(
            task_id=task.id,
            workspace_id=task.workspace_id,
            state=task.state,
            seq=task.transition_seq,
            title=task.title,
            repo_url=task.repo_url,
            repo_branch=task.repo_branch,
            agent_type=task.agent_type,
            priority=task.priority,
            max_retries=task.max_retries,
            retry_count=task.retry_count,
            pr_url=task.pr_url,
            pr_number=task.pr_number,
            session_id=task.session_id,
            repo_key=repo_key(workspace_id=task.workspace_id, repo_url=task.repo_url),
            auto_merge=bool(repo and repo.auto_merge),
            cautious_mode=bool(repo and repo.cautious_mode),
            auto_resume=bool(repo and repo.auto_resume),
            max_auto_resumes=(
                repo.max_auto_resumes
                if repo and repo.max_auto_resumes
                else defaults.max_auto_resumes
            ),
            max_concurrent_tasks=repo.max_concurrent_tasks if repo else 2,
            stall_threshold_ms=(
                repo.stall_threshold_ms
                if repo and repo.stall_threshold_ms
                else defaults.stall_threshold_ms
            ),
            max_turns_coding=(
                repo.max_turns_coding if repo and repo.max_turns_coding else DEFAULT_MAX_TURNS
            ),
            test_command=repo.test_command if repo else None,
            global_limit=defaults.max_concurrent,
            pr_watch_interval_ms=defaults.pr_watch_interval_ms,
            require_approval=bool(repo and repo.require_approval),
            review_enabled=bool(repo and repo.review_enabled),
            review_trigger=repo.review_trigger if repo else None,
            task_type=task.task_type,
            queue_trigger=(task.metadata_ or {}).get("queueTrigger"),
        )

    @activity.defn
    async def record_transition(self, input: TransitionInput) -> TransitionResult:
        async with transaction(self.sessions) as session:
            task = await session.get(Task, input.task_id)
            if task is not None:
                # Errors and summaries come from agents: no secret of the workspace is stored.
                redact = await self.masks.redactor(session, workspace_id=task.workspace_id)
                input = replace(
                    input,
                    message=redact.optional(input.message),
                    patch=_masked(input.patch, redact),
                )
            applied = await apply_transition(session, data=input)
            if applied and input.to_state == "provisioning" and input.from_state == "queued":
                since = await queued_at(session, task_id=input.task_id, seq=input.seq - 1)
                if since is not None:
                    QUEUE_WAIT.observe(max(0.0, (utcnow() - since).total_seconds()))
        # Also when not applied: a retry after a lost start must still notify (once).
        await self.notifier.task_transition(input)
        return TransitionResult(applied=applied)

    @activity.defn
    async def patch_task(self, input: PatchTaskInput) -> None:
        async with transaction(self.sessions) as session:
            task = await session.get(Task, input.task_id, with_for_update=True)
            if task is not None:
                redact = await self.masks.redactor(session, workspace_id=task.workspace_id)
                before_pr = pr_snapshot(task)
                apply_patch(task, _masked(input.patch, redact))
                publish_pr_change(session, task=task, before=before_pr)

    @activity.defn
    async def release_worktree(self, input: ReleaseWorktreeInput) -> None:
        """A finished task's worktree goes; a later retry prepares a fresh one."""
        async with self.sessions() as session:
            task = await session.get(Task, input.task_id)
        # Checks a killed worker left behind go with the task's end.
        await asyncio.to_thread(shutil.rmtree, checks_dir(self.settings, input.task_id), True)
        if task is None:
            return
        mirror = mirror_path(
            repo_url=task.repo_url, cache_dir=self.settings.workspace_mirrors(task.workspace_id)
        )
        worktree = self.settings.worktrees_dir / f"task-{task.id}"
        if mirror.exists() and worktree.exists():
            await asyncio.to_thread(remove_worktree, mirror=mirror, worktree_path=worktree)

    @activity.defn
    async def reset_for_redo(self, input: RedoInput) -> None:
        """force-redo: close the PR, delete the branch, wipe logs and cost."""
        async with transaction(self.sessions) as session:
            task = await wipe_for_redo(session, task_id=input.task_id)
            if task is None:
                return
            pr = await find_open_pr(
                session, repo_url=task.repo_url, head_branch=task_branch(task.id)
            )
            if pr is not None:
                pr.state, pr.closed_at = "closed", utcnow()
            repo_url = task.repo_url
        repo = resolve_local_repo(repo_url)
        if repo is not None:
            try:
                await asyncio.to_thread(delete_branch, repo=repo, branch=task_branch(input.task_id))
            except GitError as exc:
                activity.logger.warning("could not delete branch for redo: %s", exc)
