"""Circuit breakers' state changes, so the dashboard can show each tier's state.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "breaker_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("previous", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("snapshot", sa.JSON, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_breaker_events_service_tier_at", "breaker_events", ["service", "tier", "at"]
    )


def downgrade() -> None:
    op.drop_index("ix_breaker_events_service_tier_at", table_name="breaker_events")
    op.drop_table("breaker_events")
