"""Activities that launch the sandbox for an agent run and wait for its result."""

from __future__ import annotations

import asyncio
import shlex
from datetime import timedelta

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeats import Heartbeats
from activities.review import MAX_TURNS_REVIEW, ReviewActivities, ReviewRun
from core.metrics import AGENT_COST, RUN_DURATION, RUNS_FAILED_OVER
from core.pr_decision import combine_prompts
from core.prompts import PromptContext, agent_prompt, effective_template, task_file
from core.settings import Settings
from core.tokens import new_run_token
from core.worker_identity import host_queue
from integrations.agents.common import is_permanent, missing_cli
from integrations.agents.credentials import SECRET_ENV, agent_access, with_stored_secrets
from integrations.agents.models import effective_model
from integrations.agents.secrets import referenced_names, resolve_secret
from integrations.launchers.base import Launcher, sandbox_name
from integrations.launchers.select import launcher_for
from schemas.agents import McpServerSpec, SkillFile, SkillSpec
from schemas.refs import is_plain_word
from schemas.runner import RunResult, RunSpec, RunStatus
from schemas.workflow import (
    PlaceRunInput,
    PrepareInput,
    PrepareResult,
    RecordLostRunInput,
    RunAgentInput,
    RunAgentResult,
    RunPlacement,
    StopRunInput,
)
from store.agent_config import prompt_templates, servers_for_run, skills_for_run
from store.db import transaction
from store.masking import WorkspaceMasks, settings_credentials
from store.messages import mark_delivered, undelivered
from store.metrics import run_started
from store.models import AgentRun, Repo, Task
from store.runs import finish_run, upsert_run
from store.secrets import resolve_secret as resolve_stored_secret
from store.secrets import workspace_values
from store.tasks import find_repo
from store.types import utcnow

POLL_SECONDS = 0.1


def _prompt(task: Task, resume_prompt: str | None, *, automatic: bool = False) -> str:
    # A script agent's prompt is the script itself: a person's resume replaces it, while
    # Optio's own instructions (CI failure, review) reach the same script as a variable.
    if not resume_prompt:
        return task.prompt
    if task.agent_type == "script" and automatic:
        return f"export OPTIO_RESUME_PROMPT={shlex.quote(resume_prompt)}\n{task.prompt}"
    if task.agent_type == "script":
        return resume_prompt
    return combine_prompts(resume_prompt=resume_prompt, original_prompt=task.prompt)


def _review_spec(spec: RunSpec, review: ReviewRun) -> RunSpec:
    """A review reads the PR's head on a local branch of its own and never publishes."""
    return spec.model_copy(
        update={
            "prompt": review.prompt,
            "task_file": review.context,
            "base_branch": review.head_branch,
            "from_existing_branch": False,
            "publish": False,
            "max_turns": MAX_TURNS_REVIEW,
        }
    )


async def _with_queued_messages(session: AsyncSession, spec: RunSpec, *, task_id: str) -> RunSpec:
    """Messages sent to the task while no run could take them reach this run's prompt
    (store/messages.py); they count as delivered when the spec is built."""
    queued = await undelivered(session, task_id=task_id)
    if not queued:
        return spec
    mark_delivered(session, queued)
    lines = "\n\n".join(f"- {m.content}" for m in queued)
    note = f"\n\nMessages from the user, sent while you could not receive them:\n\n{lines}\n"
    return spec.model_copy(update={"prompt": spec.prompt + note})


