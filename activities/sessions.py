"""Activities of the SessionWorkflow: make the session's worktree, and end the session."""

from __future__ import annotations

import asyncio
import shutil

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.settings import Settings
from integrations.git import GitError, ensure_mirror, prepare_worktree, remove_worktree
from integrations.session_sandbox import session_home, session_mirror, session_worktree
from schemas.sessions import SessionEndInput, SessionPrepared, SessionRef
from store.db import transaction
from store.session_rows import publish_session
from store.sessions import ACTIVE_STATES, InteractiveSession
from store.types import utcnow


class SessionActivities:
    def __init__(self, *, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions

    @activity.defn
    async def prepare_session(self, input: SessionRef) -> SessionPrepared:
        async with self.sessions() as session:
            row = await session.get(InteractiveSession, input.session_id)
        if row is None or row.state not in ACTIVE_STATES:
            raise ApplicationError("The session is gone", type="SessionGone", non_retryable=True)
        cache = self.settings.workspace_mirrors(row.workspace_id)
        cache.mkdir(parents=True, exist_ok=True)
        worktree = session_worktree(self.settings, row.id)
        try:
            mirror = await asyncio.to_thread(
                lambda: ensure_mirror(
                    repo_url=row.repo_url, cache_dir=cache, branches=[row.base_branch]
                )
            )
            await asyncio.to_thread(
                lambda: prepare_worktree(
                    mirror=mirror,
                    worktree_path=worktree,
                    branch=row.branch,
                    base_branch=row.base_branch,
                    from_existing_branch=False,
                )  # fmt: skip
            )
        except GitError as exc:
            error = f"Preparing the session's worktree failed: {exc}"
            async with transaction(self.sessions) as session:
                failed = await session.get(InteractiveSession, input.session_id)
                if failed is not None:
                    failed.state, failed.error = "failed", error[:2000]
            return SessionPrepared(ready=False, error=error)
        async with transaction(self.sessions) as session:
            ready = await session.get(InteractiveSession, input.session_id)
            if ready is not None and ready.state == "provisioning":
                ready.state = "active"
                publish_session(session, ready, "session:state_changed")
        return SessionPrepared(ready=True)

    @activity.defn
    async def end_session(self, input: SessionEndInput) -> None:
        """The session ends (idempotent): its worktree and agent home go, its branch stays."""
        async with transaction(self.sessions) as session:
            row = await session.get(InteractiveSession, input.session_id)
            if row is None:
                return
            if row.state in ACTIVE_STATES:
                row.state, row.ended_at, row.end_reason = "ended", utcnow(), input.reason
                publish_session(session, row, "session:ended")
            workspace_id, repo_url = row.workspace_id, row.repo_url
        mirror = session_mirror(self.settings, workspace_id=workspace_id, repo_url=repo_url)
        worktree = session_worktree(self.settings, input.session_id)
        if mirror.exists() and worktree.exists():
            await asyncio.to_thread(remove_worktree, mirror=mirror, worktree_path=worktree)
        await asyncio.to_thread(shutil.rmtree, session_home(self.settings, input.session_id), True)
