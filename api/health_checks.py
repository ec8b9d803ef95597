"""GET /api/health's checks: the database and Temporal, each one round trip.

A load balancer or a dashboard may ask many times a second; each answer costs a pooled
connection's query and a gRPC call (about 2 ms of the API's CPU, measured by
`python -m bench.api`). A healthy answer is therefore reused for FRESH_S, and requests
arriving while a check runs wait for that one. A failure is never reused: the next
request checks again, so recovery shows at once and an outage within FRESH_S.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

FRESH_S = 1.0
TIMEOUT_S = 5.0


class HealthChecks:
    def __init__(self, engine: AsyncEngine, temporal: Callable[[], Awaitable[Client]]) -> None:
        self._engine = engine
        self._temporal = temporal
        self._healthy_at: float | None = None
        self._running: asyncio.Task[dict[str, str]] | None = None

    async def current(self) -> dict[str, str]:
        if self._healthy_at is not None and time.monotonic() - self._healthy_at < FRESH_S:
            return {"database": "ok", "temporal": "ok"}
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._check())
        # Shielded: a client that goes away must not cancel the others' check.
        return dict(await asyncio.shield(self._running))

    async def _check(self) -> dict[str, str]:
        started = time.monotonic()
        checks = {"database": "ok", "temporal": "ok"}
        try:
            async with self._engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=TIMEOUT_S)
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            client = await self._temporal()
            await asyncio.wait_for(client.service_client.check_health(), timeout=TIMEOUT_S)
        except Exception as exc:
            checks["temporal"] = f"error: {getattr(exc, 'message', None) or type(exc).__name__}"
        healthy = all(v == "ok" for v in checks.values())
        self._healthy_at = started if healthy else None
        return checks
