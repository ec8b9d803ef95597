"""tickets: per-workspace ticket providers and the links from tickets to their tasks

Revision ID: 0013
Revises: 0001 (a sibling of the other revisions; `alembic upgrade heads` applies them all)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0013"
down_revision = "0001"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "ticket_providers",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column(
            "workspace_id",
            sa.String(36),
            sa.ForeignKey(
                "workspaces.id",
                ondelete="CASCADE",
                name="fk_ticket_providers_workspace_id_workspaces",
            ),
            nullable=False,
        ),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("config", store.types.JSONType, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("sync_interval_seconds", sa.Integer, nullable=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        _when("last_error_at"),
        sa.Column("auth_failed", sa.Boolean, nullable=False),
        _when("last_synced_at"),
        sa.Column("created_by", sa.String(36), nullable=True),
        _when("created_at", False),
        _when("updated_at", False),
        sa.PrimaryKeyConstraint("id", name="pk_ticket_providers"),
    )
    op.create_index("ix_ticket_providers_workspace_id", "ticket_providers", ["workspace_id"])
    op.create_table(
        "ticket_links",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column(
            "workspace_id",
            sa.String(36),
            sa.ForeignKey(
                "workspaces.id", ondelete="CASCADE", name="fk_ticket_links_workspace_id_workspaces"
            ),
            nullable=False,
        ),
        sa.Column(
            "provider_id",
            sa.String(36),
            sa.ForeignKey(
                "ticket_providers.id",
                ondelete="SET NULL",
                name="fk_ticket_links_provider_id_ticket_providers",
            ),
            nullable=True,
        ),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("external_id", sa.String(300), nullable=False),
        sa.Column("repo_url", sa.Text, nullable=False),
        sa.Column(
            "task_id",
            sa.String(36),
            sa.ForeignKey("tasks.id", ondelete="CASCADE", name="fk_ticket_links_task_id_tasks"),
            nullable=False,
        ),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("title", sa.Text, nullable=False),
        _when("started_comment_at"),
        _when("finished_at"),
        _when("created_at", False),
        sa.PrimaryKeyConstraint("id", name="pk_ticket_links"),
        sa.UniqueConstraint(
            "workspace_id",
            "source",
            "external_id",
            "repo_url",
            name="uq_ticket_links_workspace_id_source_external_id_repo_url",
        ),
    )
    op.create_index("ix_ticket_links_workspace_id", "ticket_links", ["workspace_id"])
    op.create_index("ix_ticket_links_task", "ticket_links", ["task_id"])


def downgrade() -> None:
    op.drop_table("ticket_links")
    op.drop_table("ticket_providers")
