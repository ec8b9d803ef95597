"""The blueprint and standalone kinds behind the polymorphic /api/tasks (inventory §3.1-3.4).

Shared by /api/tasks and the legacy /api/task-configs and /api/jobs aliases.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.repo_access import usable_repo_url
from api.schedules import delete_schedule
from api.state import AppState
from core.errors import ConflictError, InvalidInputError
from core.params_schema import ParamsError, check_schema
from core.settings import Settings
from core.templating import TemplateError, validate
from schemas.auth import Principal
from schemas.blueprints import (
    BlueprintCreate,
    BlueprintPublic,
    BlueprintUpdate,
    StandaloneCreate,
    StandalonePublic,
    StandaloneUpdate,
)
from store.blueprints import (
    PromptTemplate,
    StandaloneTask,
    TaskConfig,
    list_runs,
    list_triggers,
)
from store.changes import apply_changes

Kind = TaskConfig | StandaloneTask
KIND_NAMES = {TaskConfig: "repo-blueprint", StandaloneTask: "standalone"}


def kind_of(row: Kind) -> str:
    return KIND_NAMES[type(row)]


def typed(row: Kind) -> BlueprintPublic | StandalonePublic:
    model = BlueprintPublic if isinstance(row, TaskConfig) else StandalonePublic
    return model.model_validate(row)


def public(row: Kind) -> dict[str, Any]:
    return typed(row).model_dump(mode="json", by_alias=True)


def parse(model: type[BaseModel], body: dict[str, Any]) -> Any:
    """Validate a body the route received untyped, with the usual 400 envelope."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from exc


def _check_template(field: str, text: str | None) -> None:
    if text is not None:
        try:
            validate(text)
        except TemplateError as exc:
            raise InvalidInputError(f"Invalid template in {field}: {exc}") from exc


async def _check_prompt_template(session: AsyncSession, *, workspace_id: str, id: str) -> None:
    row = await session.get(PromptTemplate, id)
    if row is None or row.workspace_id != workspace_id:
        raise InvalidInputError(f"promptTemplateId {id} does not name a prompt template")


async def _save(session: AsyncSession, row: Kind) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise ConflictError(f'A task named "{row.name}" already exists') from exc


async def create_blueprint(
    session: AsyncSession, principal: Principal, body: BlueprintCreate, *, settings: Settings
) -> TaskConfig:
    _check_template("title", body.title)
    _check_template("prompt", body.prompt)
    if body.prompt_template_id:
        await _check_prompt_template(
            session, workspace_id=principal.workspace_id, id=body.prompt_template_id
        )
    row = TaskConfig(
        workspace_id=principal.workspace_id,
        name=body.name or body.title or "",
        description=body.description,
        title=body.title or body.name or "",
        prompt=body.prompt or "",
        prompt_template_id=body.prompt_template_id,
        repo_url=await usable_repo_url(
            session, settings=settings, workspace_id=principal.workspace_id, value=body.repo_url
        ),
        repo_branch=body.repo_branch,
        agent_type=body.agent_type,
        max_retries=3 if body.max_retries is None else body.max_retries,
        priority=body.priority or 100,
        enabled=True if body.enabled is None else body.enabled,
        max_cost_usd=body.max_cost_usd,
        created_by=principal.user_id,
    )
    session.add(row)
    await _save(session, row)
    return row


def _check_params_schema(schema: dict[str, Any] | None) -> None:
    if schema is not None:
        try:
            check_schema(schema)
        except ParamsError as exc:
            raise InvalidInputError(str(exc)) from exc


async def create_standalone(
    session: AsyncSession, principal: Principal, body: StandaloneCreate
) -> StandaloneTask:
    _check_template("prompt", body.prompt_template)
    _check_params_schema(body.params_schema)
    values = body.model_dump(exclude_none=True, exclude={"type", "agent_type"})
    row = StandaloneTask(
        workspace_id=principal.workspace_id,
        agent_runtime=body.agent_type or "claude-code",
        created_by=principal.user_id,
        **values,
    )
    session.add(row)
    await _save(session, row)
    return row


async def create_kind(
    session: AsyncSession, principal: Principal, body: dict[str, Any], *, settings: Settings
) -> BlueprintPublic | StandalonePublic:
    if body.get("type") == "repo-blueprint":
        blueprint = parse(BlueprintCreate, body)
        row: Kind = await create_blueprint(session, principal, blueprint, settings=settings)
    else:
        row = await create_standalone(session, principal, parse(StandaloneCreate, body))
    return typed(row)


async def update_kind(
    session: AsyncSession, row: Kind, body: dict[str, Any], *, settings: Settings
) -> BlueprintPublic | StandalonePublic:
    if isinstance(row, TaskConfig):
        changes = parse(BlueprintUpdate, body).model_dump(exclude_unset=True)
        _check_template("title", changes.get("title"))
        _check_template("prompt", changes.get("prompt"))
        if changes.get("prompt_template_id"):
            await _check_prompt_template(
                session, workspace_id=row.workspace_id, id=changes["prompt_template_id"]
            )
        if changes.get("repo_url"):
            changes["repo_url"] = await usable_repo_url(
                session, settings=settings, workspace_id=row.workspace_id, value=changes["repo_url"]
            )
    else:
        changes = parse(StandaloneUpdate, body).model_dump(exclude_unset=True)
        _check_template("prompt", changes.get("prompt_template"))
        _check_params_schema(changes.get("params_schema"))
        if "agent_type" in changes:
            changes["agent_runtime"] = changes.pop("agent_type") or "claude-code"
    apply_changes(row, changes)
    await _save(session, row)
    return typed(row)


async def delete_kind(state: AppState, session: AsyncSession, row: Kind) -> None:
    """Delete the task and its triggers; schedules first, so none fires for a ghost.

    Live standalone runs are cancelled (their sandboxes stopped); a blueprint's repo
    tasks are ordinary tasks and live on.
    """
    triggers = await list_triggers(session, target_id=row.id)
    runs = await list_runs(session, standalone_id=row.id, limit=1000)
    live = [r for r in runs if r.state in ("queued", "running")]
    if live or any(t.type == "schedule" for t in triggers):
        client = await state.temporal_client()
        for trigger in triggers:
            if trigger.type == "schedule":
                await delete_schedule(client, trigger.id)
        for run in live:
            await cancel_quietly(client, f"run-{run.id}")
    for trigger in triggers:
        await session.delete(trigger)
    await session.delete(row)
    await session.commit()


async def cancel_quietly(client: Client, workflow_id: str) -> None:
    try:
        await client.get_workflow_handle(workflow_id).cancel()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
