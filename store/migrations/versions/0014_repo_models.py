"""repo models: the model each agent runs for a repository's tasks (claudeModel, ...)

Revision ID: 0014
Revises: 0001 (a sibling of the other revisions; `alembic upgrade heads` applies them all)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ("claude_model", "codex_model", "copilot_model", "opencode_model", "gemini_model")


def upgrade() -> None:
    with op.batch_alter_table("repos") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("repos") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
