"""Triggers of blueprints and standalone tasks (inventory §3.5), shared by every alias.

A `schedule` trigger is a row plus a Temporal Schedule; the row is committed only
once the schedule exists, and the schedule is deleted before the row.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.service import RPCError

from api.schedules import create_schedule, delete_schedule, fire_times, update_schedule
from api.state import AppState
from core.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    ServiceUnavailableError,
)
from core.params_schema import ParamsError, validate_params
from core.schedules import ScheduleError, validate_cron, validate_timezone
from schemas.blueprints import TriggerCreate, TriggerPublic, TriggerUpdate
from store.blueprints import StandaloneTask, TaskConfig, Trigger, list_triggers

Target = TaskConfig | StandaloneTask
ALLOWED = {
    "task_config": ("manual", "schedule", "webhook", "ticket"),
    "job": ("manual", "schedule", "webhook"),
}
KIND_LABEL = {"task_config": "repo blueprints", "job": "standalone tasks"}
WEBHOOK_PATH = re.compile(r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$")
REDACTED = "********"


def target_type(target: Target) -> str:
    return "task_config" if isinstance(target, TaskConfig) else "job"


def _bad(field: str, problem: str) -> InvalidInputError:
    return InvalidInputError(
        f"Invalid {field}: {problem}", details=[{"field": field, "message": problem}]
    )


def _config(
    kind: str, config: dict[str, Any], old: dict[str, Any] | None, *, admin: bool
) -> dict[str, Any]:
    """The trigger's config, checked and reduced to the keys its type uses."""
    if kind == "schedule":
        cron = config.get("cronExpression")
        if not isinstance(cron, str):
            raise _bad("config.cronExpression", "a cron expression string is required")
        try:
            out: dict[str, Any] = {"cronExpression": validate_cron(cron)}
            if config.get("timezone"):
                out["timezone"] = validate_timezone(str(config["timezone"]))
        except ScheduleError as exc:
            field = "config.timezone" if "time zone" in str(exc) else "config.cronExpression"
            raise _bad(field, str(exc)) from exc
        return out
    if kind == "webhook":
        path = config.get("path")
        if (
            not isinstance(path, str)
            or not WEBHOOK_PATH.match(path)
            or len(path) > 200
            or {".", ".."} & set(path.split("/"))
        ):
            raise _bad("config.path", "a path of letters, digits, . _ ~ - and / is required")
        secret = config.get("secret")
        if secret == REDACTED and old is not None:
            secret = old.get("secret")  # a config read back and sent again keeps its secret
        if secret is not None and (not isinstance(secret, str) or len(secret) < 8):
            raise _bad("config.secret", "must be a string of at least 8 characters")
        if secret:
            return {"path": path, "secret": secret}
        return {"path": path, "public": _public(config.get("public"), admin=admin)}
    if kind == "ticket":
        source, labels = config.get("source"), config.get("labels")
        if not isinstance(source, str) or not source:
            raise _bad("config.source", "a ticket source is required")
        if labels is not None and not (
            isinstance(labels, list) and all(isinstance(x, str) for x in labels)
        ):
            raise _bad("config.labels", "must be a list of strings")
        return {"source": source, **({"labels": labels} if labels is not None else {})}
    return dict(config)


def _public(value: object, *, admin: bool) -> bool:
    """Anyone who knows the path can fire a public trigger: only an admin may say so."""
    if value is not True:
        raise _bad(
            "config.secret",
            "a webhook trigger needs a secret of at least 8 characters "
            '(or an admin may mark it public with "public": true)',
        )
    if not admin:
        raise ForbiddenError("Only an admin can make a webhook trigger public (without a secret)")
    return True


def _check_mapping(trigger: Trigger, target: Target) -> None:
    mapping = trigger.param_mapping
    if not mapping:
        return
    if trigger.type == "webhook":
        for name, path in mapping.items():
            if not isinstance(path, str) or not path.startswith("$"):
                raise _bad(f"paramMapping.{name}", 'must be a JSON path like "$.a.b"')
    elif trigger.type == "schedule" and isinstance(target, StandaloneTask):
        try:  # schedule params are literal: check them now, not at 3 a.m.
            validate_params(target.params_schema, mapping)
        except ParamsError as exc:
            raise _bad("paramMapping", str(exc)) from exc


