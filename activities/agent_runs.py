"""Activities that launch the sandbox for an agent run and wait for its result."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.pr_decision import combine_prompts
from core.settings import Settings
from core.tokens import new_run_token
from integrations.launchers.local import LocalLauncher, RunStatus, sandbox_name
from schemas.runner import RunSpec
from schemas.workflow import (
    PrepareInput,
    PrepareResult,
    RunAgentInput,
    RunAgentResult,
    StopRunInput,
)
from store.db import transaction
from store.models import Task
from store.runs import finish_run, upsert_run
from store.tasks import find_repo
from store.types import utcnow

POLL_SECONDS = 0.1


def _prompt(task: Task, resume_prompt: str | None) -> str:
    # A script agent's prompt is the script itself: a resume replaces it.
    if not resume_prompt:
        return task.prompt
    if task.agent_type == "script":
        return resume_prompt
    return combine_prompts(resume_prompt=resume_prompt, original_prompt=task.prompt)


class AgentRunActivities:
    def __init__(self, *, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.launcher = LocalLauncher(runs_root=settings.runs_dir)

    async def _new_spec(self, input: PrepareInput) -> RunSpec:
        token = new_run_token()
        async with transaction(self.sessions) as session:
            task = await session.get(Task, input.task_id)
            if task is None:
                raise ApplicationError("Task was deleted", type="TaskMissing", non_retryable=True)
            repo = await find_repo(session, workspace_id=task.workspace_id, repo_url=task.repo_url)
            await upsert_run(
                session,
                run_id=input.run_id,
                task=task,
                agent_type=task.agent_type,
                sandbox_name=sandbox_name(input.run_id),
                token=token,
            )
            return RunSpec(
                run_id=input.run_id,
                task_id=task.id,
                agent_type=task.agent_type,
                prompt=_prompt(task, input.resume_prompt),
                title=task.title,
                repo_url=task.repo_url,
                base_branch=task.repo_branch,
                branch=f"optio/task-{task.id}",
                from_existing_branch=input.from_existing_branch,
                worktree_path=str(self.settings.worktrees_dir / f"task-{task.id}"),
                mirror_cache_dir=str(self.settings.mirrors_dir),
                ingest_url=f"{self.settings.api_base_url}/api/internal/runs/{input.run_id}/events",
                run_token=token,
                max_turns=(repo.max_turns_coding if repo and repo.max_turns_coding else 250),
            )

    @activity.defn
    async def prepare_worktree(self, input: PrepareInput) -> PrepareResult:
        """Launch the sandbox (once) and wait until its worktree is ready."""
        spec = self.launcher.existing_spec(input.run_id) or await self._new_spec(input)
        run_dir = await asyncio.to_thread(self.launcher.launch, spec)
        while True:
            activity.heartbeat()
            status = await asyncio.to_thread(self.launcher.poll, run_dir)
            phase = status.progress.phase if status.progress else "preparing"
            if phase != "preparing":
                return PrepareResult(ready=True)
            if status.state == "finished" and status.result is not None:
                return PrepareResult(ready=False, error=status.result.error or "Preparation failed")
            if status.state == "lost":
                # Retried by Temporal: launch() starts a fresh runner for a lost one.
                raise ApplicationError("The sandbox exited while preparing the worktree")
            await asyncio.sleep(POLL_SECONDS)

    @activity.defn
    async def run_agent(self, input: RunAgentInput) -> RunAgentResult:
        """Wait for the agent's result, heartbeating; stop it when it stalls or is cancelled."""
        run_dir = self.launcher.run_dir(input.run_id)
        stall = timedelta(milliseconds=input.stall_threshold_ms)
        try:
            while True:
                activity.heartbeat()
                status = await asyncio.to_thread(self.launcher.poll, run_dir)
                if status.state != "running":
                    return await self._finish(input.run_id, status)
                progress = status.progress
                if progress is not None and utcnow() - progress.last_output_at > stall:
                    await asyncio.to_thread(self.launcher.stop, run_dir)
                    message = f"No agent output for {stall.total_seconds():.0f} s"
                    await self._record(input.run_id, "stalled", None, message)
                    return RunAgentResult(success=False, stalled=True, error=message)
                await asyncio.sleep(POLL_SECONDS)
        except asyncio.CancelledError:
            # A stopping worker leaves the agent running for the next worker to re-attach.
            if not activity.is_worker_shutdown():
                await asyncio.to_thread(self.launcher.stop, run_dir)
                await self._record(input.run_id, "cancelled", None, "Run cancelled")
            raise

    async def _finish(self, run_id: str, status: RunStatus) -> RunAgentResult:
        result = status.result
        if result is None:
            await self._record(run_id, "lost", None, "The sandbox exited without a result")
            return RunAgentResult(success=False, error="The sandbox exited without a result")
        await self._record(
            run_id, "succeeded" if result.success else "failed", result.exit_code, result.error
        )
        return RunAgentResult(
            success=result.success,
            summary=result.summary,
            error=result.error,
            head_sha=result.head_sha,
            pushed=result.pushed,
            session_id=result.session_id,
            cost_usd=result.cost_usd,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            model=result.model,
        )

    async def _record(
        self, run_id: str, state: str, exit_code: int | None, error: str | None
    ) -> None:
        async with transaction(self.sessions) as session:
            await finish_run(session, run_id=run_id, state=state, exit_code=exit_code, error=error)

    @activity.defn
    async def stop_agent_run(self, input: StopRunInput) -> None:
        await asyncio.to_thread(self.launcher.stop, self.launcher.run_dir(input.run_id))
