"""Engine and sessions; SQLite gets WAL and a busy timeout so API and worker can share it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from store import sqlite_reads
from store.sqlite_writes import queue_writers


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """A pooled engine. Pooled PostgreSQL connections are not tested before use
    (`pool_pre_ping`, a round trip at every checkout: some 27 per task in the worker and
    two per API request, measured in the lifecycle bench). After a database restart the
    first use of a dead connection fails, SQLAlchemy drops every connection of that
    generation, an activity is retried by Temporal and the API answers 503 "try again"
    (api/errors.py)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, connect_args={"timeout": 30, "async_creator_fn": sqlite_reads.connect}
        )
        _tune_sqlite(engine)
        queue_writers(engine)
        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session whose work commits at the end of the block, or rolls back on error."""
    async with sessions() as session, session.begin():
        yield session


@asynccontextmanager
async def orm_session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """An ORM session on a connection a read already holds (api/deps.py `get_reader`),
    for the rare path of such a read that loads ORM objects; closing it leaves the
    connection to its owner."""
    async with AsyncSession(bind=connection, expire_on_commit=False) as session:
        yield session
