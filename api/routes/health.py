from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import StateDep
from schemas.health import HealthPublic

router = APIRouter(tags=["System"])


@router.get(
    "/api/health",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "A check failed"}},
)
async def health(state: StateDep) -> JSONResponse:
    checks = {"database": "ok", "temporal": "ok"}
    try:
        async with state.engine.connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=5)
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        client = await state.temporal_client()
        await asyncio.wait_for(client.service_client.check_health(), timeout=5)
    except Exception as exc:
        checks["temporal"] = f"error: {getattr(exc, 'message', None) or type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse({"healthy": healthy, "checks": checks}, status_code=200 if healthy else 503)
