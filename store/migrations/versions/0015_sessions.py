"""sessions: interactive sessions, their chat events and PRs; single-use WebSocket tokens

Revision ID: 0015
Revises: 0001 (a sibling of the other revisions; `alembic upgrade heads` applies them all)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0015"
down_revision = "0001"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, store.types.UTCDateTime(timezone=True), nullable=nullable)


def _session_fk(table: str) -> sa.Column[object]:
    return sa.Column(
        "session_id",
        sa.String(36),
        sa.ForeignKey(
            "interactive_sessions.id",
            ondelete="CASCADE",
            name=f"fk_{table}_session_id_interactive_sessions",
        ),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "interactive_sessions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("repo_url", sa.String(500), nullable=False),
        sa.Column("base_branch", sa.String(200), nullable=False),
        sa.Column("branch", sa.String(200), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("agent_type", sa.String(30), nullable=False),
        sa.Column("agent_session_id", sa.String(200), nullable=True),
        sa.Column("model", sa.String(100), nullable=True),
        sa.Column("cost_usd", sa.String(40), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("end_reason", sa.String(20), nullable=True),
        _when("created_at", False),
        _when("last_activity_at", False),
        _when("ended_at", True),
    )
    op.create_index(
        "ix_interactive_sessions_ws_state", "interactive_sessions", ["workspace_id", "state"]
    )
    op.create_table(
        "session_chat_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            primary_key=True,
        ),
        _session_fk("session_chat_events"),
        sa.Column("stream", sa.String(10), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("log_type", sa.String(20), nullable=False),
        sa.Column("metadata", store.types.JSONType, nullable=True),
        _when("timestamp", False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_session_chat_events_session_id", "session_chat_events", ["session_id"])
    op.create_table(
        "session_prs",
        sa.Column("id", sa.String(36), primary_key=True),
        _session_fk("session_prs"),
        sa.Column("pr_url", sa.String(500), nullable=False),
        sa.Column("pr_number", sa.Integer(), nullable=False),
        _when("created_at", False),
        sa.UniqueConstraint("session_id", "pr_url", name="uq_session_prs_session_id_pr_url"),
    )
    op.create_index("ix_session_prs_session_id", "session_prs", ["session_id"])
    op.create_table(
        "ws_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        _when("expires_at", False),
        _when("used_at", True),
    )
    op.create_index("ix_ws_tokens_expires_at", "ws_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_table("ws_tokens")
    op.drop_table("session_prs")
    op.drop_table("session_chat_events")
    op.drop_table("interactive_sessions")
