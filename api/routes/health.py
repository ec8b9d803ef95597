from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import StateDep

router = APIRouter(tags=["System"])


@router.get("/api/health")
async def health(state: StateDep) -> JSONResponse:
    checks = await state.health.current()
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse({"healthy": healthy, "checks": checks}, status_code=200 if healthy else 503)