async def public(state: AppState, trigger: Trigger) -> dict[str, Any]:
    out = TriggerPublic.model_validate(trigger).model_dump(mode="json", by_alias=True)
    if "secret" in out["config"]:
        out["config"]["secret"] = REDACTED
    if trigger.type == "schedule":
        try:
            last, upcoming = await fire_times(await state.temporal_client(), trigger.id)
        except (RPCError, ServiceUnavailableError):
            return out  # Temporal unreachable: the row's copy is all we have
        out["lastFiredAt"] = last.isoformat() if last else None
        out["nextFireAt"] = upcoming.isoformat() if upcoming else None
    return out


async def list_for(state: AppState, session: AsyncSession, target: Target) -> list[dict[str, Any]]:
    return [await public(state, t) for t in await list_triggers(session, target_id=target.id)]


async def create(
    state: AppState, session: AsyncSession, target: Target, body: TriggerCreate, *, admin: bool
) -> dict[str, Any]:
    ttype = target_type(target)
    if body.type not in ALLOWED[ttype]:
        raise _bad("type", f'"{body.type}" triggers are not available on {KIND_LABEL[ttype]}')
    existing = await list_triggers(session, target_id=target.id)
    if any(t.type == body.type for t in existing):
        raise ConflictError(f'A trigger of type "{body.type}" already exists')
    config = _config(body.type, body.config, None, admin=admin)
    trigger = Trigger(
        workspace_id=target.workspace_id,
        target_type=ttype,
        target_id=target.id,
        type=body.type,
        config=config,
        param_mapping=body.param_mapping,
        webhook_path=config.get("path") if body.type == "webhook" else None,
        enabled=body.enabled,
    )
    _check_mapping(trigger, target)
    session.add(trigger)
    await _flush(session, trigger)
    if trigger.type == "schedule":
        await _with_temporal(state, session, create_schedule, trigger)
    await session.commit()
    return await public(state, trigger)


async def _flush(session: AsyncSession, trigger: Trigger) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        if trigger.webhook_path:
            raise _bad("config.path", f'"{trigger.webhook_path}" is already in use') from exc
        raise ConflictError(f'A trigger of type "{trigger.type}" already exists') from exc


async def _with_temporal(state: AppState, session: AsyncSession, op: Any, trigger: Trigger) -> None:
    try:
        await op(await state.temporal_client(), trigger, task_queue=state.settings.task_queue)
    except RPCError as exc:
        await session.rollback()
        raise ServiceUnavailableError(f"Temporal refused the schedule: {exc.message}") from exc
    except ServiceUnavailableError:
        await session.rollback()
        raise


async def update(
    state: AppState,
    session: AsyncSession,
    target: Target,
    trigger: Trigger,
    body: TriggerUpdate,
    *,
    admin: bool,
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if trigger.config.get("public") and not admin and {"config", "param_mapping"} & set(changes):
        raise ForbiddenError("Only an admin can change a public webhook trigger")
    if changes.get("config") is not None:
        trigger.config = _config(trigger.type, changes["config"], trigger.config, admin=admin)
        if trigger.type == "webhook":
            trigger.webhook_path = trigger.config["path"]
    if "param_mapping" in changes:
        trigger.param_mapping = changes["param_mapping"]
    if changes.get("enabled") is not None:
        trigger.enabled = changes["enabled"]
    _check_mapping(trigger, target)
    await _flush(session, trigger)
    if trigger.type == "schedule":
        await _with_temporal(state, session, update_schedule, trigger)
    await session.commit()
    return await public(state, trigger)


async def delete(state: AppState, session: AsyncSession, trigger: Trigger) -> None:
    if trigger.type == "schedule":
        await delete_schedule(await state.temporal_client(), trigger.id)
    await session.delete(trigger)
    await session.commit()
