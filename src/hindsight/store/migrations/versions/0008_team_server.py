"""The team server: users, API tokens, browser sessions, and indexes for its list pages.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


_LIST_INDEXES = {
    "ix_experiments_started": ["started_at"],
    "ix_experiments_outcome_started": ["outcome", "started_at"],
    "ix_experiments_status_started": ["status", "started_at"],
}


def upgrade() -> None:
    for name, columns in _LIST_INDEXES.items():
        op.create_index(name, "experiments", columns)
    op.create_table(
        "users",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )
    op.create_index("ux_users_name", "users", ["name"], unique=True)
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float),
        sa.Column("revoked_at", sa.Float),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )
    op.create_index("ux_api_tokens_hash", "api_tokens", ["token_hash"], unique=True)
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for name in _LIST_INDEXES:
        op.drop_index(name, table_name="experiments")
    op.drop_table("web_sessions")
    op.drop_index("ux_api_tokens_hash", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("ux_users_name", table_name="users")
    op.drop_table("users")
