"""attempt costs: what a standalone run's finished attempts cost before the current one

Revision ID: 0018
Revises: 0001 (a sibling of the other revisions; `alembic upgrade heads` applies them all)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0001"
branch_labels = None
depends_on = ("0003",)


def upgrade() -> None:
    with op.batch_alter_table("workflow_runs") as batch:
        batch.add_column(sa.Column("prior_attempts_cost_usd", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workflow_runs") as batch:
        batch.drop_column("prior_attempts_cost_usd")
