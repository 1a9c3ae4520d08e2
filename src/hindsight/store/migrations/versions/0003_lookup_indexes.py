"""Indexes for similar-failure look-ups: a fingerprint's newest occurrences, a name's successes.

The new indexes start with the columns of the ones they replace, so every earlier
look-up is still served.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_failures_fingerprint_created",
        "failures",
        ["fingerprint", "created_at", "id", "experiment_id"],
    )
    op.drop_index("ix_failures_fingerprint", table_name="failures")
    op.create_index(
        "ix_experiments_outcome_project_name",
        "experiments",
        ["outcome", "project", "name", "started_at"],
    )
    op.drop_index("ix_experiments_outcome", table_name="experiments")


def downgrade() -> None:
    op.create_index("ix_experiments_outcome", "experiments", ["outcome"])
    op.drop_index("ix_experiments_outcome_project_name", table_name="experiments")
    op.create_index("ix_failures_fingerprint", "failures", ["fingerprint"])
    op.drop_index("ix_failures_fingerprint_created", table_name="failures")
