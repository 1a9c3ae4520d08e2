"""Monitor windows (a profile and count tables per window), run state, findings and keys.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_windows",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("monitor", sa.String(200), nullable=False),
        sa.Column("window_start", sa.Float, nullable=False),
        sa.Column("window_end", sa.Float, nullable=False),
        sa.Column("n_rows", sa.BigInteger, nullable=False),
        sa.Column("profile", sa.LargeBinary, nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )
    op.create_index(
        "ux_monitor_windows",
        "monitor_windows",
        ["project", "monitor", "window_start"],
        unique=True,
    )
    op.create_table(
        "monitor_state",
        sa.Column("project", sa.String(200), primary_key=True),
        sa.Column("monitor", sa.String(200), primary_key=True),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )
    op.create_table(
        "monitor_findings",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("monitor", sa.String(200), nullable=False),
        sa.Column("window_start", sa.Float, nullable=False),
        sa.Column("check_name", sa.String(64), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_monitor_findings_window",
        "monitor_findings",
        ["project", "monitor", "window_start"],
    )
    op.create_table(
        "monitor_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("monitor", sa.String(200), nullable=False),
        sa.Column("window_start", sa.Float, nullable=False),
        sa.Column("n_rows", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_monitor_keys_window", "monitor_keys", ["project", "monitor", "window_start"]
    )


def downgrade() -> None:
    op.drop_index("ix_monitor_keys_window", table_name="monitor_keys")
    op.drop_table("monitor_keys")
    op.drop_index("ix_monitor_findings_window", table_name="monitor_findings")
    op.drop_table("monitor_findings")
    op.drop_table("monitor_state")
    op.drop_index("ux_monitor_windows", table_name="monitor_windows")
    op.drop_table("monitor_windows")
