"""Starting blueprint and standalone runs from the API (manual runs, webhooks).

As for repo tasks, the API writes the row, then starts the workflow; if Temporal
refuses, the row is removed again so nothing half-made remains.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.common import WorkflowIDReusePolicy

from api.budgets import refuse_over_monthly_budget
from api.repo_access import check_repo_use
from api.state import AppState
from core.errors import ConflictError, InvalidInputError, ServiceUnavailableError
from core.params_schema import ParamsError, validate_params
from core.templating import TemplateError
from schemas.blueprint_runs import BlueprintRunInput, StandaloneRunInput
from store.blueprints import StandaloneRun, StandaloneTask, TaskConfig
from store.models import Task, new_id
from store.templates import new_blueprint_task


async def _start_or_undo(
    state: AppState, session: AsyncSession, row: Any, workflow: str, arg: Any, workflow_id: str
) -> None:
    try:
        client = await state.temporal_client()
        await client.start_workflow(
            workflow,
            arg,
            id=workflow_id,
            task_queue=state.settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except Exception as exc:
        await session.delete(row)
        await session.commit()
        if isinstance(exc, ServiceUnavailableError):
            raise
        raise ServiceUnavailableError(f"Could not start the run's workflow: {exc}") from exc


async def start_blueprint_run(
    *,
    state: AppState,
    session: AsyncSession,
    config: TaskConfig,
    trigger_id: str | None,
    params: dict[str, Any],
    source: str,
) -> Task:
    """A fresh repo task from the blueprint; BlueprintRunWorkflow starts and watches it."""
    if not config.enabled:
        raise ConflictError("The blueprint is disabled")
    await check_repo_use(
        session, settings=state.settings, workspace_id=config.workspace_id, repo_url=config.repo_url
    )
    await refuse_over_monthly_budget(state, session, workspace_id=config.workspace_id)
    task_id = new_id()
    try:
        task = await new_blueprint_task(
            session, config=config, task_id=task_id, trigger_id=trigger_id, params=params
        )
    except TemplateError as exc:
        raise InvalidInputError(f"The blueprint's template is invalid: {exc}") from exc
    await session.commit()
    await _start_or_undo(
        state,
        session,
        task,
        "BlueprintRunWorkflow",
        BlueprintRunInput(
            config_id=config.id, trigger_id=trigger_id, params=params, task_id=task_id
        ),
        f"blueprint-{config.id}-{source}-{task_id}",
    )
    return task


async def start_standalone_run(
    *,
    state: AppState,
    session: AsyncSession,
    job: StandaloneTask,
    trigger_id: str | None,
    params: dict[str, Any],
) -> StandaloneRun:
    if not job.enabled:
        raise ConflictError("The standalone task is disabled")
    await refuse_over_monthly_budget(state, session, workspace_id=job.workspace_id)
    try:
        validate_params(job.params_schema, params)
    except ParamsError as exc:
        raise InvalidInputError(f"Invalid params: {exc}") from exc
    run = StandaloneRun(
        id=new_id(),
        workflow_id=job.id,
        workspace_id=job.workspace_id,
        trigger_id=trigger_id,
        params=params,
        state="queued",
        retry_count=0,
    )
    session.add(run)
    await session.commit()
    await _start_or_undo(
        state,
        session,
        run,
        "StandaloneRunWorkflow",
        StandaloneRunInput(
            standalone_id=job.id, trigger_id=trigger_id, params=params, run_id=run.id
        ),
        f"run-{run.id}",
    )
    return run
