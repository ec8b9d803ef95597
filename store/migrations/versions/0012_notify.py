"""notify: outgoing webhooks and their delivery log, per-run costs, budgets, Slack settings

Revision ID: 0012
Revises: 0001 (a sibling of the others; after 0003, whose task_configs it alters)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0012"
down_revision = "0001"
branch_labels = None
# task_configs comes from 0003.
depends_on = ("0003",)


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", store.types.JSONType, nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("secret_nonce", sa.LargeBinary(), nullable=True),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_webhooks_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_index("ix_webhooks_workspace_id", "webhooks", ["workspace_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("delivery_id", sa.String(length=100), nullable=False),
        sa.Column("webhook_id", sa.String(length=36), nullable=True),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("target", sa.String(length=10), nullable=False),
        sa.Column("event", sa.String(length=60), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_webhook_deliveries_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "delivery_id", "attempt", name=op.f("uq_webhook_deliveries_delivery_id_attempt")
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_webhook_created", "webhook_deliveries", ["webhook_id", "created_at"]
    )
    with op.batch_alter_table("agent_runs") as batch:
        batch.add_column(sa.Column("cost_usd", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("input_tokens", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("output_tokens", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("model_used", sa.String(length=100), nullable=True))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("max_cost_usd", sa.String(length=32), nullable=True))
    with op.batch_alter_table("repos") as batch:
        batch.add_column(sa.Column("max_cost_usd", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("slack_notify_on", store.types.JSONType, nullable=True))
    with op.batch_alter_table("task_configs") as batch:
        batch.add_column(sa.Column("max_cost_usd", sa.String(length=32), nullable=True))
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("monthly_budget_usd", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("budget_notified_month", sa.String(length=7), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("budget_notified_month")
        batch.drop_column("monthly_budget_usd")
    with op.batch_alter_table("task_configs") as batch:
        batch.drop_column("max_cost_usd")
    with op.batch_alter_table("repos") as batch:
        batch.drop_column("slack_notify_on")
        batch.drop_column("max_cost_usd")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("max_cost_usd")
    with op.batch_alter_table("agent_runs") as batch:
        for name in ("model_used", "output_tokens", "input_tokens", "cost_usd"):
            batch.drop_column(name)
    op.drop_index("ix_webhook_deliveries_webhook_created", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhooks_workspace_id", table_name="webhooks")
    op.drop_table("webhooks")
