"""Incoming webhook triggers: POST /api/hooks/<path> (public; inventory §3.5).

A trigger with a secret takes signed deliveries only: `X-Optio-Timestamp` within
`OPTIO_HOOK_TOLERANCE_SECONDS` of our clock, an `X-Optio-Delivery` id not seen in that
window, and `X-Optio-Signature` over both and the raw body (core/hook_signing.py). A
trigger without one answers only if an admin marked it public.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api import run_commands
from api.deps import SessionDep, StateDep
from api.routes.blueprints import run_public
from core.errors import ForbiddenError, InvalidInputError, NotFoundError, UnauthorizedError
from core.hook_signing import (
    DELIVERY_HEADER,
    DELIVERY_ID,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_ok,
)
from core.settings import Settings
from schemas.task_views import HookRunStarted, HookTaskStarted
from schemas.webhooks import ForgeDuplicate
from store.blueprints import StandaloneTask, TaskConfig, Trigger, find_webhook
from store.deliveries import delivery_key, forget_delivery, remember_delivery
from store.types import utcnow

router = APIRouter(tags=["Tasks"])
MAX_BODY = 1024 * 1024
DUPLICATE = {"accepted": False, "duplicate": True}


def _signed_delivery(secret: str, raw: bytes, request: Request, settings: Settings) -> str:
    """The delivery id of a correctly signed, fresh delivery; 401 otherwise."""
    stamp = request.headers.get(TIMESTAMP_HEADER, "")
    delivery = request.headers.get(DELIVERY_HEADER, "")
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not (stamp and delivery and given):
        raise UnauthorizedError(
            f"A signed delivery needs {TIMESTAMP_HEADER}, {DELIVERY_HEADER} and "
            f"{SIGNATURE_HEADER} (docs/blueprints.md)"
        )
    if not stamp.isdigit() or not DELIVERY_ID.match(delivery):
        raise UnauthorizedError(
            f"{TIMESTAMP_HEADER} must be Unix seconds and {DELIVERY_HEADER} at most 128 "
            "letters, digits, . _ : -"
        )
    if not signature_ok(secret, timestamp=stamp, delivery=delivery, body=raw, given=given):
        raise UnauthorizedError(f"Invalid {SIGNATURE_HEADER}")
    if abs(time.time() - int(stamp)) > settings.hook_tolerance_seconds:
        raise UnauthorizedError(
            f"Stale delivery: {TIMESTAMP_HEADER} is more than "
            f"{settings.hook_tolerance_seconds} s away from the server's clock"
        )
    return delivery


def _delivery_of(trigger: Trigger, raw: bytes, request: Request, settings: Settings) -> str | None:
    secret = trigger.config.get("secret")
    if secret:
        return _signed_delivery(secret, raw, request, settings)
    if not trigger.config.get("public"):
        # A trigger saved before secrets were required: nobody vouched for it.
        raise ForbiddenError(
            "This webhook trigger has no secret; an admin must give it one "
            'or mark it public ("config": {"public": true})'
        )
    delivery = request.headers.get(DELIVERY_HEADER)
    if delivery is not None and not DELIVERY_ID.match(delivery):
        raise InvalidInputError(f"{DELIVERY_HEADER} must be at most 128 letters, digits, . _ : -")
    return delivery


def extract(body: Any, path: str) -> Any:
    """`$.a.b` over the JSON body: dotted keys only, as in the reference (no arrays)."""
    value = body
    for part in path.removeprefix("$").lstrip(".").split("."):
        if not part:
            continue
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def map_params(body: Any, mapping: dict[str, Any] | None) -> dict[str, Any]:
    if mapping:
        return {name: extract(body, str(path)) for name, path in mapping.items()}
    return body if isinstance(body, dict) else {"body": body}


@router.post(
    "/api/hooks/{path:path}",
    status_code=202,
    response_model=HookTaskStarted | HookRunStarted | ForgeDuplicate,
)
async def receive(path: str, request: Request, session: SessionDep, state: StateDep) -> Any:
    trigger = await find_webhook(session, path=path)
    if trigger is None:
        raise NotFoundError("No webhook trigger at this path")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise InvalidInputError("The webhook body is larger than 1 MiB")
    delivery = _delivery_of(trigger, raw, request, state.settings)
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise InvalidInputError("The webhook body is not JSON") from exc
    params = map_params(body, trigger.param_mapping)
    key = delivery_key(trigger_id=trigger.id, delivery=delivery) if delivery else None
    if key is not None:
        window = timedelta(seconds=2 * state.settings.hook_tolerance_seconds)
        if not await remember_delivery(session, key=key, forget_before=utcnow() - window):
            return JSONResponse(DUPLICATE, status_code=202)
    try:
        return await _start(state, session, trigger, params)
    except Exception:
        if key is not None:
            await forget_delivery(session, key=key)
        raise


async def _start(
    state: StateDep, session: SessionDep, trigger: Trigger, params: dict[str, Any]
) -> JSONResponse:
    if trigger.target_type == "task_config":
        config = await session.get(TaskConfig, trigger.target_id)
        if config is None:
            raise NotFoundError("No webhook trigger at this path")
        task = await run_commands.start_blueprint_run(
            state=state,
            session=session,
            config=config,
            trigger_id=trigger.id,
            params=params,
            source="webhook",
        )
        return JSONResponse({"runId": task.id, "taskId": task.id}, status_code=202)
    job = await session.get(StandaloneTask, trigger.target_id)
    if job is None:
        raise NotFoundError("No webhook trigger at this path")
    run = await run_commands.start_standalone_run(
        state=state, session=session, job=job, trigger_id=trigger.id, params=params
    )
    return JSONResponse({"runId": run.id, "run": run_public(run)}, status_code=202)
