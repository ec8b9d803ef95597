"""Outgoing webhooks and the log of every delivery attempt (webhooks and Slack).

A webhook's signing secret is sealed with the instance key, bound to its row; it is
opened only by the delivery activity, right before signing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.crypto import associated_data, decrypt, encrypt
from store.models import Base, TimestampMixin, new_id
from store.scoping import scoped_select
from store.types import JSONType, utcnow

RESPONSE_BODY_LIMIT = 2000


class Webhook(TimestampMixin, Base):
    __tablename__ = "webhooks"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSONType)
    description: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    secret_nonce: Mapped[bytes | None] = mapped_column(LargeBinary)
    secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_by: Mapped[str | None] = mapped_column(String(36))

    @property
    def has_secret(self) -> bool:
        return self.secret_ciphertext is not None


class WebhookDelivery(Base):
    """One attempt to deliver one event; attempts of a delivery share its `delivery_id`."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("delivery_id", "attempt"),
        Index("ix_webhook_deliveries_webhook_created", "webhook_id", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    delivery_id: Mapped[str] = mapped_column(String(100))
    webhook_id: Mapped[str | None] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    workspace_id: Mapped[str] = mapped_column(String(36))
    target: Mapped[str] = mapped_column(String(10))  # webhook | slack
    event: Mapped[str] = mapped_column(String(60))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    success: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def _aad(row: Webhook) -> bytes:
    return associated_data(
        name=f"webhook:{row.id}", scope="webhook", workspace_id=row.workspace_id, user_id=None
    )


def seal_secret(row: Webhook, *, key: bytes, secret: str | None) -> None:
    if secret is None:
        row.secret_nonce = row.secret_ciphertext = None
        return
    row.secret_nonce, row.secret_ciphertext = encrypt(key, secret, aad=_aad(row))


def open_secret(row: Webhook, *, key: bytes) -> str | None:
    if row.secret_nonce is None or row.secret_ciphertext is None:
        return None
    return decrypt(key, row.secret_nonce, row.secret_ciphertext, aad=_aad(row))


async def list_webhooks(session: AsyncSession, *, workspace_id: str) -> list[Webhook]:
    stmt = scoped_select(Webhook, workspace_id=workspace_id).order_by(Webhook.created_at)
    return list((await session.execute(stmt)).scalars())


async def subscribed(session: AsyncSession, *, workspace_id: str, event: str) -> list[Webhook]:
    """Active webhooks of the workspace that asked for this event."""
    rows = await list_webhooks(session, workspace_id=workspace_id)
    return [w for w in rows if w.active and event in (w.events or [])]


async def record_attempt(session: AsyncSession, *, values: dict[str, Any]) -> None:
    """Once per (delivery, attempt): a retried recording activity adds nothing."""
    body = values.get("response_body")
    row = {
        "id": new_id(),
        "created_at": utcnow(),
        **values,
        "response_body": body[:RESPONSE_BODY_LIMIT] if isinstance(body, str) else None,
    }
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(WebhookDelivery).values(row)
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["delivery_id", "attempt"]))


async def list_deliveries(
    session: AsyncSession, *, workspace_id: str, webhook_id: str, limit: int
) -> list[WebhookDelivery]:
    stmt = (
        scoped_select(WebhookDelivery, workspace_id=workspace_id)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.attempt.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())
