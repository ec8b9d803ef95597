from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import StateDep
from schemas.health import HealthPublic

router = APIRouter(tags=["System"])


@router.get(
    "/api/health",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "A check failed"}},
)
async def health(state: StateDep) -> JSONResponse:
    checks = await state.health.current()
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse({"healthy": healthy, "checks": checks}, status_code=200 if healthy else 503)
