"""task starts: tasks.start_requested_at, the API's promise to start a task's workflow

Revision ID: 0007
Revises: 0001 (a sibling of 0002-0006; `alembic upgrade heads` applies them all)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0007"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(
            sa.Column("start_requested_at", store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.create_index("ix_tasks_start_requested_at", ["start_requested_at"])


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_start_requested_at")
        batch.drop_column("start_requested_at")
