"""The prediction log, late outcomes and the human review queue.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("request_id", sa.String(200)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("arm", sa.String(64), nullable=False),
        sa.Column("tier", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("fell_back", sa.Boolean, nullable=False),
        sa.Column("attempts", sa.JSON, nullable=False),
        sa.Column("inputs", sa.JSON),
        sa.Column("output", sa.JSON),
        sa.Column("confidence", sa.Float),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("review_ticket", sa.String(40)),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )
    op.create_index("ix_predictions_service_created", "predictions", ["service", "created_at"])
    op.create_index("ix_predictions_request", "predictions", ["request_id"])

    op.create_table(
        "outcomes",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("prediction_id", sa.String(40), nullable=False),
        sa.Column("label", sa.JSON),
        sa.Column("reward", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )
    op.create_index("ix_outcomes_prediction_created", "outcomes", ["prediction_id", "created_at"])

    op.create_table(
        "review_items",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("prediction_id", sa.String(40)),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("priority", sa.Float, nullable=False),
        sa.Column("inputs", sa.JSON),
        sa.Column("proposed_output", sa.JSON),
        sa.Column("decision", sa.JSON),
        sa.Column("reviewer", sa.String(200)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("claimed_at", sa.Float),
        sa.Column("decided_at", sa.Float),
        sa.Column("due_at", sa.Float),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_review_items_service_status_created",
        "review_items",
        ["service", "status", "created_at"],
    )
    op.create_index("ix_review_items_prediction", "review_items", ["prediction_id"])


def downgrade() -> None:
    op.drop_table("review_items")
    op.drop_table("outcomes")
    op.drop_table("predictions")
