"""Activities of StandaloneRunWorkflow: the run row, and one agent attempt in a scratch sandbox.

The agent runs through the same runner and launcher as repo tasks (a detached process on
the worker, or a pod with the kubernetes launcher), in a throwaway git repository the
runner makes for the attempt: the worktree, log delivery and re-attach after a worker
crash all apply unchanged, and whatever files the agent leaves are kept on a branch of
that scratch repository (in the pod's volume, gone with the pod, on the kubernetes
launcher).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeats import Heartbeats
from activities.notify import Notifier
from core.budget import budget_reason, over_budget, parse_usd
from core.params_schema import ParamsError, validate_params
from core.script_params import render_prompt
from core.settings import Settings
from core.templating import TemplateError
from core.tokens import hash_token, new_run_token
from integrations.launchers.base import Launcher
from integrations.launchers.select import launcher_for
from schemas import pod
from schemas.blueprint_runs import (
    FinishStandaloneInput,
    OpenStandaloneInput,
    StandaloneAttemptInput,
    StandaloneAttemptResult,
    StandalonePlan,
)
from schemas.runner import RunSpec, RunStatus
from store import live
from store.blueprints import StandaloneRun, StandaloneTask
from store.budgets import workspace_over_budget
from store.db import transaction
from store.masking import WorkspaceMasks, settings_credentials
from store.secrets import workspace_values
from store.types import utcnow

POLL_SECONDS = 0.1
BUDGET_CHECK_SECONDS = 0.5


@dataclass(frozen=True)
class Spend:
    total: Decimal  # every attempt of the run, the current one included
    prior: Decimal  # the attempts before the current one
    budget: str | None


def sandbox_id(run_id: str, attempt: int) -> str:
    return f"{run_id}.{attempt}"


class StandaloneRunActivities:
    def __init__(self, *, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.launcher: Launcher = launcher_for(settings)
        self.masks = WorkspaceMasks(settings)
        self.notifier = Notifier(settings=settings, sessions=sessions)

    @activity.defn
    async def open_run(self, input: OpenStandaloneInput) -> StandalonePlan:
        """Create the run row unless the API did; say why the run cannot start, if so."""
        async with transaction(self.sessions) as session:
            job = await session.get(StandaloneTask, input.standalone_id)
            if job is None:
                raise ApplicationError(
                    "The standalone task was deleted", type="StandaloneMissing", non_retryable=True
                )
            run = await session.get(StandaloneRun, input.run_id)
            if run is None:
                session.add(
                    StandaloneRun(
                        id=input.run_id,
                        workflow_id=job.id,
                        workspace_id=job.workspace_id,
                        trigger_id=input.trigger_id,
                        params=input.params,
                        state="queued",
                    )
                )
            refused = None
            over = await workspace_over_budget(session, workspace_id=job.workspace_id, now=utcnow())
            if not job.enabled:
                refused = "workflow_disabled: the standalone task is disabled"
            elif over is not None:
                refused = (
                    "budget_exceeded: the workspace's monthly budget is spent "
                    f"(${over[1]} of ${over[0].monthly_budget_usd})"
                )
            else:
                try:
                    validate_params(job.params_schema, input.params)
                except ParamsError as exc:
                    refused = f"Invalid params: {exc}"
            return StandalonePlan(
                run_id=input.run_id,
                max_concurrent=job.max_concurrent,
                max_retries=job.max_retries,
                refused=refused,
            )

    @activity.defn
    async def record_run_state(self, input: FinishStandaloneInput) -> None:
        async with transaction(self.sessions) as session:
            run = await session.get(StandaloneRun, input.run_id, with_for_update=True)
            if run is None:
                return  # deleted with its standalone task
            # Errors and summaries come from agents: no secret of the workspace is stored.
            redact = await self.masks.redactor(session, workspace_id=run.workspace_id)
            from_state = run.state
            now = utcnow()
            before = (run.state, run.retry_count)
            run.state = input.state
            if input.retry_count is not None:
                run.retry_count = input.retry_count
            if (run.state, run.retry_count) != before:  # a retried activity is no news
                live.publish(
                    session,
                    workspace_id=run.workspace_id,
                    topic=live.run_topic(run.id),
                    type="workflow_run:state_changed",
                    payload={
                        "workflowRunId": run.id,
                        "workflowId": run.workflow_id,
                        "fromState": before[0],
                        "toState": run.state,
                        "retryCount": run.retry_count,
                        "error": input.error,
                        "timestamp": now.isoformat(),
                    },
                )
            if input.state == "running" and (run.state, run.retry_count) != before:
                # A new attempt: its reports add to what the attempts before it cost.
                run.prior_attempts_cost_usd = run.cost_usd
            if input.state == "running":
                run.started_at = run.started_at or now
                run.error_message, run.finished_at = None, None
            if input.state in ("completed", "failed"):
                run.finished_at = now
                run.error_message = redact.optional(input.error)
            result = input.result
            if result is not None:
                run.output = {"summary": redact.text(result.summary)}
                if result.cost_usd is not None:
                    prior = parse_usd(run.prior_attempts_cost_usd) or Decimal(0)
                    run.cost_usd = str(prior + (parse_usd(result.cost_usd) or Decimal(0)))
                run.input_tokens = result.input_tokens
                run.output_tokens = result.output_tokens
                run.model_used = result.model
                run.session_id = result.session_id
        await self.notifier.run_state(run_id=input.run_id, from_state=from_state)

    @activity.defn
    async def run_attempt(self, input: StandaloneAttemptInput) -> StandaloneAttemptResult:
        """Launch (once) and wait for the agent, stopping it on a stall or a budget overrun."""
        sandbox = sandbox_id(input.run_id, input.attempt)
        # Re-attach to an earlier attempt's run; a lost one (or none) gets a fresh spec.
        if not self.launcher.attach(sandbox):
            spec = await self._new_spec(input, sandbox)
            await asyncio.to_thread(self.launcher.launch, spec)
        stall = timedelta(milliseconds=input.stall_threshold_ms)
        next_budget_check = 0.0
        heartbeats = Heartbeats()
        try:
            while True:
                heartbeats.beat()
                status = self.launcher.poll(sandbox)
                if status.state != "running":
                    return await self._outcome(input.run_id, status)
                if time.monotonic() >= next_budget_check:
                    next_budget_check = time.monotonic() + BUDGET_CHECK_SECONDS
                    spend = await self._spend(input.run_id)
                    if over_budget(spend.total, spend.budget):
                        await asyncio.to_thread(self.launcher.stop, sandbox)
                        reason = budget_reason(spend.total, spend.budget)
                        attempt_cost = str(spend.total - spend.prior)
                        return StandaloneAttemptResult(
                            success=False, error=reason, over_budget=True, cost_usd=attempt_cost
                        )
                progress = status.progress
                if progress is not None and utcnow() - progress.last_output_at > stall:
                    await asyncio.to_thread(self.launcher.stop, sandbox)
                    message = f"No agent output for {stall.total_seconds():.0f} s"
                    return StandaloneAttemptResult(success=False, error=message)
                await asyncio.sleep(POLL_SECONDS)
        except asyncio.CancelledError:
            # A stopping worker leaves the agent running for the next worker to re-attach.
            if not activity.is_worker_shutdown():
                await asyncio.to_thread(self.launcher.stop, sandbox)
            raise

    async def _spend(self, run_id: str) -> Spend:
        """The run's cost so far (attempts before plus ingested reports) and its budget."""
        async with self.sessions() as session:
            run = await session.get(StandaloneRun, run_id)
            job = await session.get(StandaloneTask, run.workflow_id) if run else None
        return Spend(
            total=(parse_usd(run.cost_usd) if run else None) or Decimal(0),
            prior=(parse_usd(run.prior_attempts_cost_usd) if run else None) or Decimal(0),
            budget=job.budget_usd if job else None,
        )

    async def _outcome(self, run_id: str, status: RunStatus) -> StandaloneAttemptResult:
        result = status.result
        if result is None:
            return StandaloneAttemptResult(
                success=False, error="The sandbox exited without a result"
            )
        spend = await self._spend(run_id)
        # The adapter's final figure (this attempt's) is authoritative; the ingested one
        # covers adapters that only report cost in their event stream.
        live = spend.total - spend.prior
        cost = parse_usd(result.cost_usd) if result.cost_usd else (live if live else None)
        outcome = StandaloneAttemptResult(
            success=result.success,
            summary=result.summary,
            error=result.error,
            cost_usd=None if cost is None else str(cost),
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            model=result.model,
            session_id=result.session_id,
        )
        total = spend.prior + (cost or Decimal(0))
        if over_budget(total, spend.budget):
            outcome.success, outcome.over_budget = False, True
            outcome.error = budget_reason(total, spend.budget)
        return outcome

    async def _new_spec(self, input: StandaloneAttemptInput, sandbox: str) -> RunSpec:
        # Made by the runner (integrations/scratch_repo.py): in a pod, where the pod's
        # prepare step can reach it.
        if self.settings.launcher == "kubernetes":
            scratch = Path(pod.SCRATCH) / f"{sandbox}.git"
        else:
            scratch = (self.settings.data_dir / "scratch" / f"{sandbox}.git").resolve()
        token = new_run_token()
        async with transaction(self.sessions) as session:
            run = await session.get(StandaloneRun, input.run_id, with_for_update=True)
            job = await session.get(StandaloneTask, run.workflow_id) if run else None
            if run is None or job is None:
                raise ApplicationError(
                    "The run was deleted", type="StandaloneMissing", non_retryable=True
                )
            try:
                prompt = render_prompt(
                    job.prompt_template, run.params or {}, agent_type=job.agent_runtime
                )
            except TemplateError as exc:
                raise ApplicationError(
                    f"The prompt cannot be rendered: {exc}",
                    type="PromptInvalid",
                    non_retryable=True,
                ) from exc
            run.sandbox_id, run.token_hash = sandbox, hash_token(token)
            masked = await workspace_values(
                session, workspace_id=run.workspace_id, settings=self.settings
            )
            masked += settings_credentials(self.settings)
        base = self.settings.api_base_url
        return RunSpec(
            run_id=sandbox,
            task_id=input.run_id,
            agent_type=job.agent_runtime,
            prompt=prompt,
            title=job.name,
            workspace_id=run.workspace_id,
            repo_url=f"file://{scratch}",
            scratch=True,
            branch=f"optio/run-{sandbox}",
            worktree_path=str(self.settings.worktrees_dir / f"run-{sandbox}"),
            mirror_cache_dir=str(self.settings.workspace_mirrors(run.workspace_id)),
            ingest_url=f"{base}/api/internal/standalone-runs/{input.run_id}/events"
            f"?attempt={input.attempt}",
            run_token=SecretStr(token),
            mask_values=[SecretStr(v) for v in masked],
            # Names the reference gives a job's agent (inventory §3.4).
            env={
                "OPTIO_PROMPT": prompt,
                "OPTIO_WORKFLOW_RUN_ID": input.run_id,
                "OPTIO_WORKFLOW_ID": job.id,
            },
            max_turns=job.max_turns or 250,
            stall_timeout_seconds=input.stall_threshold_ms / 1000,
        )
