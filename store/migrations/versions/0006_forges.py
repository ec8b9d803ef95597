"""forges: repo settings for GitHub/GitLab PR automation and handled webhook deliveries

Revision ID: 0006
Revises: 0001 (a sibling of 0002-0005; `alembic upgrade heads` applies them all)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repos") as batch:
        batch.add_column(
            sa.Column("require_approval", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("review_enabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("review_trigger", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("review_prompt_template", sa.Text(), nullable=True))
        batch.add_column(sa.Column("forge_api_url", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("webhook_seen_at", store.types.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "forge_deliveries",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("received_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forge_deliveries")),
    )
    op.create_index(
        op.f("ix_forge_deliveries_received_at"), "forge_deliveries", ["received_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_forge_deliveries_received_at"), table_name="forge_deliveries")
    op.drop_table("forge_deliveries")
    with op.batch_alter_table("repos") as batch:
        for column in (
            "webhook_seen_at",
            "forge_api_url",
            "review_prompt_template",
            "review_trigger",
            "review_enabled",
            "require_approval",
        ):
            batch.drop_column(column)
