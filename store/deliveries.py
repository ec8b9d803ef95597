"""Delivery ids already taken in by POST /api/hooks/<path>, kept for the replay window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import ForgeDelivery

PREFIX = "hook:"


def delivery_key(*, trigger_id: str, delivery: str) -> str:
    return f"{PREFIX}{trigger_id}:{delivery}"


async def remember_delivery(session: AsyncSession, *, key: str, forget_before: datetime) -> bool:
    """False when `key` was seen already; ids older than `forget_before` are dropped first
    (their timestamps are stale by then, so a replay is refused without them)."""
    await session.execute(
        delete(ForgeDelivery).where(
            ForgeDelivery.id.startswith(PREFIX), ForgeDelivery.received_at < forget_before
        )
    )
    try:
        async with session.begin_nested():
            session.add(ForgeDelivery(id=key))
    except IntegrityError:
        return False
    return True


async def forget_delivery(session: AsyncSession, *, key: str) -> None:
    """A delivery whose run could not start may be sent again."""
    await session.rollback()
    await session.execute(delete(ForgeDelivery).where(ForgeDelivery.id == key))
    await session.commit()
