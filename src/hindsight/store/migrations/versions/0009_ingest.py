"""Logging through the server: the ids of the write operations it has applied.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingested_ops",
        sa.Column("op_id", sa.String(64), primary_key=True),
        sa.Column("op", sa.String(40), nullable=False),
        sa.Column("user_id", sa.String(40)),
        sa.Column("applied_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ingested_ops")
