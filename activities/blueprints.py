"""Activities of BlueprintRunWorkflow: create the repo task once, then watch it settle."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from core.errors import NotFoundError, OptioError
from core.settings import Settings
from core.states import LIVE_STATES, TaskState
from core.templating import TemplateError
from schemas.blueprint_runs import (
    AwaitTaskInput,
    AwaitTaskResult,
    InstantiateInput,
    InstantiateResult,
)
from store.blueprints import TaskConfig
from store.budgets import workspace_over_budget
from store.db import transaction
from store.models import Task
from store.repo_claims import check_repo_use
from store.templates import new_blueprint_task
from store.types import utcnow
from temporal.starts import start_task_workflow


class BlueprintActivities:
    def __init__(self, *, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions

    @activity.defn
    async def instantiate_blueprint(self, input: InstantiateInput) -> InstantiateResult:
        """Insert the task row (unless a previous attempt or the API did) and start it."""
        async with transaction(self.sessions) as session:
            task = await session.get(Task, input.task_id)
            if task is None:
                config = await session.get(TaskConfig, input.config_id)
                if config is None:
                    raise ApplicationError(
                        "The blueprint was deleted", type="BlueprintMissing", non_retryable=True
                    )
                if not config.enabled:
                    return InstantiateResult(
                        task_id=input.task_id, created=False, skipped="The blueprint is disabled"
                    )
                # Scheduled and webhook fires do not pass the API's door: same rule here.
                over = await workspace_over_budget(
                    session, workspace_id=config.workspace_id, now=utcnow()
                )
                if over is not None:
                    workspace, spent = over
                    return InstantiateResult(
                        task_id=input.task_id,
                        created=False,
                        skipped=(
                            f"budget_exceeded: the workspace's monthly budget is spent "
                            f"(${spent} of ${workspace.monthly_budget_usd})"
                        ),
                    )
                try:
                    # Checked when the blueprint was saved; a schedule fires long after.
                    await check_repo_use(
                        session,
                        settings=self.settings,
                        workspace_id=config.workspace_id,
                        repo_url=config.repo_url,
                    )
                except OptioError as exc:
                    raise ApplicationError(
                        f"The blueprint's repository cannot be used: {exc.message}",
                        type="RepoNotAllowed",
                        non_retryable=True,
                    ) from exc
                try:
                    task = await new_blueprint_task(
                        session,
                        config=config,
                        task_id=input.task_id,
                        trigger_id=input.trigger_id,
                        params=input.params,
                    )
                except (TemplateError, NotFoundError) as exc:
                    raise ApplicationError(
                        f"The blueprint cannot be rendered: {exc}",
                        type="BlueprintInvalid",
                        non_retryable=True,
                    ) from exc
            pending = task.state == TaskState.PENDING
        if pending:
            await self._start_task(task)
        return InstantiateResult(task_id=input.task_id, created=True)

    async def _start_task(self, task: Task) -> None:
        try:
            await start_task_workflow(
                activity.client(),
                task,
                task_queue=self.settings.task_queue,
                # A retried activity finds the run it started, open or already closed.
                reuse=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            pass

    @activity.defn
    async def await_task_settled(self, input: AwaitTaskInput) -> AwaitTaskResult:
        """Return once the task is no longer live (or was deleted), heartbeating meanwhile."""
        while True:
            activity.heartbeat()
            async with self.sessions() as session:
                task = await session.get(Task, input.task_id)
            if task is None or task.state not in LIVE_STATES:
                return AwaitTaskResult(state=task.state if task else None)
            await asyncio.sleep(input.poll_seconds)
