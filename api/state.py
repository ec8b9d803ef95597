"""What the lifespan owns: settings, the DB engine, the Temporal client, task starts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.task_starts import TaskStarts
from core.errors import ServiceUnavailableError
from core.settings import Settings
from store.masking import WorkspaceMasks


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    temporal: Client | None = None
    starts: TaskStarts = field(init=False)
    masks: WorkspaceMasks = field(init=False)
    _connect_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.masks = WorkspaceMasks(self.settings)
        self.starts = TaskStarts(
            sessions=self.sessions,
            client=self.temporal_client,
            task_queue=self.settings.task_queue,
        )

    async def temporal_client(self) -> Client:
        """The client, connecting on first use so the API can start before Temporal."""
        if self.temporal is not None:
            return self.temporal
        async with self._connect_lock:
            if self.temporal is None:
                try:
                    self.temporal = await Client.connect(
                        self.settings.temporal_target,
                        namespace=self.settings.temporal_namespace,
                    )
                except Exception as exc:
                    raise ServiceUnavailableError(
                        f"Temporal is unreachable at {self.settings.temporal_target}: {exc}"
                    ) from exc
        return self.temporal
