"""GET /api/health: public, and 503 with the same shape when a check fails."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HealthChecks(BaseModel):
    database: str = Field(description='"ok", or "error: <what failed>"')
    temporal: str


class HealthPublic(BaseModel):
    healthy: bool
    checks: HealthChecks
