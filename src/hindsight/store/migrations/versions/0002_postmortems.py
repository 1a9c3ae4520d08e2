"""Blameless post-mortems drafted from failures.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "postmortems",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("failure_id", sa.String(40)),
        sa.Column("experiment_id", sa.String(40)),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )
    op.create_index("ix_postmortems_failure", "postmortems", ["failure_id"])
    op.create_index("ix_postmortems_project", "postmortems", ["project"])


def downgrade() -> None:
    op.drop_table("postmortems")
