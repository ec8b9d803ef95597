"""Incoming webhook triggers: POST /api/hooks/<path> (public; inventory §3.5).

With a secret, `X-Optio-Signature` must be the hex HMAC-SHA256 of the raw body
(a `sha256=` prefix is accepted too); without one the path itself is the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api import run_commands
from api.deps import SessionDep, StateDep
from api.routes.blueprints import run_public
from core.errors import InvalidInputError, NotFoundError, UnauthorizedError
from store.blueprints import StandaloneTask, TaskConfig, find_webhook

router = APIRouter(tags=["Tasks"])
MAX_BODY = 1024 * 1024


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    given = header.strip().removeprefix("sha256=")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(given.lower(), expected)


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


@router.post("/api/hooks/{path:path}", status_code=202)
async def receive(path: str, request: Request, session: SessionDep, state: StateDep) -> Any:
    trigger = await find_webhook(session, path=path)
    if trigger is None:
        raise NotFoundError("No webhook trigger at this path")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise InvalidInputError("The webhook body is larger than 1 MiB")
    secret = trigger.config.get("secret")
    if secret and not signature_ok(secret, raw, request.headers.get("x-optio-signature")):
        raise UnauthorizedError("Invalid or missing X-Optio-Signature")
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise InvalidInputError("The webhook body is not JSON") from exc
    params = map_params(body, trigger.param_mapping)
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
