"""live events: the table /ws/* and the SSE streams tail, with a NOTIFY on PostgreSQL

Revision ID: 0011
Revises: 0001 (a sibling of 0002-0007; `alembic upgrade heads` applies them all)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0011"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("topic", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("type", sa.String(60), nullable=False),
        sa.Column("payload", store.types.JSONType, nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_events")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_live_events_topic_id", "live_events", ["topic", "id"])
    op.create_index(
        "ix_live_events_workspace_kind_id", "live_events", ["workspace_id", "kind", "id"]
    )
    op.create_index("ix_live_events_created_at", "live_events", ["created_at"])
    if op.get_bind().dialect.name == "postgresql":
        # One NOTIFY per inserting statement, delivered at commit (and merged within a
        # transaction by PostgreSQL): listeners wake and read the new rows by id.
        op.execute(
            """
            CREATE FUNCTION optio_live_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('optio_live', '');
                RETURN NULL;
            END $$;
            """
        )
        op.execute(
            "CREATE TRIGGER live_events_notify AFTER INSERT ON live_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION optio_live_notify()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS live_events_notify ON live_events")
        op.execute("DROP FUNCTION IF EXISTS optio_live_notify()")
    op.drop_table("live_events")
