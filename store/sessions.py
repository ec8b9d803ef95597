"""Interactive sessions (inventory §3.19): a person's own branch and worktree of a
repository, with a terminal and an agent chat; owned by a SessionWorkflow.

Also the single-use WebSocket tokens, which are minted for the same browser clients.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, new_id
from store.types import JSONType, utcnow

ACTIVE_STATES = ("provisioning", "active")


class InteractiveSession(Base):
    __tablename__ = "interactive_sessions"
    __table_args__ = (Index("ix_interactive_sessions_ws_state", "workspace_id", "state"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(36))
    user_id: Mapped[str] = mapped_column(String(36))
    repo_url: Mapped[str] = mapped_column(String(500))
    base_branch: Mapped[str] = mapped_column(String(200))
    branch: Mapped[str] = mapped_column(String(200))
    # provisioning -> active -> ended (or failed when the worktree could not be made)
    state: Mapped[str] = mapped_column(String(20), default="provisioning")
    agent_type: Mapped[str] = mapped_column(String(30), default="claude-code")
    # The agent's own session, continued by every chat message (claude --resume).
    agent_session_id: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(100))
    cost_usd: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    end_reason: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]


class SessionChatEvent(Base):
    __tablename__ = "session_chat_events"
    __table_args__ = ({"sqlite_autoincrement": True},)
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    session_id: Mapped[str] = mapped_column(
        ForeignKey("interactive_sessions.id", ondelete="CASCADE"), index=True
    )
    stream: Mapped[str] = mapped_column(String(10), default="stdout")
    content: Mapped[str] = mapped_column(Text)
    log_type: Mapped[str] = mapped_column(String(20))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)


class SessionPr(Base):
    __tablename__ = "session_prs"
    __table_args__ = (UniqueConstraint("session_id", "pr_url"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("interactive_sessions.id", ondelete="CASCADE"), index=True
    )
    pr_url: Mapped[str] = mapped_column(String(500))
    pr_number: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WsToken(Base):
    """A WebSocket credential for one connection: stored as a hash, used once."""

    __tablename__ = "ws_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36))
    workspace_id: Mapped[str] = mapped_column(String(36))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]
