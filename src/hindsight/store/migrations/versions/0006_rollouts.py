"""Rollouts (canary, shadow, A/B) and a reviewer's note on review items.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_items") as batch:
        batch.add_column(sa.Column("note", sa.Text))

    op.create_table(
        "rollouts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("baseline", sa.String(200), nullable=False),
        sa.Column("candidate", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("share", sa.Float, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("analyses", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("experiment_id", sa.String(40)),
        sa.Column("failure_id", sa.String(40)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )
    op.create_index("ix_rollouts_service_created", "rollouts", ["service", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_rollouts_service_created", table_name="rollouts")
    op.drop_table("rollouts")
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("note")
