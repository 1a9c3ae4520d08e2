"""Stored drift reports, for the dashboard's Data page.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_reports",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("reference_source", sa.Text, nullable=False),
        sa.Column("current_source", sa.Text, nullable=False),
        sa.Column("n_reference", sa.BigInteger, nullable=False),
        sa.Column("n_current", sa.BigInteger, nullable=False),
        sa.Column("n_columns", sa.Integer, nullable=False),
        sa.Column("n_drifted", sa.Integer, nullable=False),
        sa.Column("drift_detected", sa.Boolean, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_drift_reports_project_name_created",
        "drift_reports",
        ["project", "name", "created_at"],
    )
    op.create_index("ix_drift_reports_created", "drift_reports", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_drift_reports_created", table_name="drift_reports")
    op.drop_index("ix_drift_reports_project_name_created", table_name="drift_reports")
    op.drop_table("drift_reports")
