"""Instance-wide flags (today: whether the setup wizard was completed)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base
from store.types import utcnow

SETUP_COMPLETED = "setup_completed_at"


class InstanceSetting(Base):
    __tablename__ = "instance_settings"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


async def setup_completed_at(session: AsyncSession) -> str | None:
    row = await session.get(InstanceSetting, SETUP_COMPLETED)
    return row.value if row else None


async def mark_setup_completed(session: AsyncSession) -> str:
    row = await session.get(InstanceSetting, SETUP_COMPLETED)
    if row is None:
        row = InstanceSetting(key=SETUP_COMPLETED, value=utcnow().isoformat())
        session.add(row)
        await session.flush()
    return row.value