class AgentRunActivities:
    def __init__(self, *, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.launcher: Launcher = launcher_for(settings)
        self.reviews = ReviewActivities(settings=settings, sessions=sessions)
        self.masks = WorkspaceMasks(settings)

    async def _new_spec(self, input: PrepareInput) -> RunSpec:
        token = new_run_token()
        # Fetched from the forge before the transaction, which must not wait on the network.
        review = await self.reviews.prepare_run(input.task_id)
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
            spec = RunSpec(
                run_id=input.run_id,
                task_id=task.id,
                workspace_id=task.workspace_id,
                agent_type=task.agent_type,
                prompt=_prompt(task, input.resume_prompt, automatic=input.automatic),
                title=task.title,
                repo_url=task.repo_url,
                base_branch=task.repo_branch,
                branch=f"optio/task-{task.id}",
                from_existing_branch=input.from_existing_branch,
                worktree_path=str(self.settings.worktrees_dir / f"task-{task.id}"),
                mirror_cache_dir=str(self.settings.workspace_mirrors(task.workspace_id)),
                ingest_url=f"{self.settings.api_base_url}/api/internal/runs/{input.run_id}/events",
                run_token=SecretStr(token),
                max_turns=(repo.max_turns_coding if repo and repo.max_turns_coding else 250),
                # As the task's snapshot reads it (activities/tasks.py), for a pod's runner.
                stall_timeout_seconds=(
                    repo.stall_threshold_ms
                    if repo and repo.stall_threshold_ms
                    else self.settings.stall_threshold_ms
                )
                / 1000,
            )
            if review is not None:
                task.prompt = review.prompt  # the rendered template, as the run sees it
                spec = _review_spec(spec, review)
            # Every agent type, scripts included, masks all the workspace's secrets.
            masked = await workspace_values(
                session, workspace_id=task.workspace_id, settings=self.settings
            )
            masked += settings_credentials(self.settings)
            spec = spec.model_copy(update={"mask_values": [SecretStr(v) for v in masked]})
            if task.agent_type == "script":
                return spec
            spec = await self._agent_spec(session, spec, task, repo, input.resume_prompt)
            if review is None:
                spec = await _with_queued_messages(session, spec, task_id=task.id)
            if review is not None:
                # The review template, not the coding one: read the PR, write a verdict.
                spec = spec.model_copy(
                    update={"prompt": review.prompt, "task_file": review.context}
                )
            return spec

    async def _agent_spec(
        self,
        session: AsyncSession,
        spec: RunSpec,
        task: Task,
        repo: Repo | None,
        resume_prompt: str | None,
    ) -> RunSpec:
        """A real agent's part of the spec: prompts, model, session, MCP, skills, credentials."""
        settings = self.settings
        ctx = PromptContext(
            task_id=task.id,
            title=task.title,
            prompt=task.prompt,
            repo_name=repo.full_name if repo else task.repo_url,
            branch=spec.branch,
            auto_merge=bool(repo and repo.auto_merge and not repo.cautious_mode),
            draft_pr=bool(repo and repo.cautious_mode),
            gitlab=bool(repo and repo.git_platform == "gitlab"),
        )
        override, default = await prompt_templates(
            session, workspace_id=task.workspace_id, repo_url=task.repo_url
        )
        template = effective_template(repo_override=override, workspace_default=default)
        # Only a resume continues the agent's session; a retry starts afresh.
        session_id = task.session_id if resume_prompt else None
        servers = [
            McpServerSpec(
                name=s.name,
                command=s.command,
                args=list(s.args or []),
                env=dict(s.env or {}),
                install_command=s.install_command,
            )
            for s in await servers_for_run(
                session, workspace_id=task.workspace_id, repo_url=task.repo_url
            )
        ]
        skills = [
            SkillSpec(
                name=k.name,
                description=k.description,
                prompt=k.prompt,
                layout="skill-dir" if k.layout == "skill-dir" else "commands",
                files=[SkillFile.model_validate(f) for f in k.files or []],
            )
            for k in await skills_for_run(
                session,
                workspace_id=task.workspace_id,
                repo_url=task.repo_url,
                agent_type=task.agent_type,
            )
        ]

        async def lookup(name: str) -> str | None:
            # The encrypted store first (user, repo, workspace), then the interim setting.
            stored = await resolve_stored_secret(
                session,
                workspace_id=task.workspace_id,
                name=name,
                repo_url=task.repo_url,
                user_id=task.created_by,
                settings=settings,
            )
            return stored if stored is not None else resolve_secret(name, settings=settings)

        secrets = {}
        for name in sorted(referenced_names(servers)):
            value = await lookup(name)
            if value is None:
                raise ApplicationError(
                    f"MCP configuration references the secret {name}, which is not set",
                    type="MissingSecret",
                    non_retryable=True,
                )
            secrets[name] = value
        stored = {
            name: value
            for name in SECRET_ENV.get(task.agent_type, {})
            if (value := await lookup(name)) is not None
        }
        # The task's own model, else the repo's, else the agent type's default
        # (integrations/agents/models.py).
        model = effective_model(task.agent_type, task.metadata_, settings.agent_models, repo)
        access = with_stored_secrets(
            agent_access(task.agent_type, settings, model), stored, task.agent_type
        )
        home = settings.agent_home or settings.data_dir / "agent-homes" / f"task-{task.id}"
        bin_dir = settings.agents_bin_dir
        if (missing := missing_cli(task.agent_type, search_path=[bin_dir])) is not None:
            # No retry installs it: a permanent failure that names the install step.
            raise ApplicationError(missing, type="AgentCliMissing", non_retryable=True)
        # Validated, not model_copy'd: credentials must become SecretStr.
        return RunSpec.model_validate(
            spec.model_dump()
            | {
                "prompt": agent_prompt(
                    ctx,
                    template=template,
                    resume_prompt=resume_prompt,
                    continues_session=session_id is not None,
                ),
                "task_file": task_file(ctx, follow_up=resume_prompt),
                "model": model,
                "effort": settings.agent_effort,
                "resume_session_id": session_id,
                "agent_home": str(home),
                "extra_path": [str(bin_dir)] if bin_dir.is_dir() else [],
                "model_base_url": access.base_url,
                "agent_max_retries": settings.agent_max_retries,
                "model_prices": settings.model_prices,
                "mcp_servers": servers,
                "skills": skills,
                "secret_env": access.secret_env,
                "secrets": secrets,
            }
        )

    @activity.defn
    async def prepare_worktree(self, input: PrepareInput) -> PrepareResult:
        """Launch the sandbox (once) and wait until its worktree is ready."""
        # An earlier attempt's run, alive or finished, is re-attached; a lost one (or none)
        # gets a fresh spec: its secrets were never written anywhere to be read back.
        if not self.launcher.attach(input.run_id):
            spec = await self._new_spec(input)
            await asyncio.to_thread(self.launcher.launch, spec)
        heartbeats = Heartbeats()
        while True:
            heartbeats.beat()
            status = self.launcher.poll(input.run_id)
            if status.result is not None and not status.result.prepared:
                return PrepareResult(ready=False, error=status.result.error or "Preparation failed")
            phase = status.progress.phase if status.progress else "preparing"
            if phase != "preparing" or status.result is not None:
                return PrepareResult(ready=True)
            if status.state == "lost":
                # Retried by Temporal: launch() starts a fresh runner for a lost one.
                raise ApplicationError("The sandbox exited while preparing the worktree")
            await asyncio.sleep(POLL_SECONDS)

    @activity.defn
    async def run_agent(self, input: RunAgentInput) -> RunAgentResult:
        """Wait for the agent's result, heartbeating; stop it when it stalls or is cancelled."""
        run_id = input.run_id
        stall = timedelta(milliseconds=input.stall_threshold_ms)
        heartbeats = Heartbeats()
        try:
            while True:
                heartbeats.beat()
                status = self.launcher.poll(run_id)
                if status.state != "running":
                    return await self._finish(input.run_id, status)
                progress = status.progress
                if progress is not None and utcnow() - progress.last_output_at > stall:
                    await asyncio.to_thread(self.launcher.stop, run_id)
                    message = f"No agent output for {stall.total_seconds():.0f} s"
                    await self._record(input.run_id, "stalled", None, message)
                    return RunAgentResult(success=False, stalled=True, error=message)
                await asyncio.sleep(POLL_SECONDS)
        except asyncio.CancelledError:
            # A stopping worker leaves the agent running for the next worker to re-attach.
            if not activity.is_worker_shutdown():
                await asyncio.to_thread(self.launcher.stop, run_id)
                await self._record(input.run_id, "cancelled", None, "Run cancelled")
            raise

    async def _finish(self, run_id: str, status: RunStatus) -> RunAgentResult:
        result = status.result and await self._masked(run_id, status.result)
        if result is None:
            await self._record(run_id, "lost", None, "The sandbox exited without a result")
            await self._observe(run_id, "lost", None)
            return RunAgentResult(success=False, error="The sandbox exited without a result")
        if result.stalled:
            # A pod's runner stopped the silent agent (run_agent's own check cannot see
            # into a pod): the same verdict as a local run's stall.
            await self._record(run_id, "stalled", result.exit_code, result.error)
            return RunAgentResult(success=False, stalled=True, error=result.error)
        await self._record(
            run_id,
            "succeeded" if result.success else "failed",
            result.exit_code,
            result.error,
            result=result,
        )
        await self._observe(run_id, "succeeded" if result.success else "failed", result.cost_usd)
        return RunAgentResult(
            success=result.success,
            permanent=not result.success and is_permanent(result.error),
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

    async def _masked(self, run_id: str, result: RunResult) -> RunResult:
        """Masked again: a secret that slipped past the runner stops before any storage."""
        async with self.sessions() as session:
            run = await session.get(AgentRun, run_id)
            if run is None:
                return result
            redact = await self.masks.redactor(session, workspace_id=run.workspace_id)
        # The agent reports its session id and the next resume puts it on the agent's
        # command line: one that could read as an option starts a fresh session instead.
        session_id = (
            result.session_id if result.session_id and is_plain_word(result.session_id) else None
        )
        return result.model_copy(
            update={
                "summary": redact.text(result.summary),
                "error": redact.optional(result.error),
                "session_id": session_id,
            }
        )

    async def _observe(self, run_id: str, outcome: str, cost_usd: str | None) -> None:
        """The run's duration and cost, for /metrics."""
        async with self.sessions() as session:
            started = await run_started(session, run_id=run_id)
        if started is None:
            return
        agent, started_at = started
        RUN_DURATION.labels(agent=agent, outcome=outcome).observe(
            max(0.0, (utcnow() - started_at).total_seconds())
        )
        cost = _dollars(cost_usd)
        if cost:
            AGENT_COST.labels(agent=agent).inc(cost)

    async def _record(
        self,
        run_id: str,
        state: str,
        exit_code: int | None,
        error: str | None,
        result: RunResult | None = None,
    ) -> None:
        async with transaction(self.sessions) as session:
            await finish_run(
                session,
                run_id=run_id,
                state=state,
                exit_code=exit_code,
                error=error,
                result=result,
            )

    @activity.defn
    async def stop_agent_run(self, input: StopRunInput) -> None:
        # Recorded first: the agent's exit, seen by run_agent once stopped, must not
        # turn a cancelled run into a failed one (finish_run keeps the first final state).
        message = "Run cancelled" if input.state == "cancelled" else "Run stopped: the task failed"
        await self._record(input.run_id, input.state, None, message)
        await asyncio.to_thread(self.launcher.stop, input.run_id)

    @activity.defn
    async def place_run(self, input: PlaceRunInput) -> RunPlacement:
        """The worker that takes this activity holds the run: with the local launcher its
        worktree and runner live on this machine, so the run's later activities come to
        this worker's own task queue. A pod is reachable from any worker."""
        if self.settings.launcher != "local":
            return RunPlacement()
        return RunPlacement(
            task_queue=host_queue(self.settings),
            failover_seconds=self.settings.worker_failover_seconds,
        )

    @activity.defn
    async def record_lost_run(self, input: RecordLostRunInput) -> None:
        """The run's worker is gone: say so on the run, from any worker (its own cannot)."""
        if input.state == "lost":
            RUNS_FAILED_OVER.inc()
        await self._record(input.run_id, input.state, None, input.message)


def _dollars(cost_usd: str | None) -> float:
    try:
        return max(0.0, float(cost_usd)) if cost_usd else 0.0
    except ValueError:
        return 0.0
