"""What the lifespan owns: settings, the DB engine, the Temporal client, task starts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.health_checks import HealthChecks
from api.live.access import ConnectionLimit
from api.live.bus import LiveBus
from api.task_starts import TaskStarts
from core.errors import ServiceUnavailableError
from core.settings import Settings
from store.masking import WorkspaceMasks
from temporal.client import connect_client
from temporal.tracing import client_interceptors


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    temporal: Client | None = None
    # Traces (OPTIO_OTEL_EXPORTER): None when off.
    tracing: TracerProvider | None = None
    starts: TaskStarts = field(init=False)
    masks: WorkspaceMasks = field(init=False)
    live: LiveBus = field(init=False)
    live_limit: ConnectionLimit = field(init=False)
    health: HealthChecks = field(init=False)
    _connect_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.masks = WorkspaceMasks(self.settings)
        self.starts = TaskStarts(
            sessions=self.sessions,
            client=self.temporal_client,
            task_queue=self.settings.task_queue,
        )
        self.live = LiveBus(
            sessions=self.sessions,
            database_url=self.settings.database_url_resolved,
            poll_seconds=self.settings.live_poll_seconds,
            client_buffer=self.settings.live_client_buffer,
            retention=timedelta(hours=self.settings.live_retention_hours),
        )
        self.live_limit = ConnectionLimit(per_ip=self.settings.live_max_connections_per_ip)
        self.health = HealthChecks(self.engine, self.temporal_client)

    async def temporal_client(self) -> Client:
        """The client, connecting on first use so the API can start before Temporal."""
        if self.temporal is not None:
            return self.temporal
        async with self._connect_lock:
            if self.temporal is None:
                try:
                    self.temporal = await connect_client(
                        self.settings, interceptors=client_interceptors(self.tracing)
                    )
                except Exception as exc:
                    raise ServiceUnavailableError(
                        f"Temporal is unreachable at {self.settings.temporal_target}: {exc}"
                    ) from exc
        return self.temporal
