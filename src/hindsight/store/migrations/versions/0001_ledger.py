"""The ledger: experiments, metric chunks, failures, lessons.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("hypothesis", sa.Text, nullable=False),
        sa.Column("approach", sa.Text, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("criteria", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16)),
        sa.Column("outcome_source", sa.String(16)),
        sa.Column("outcome_reason", sa.Text),
        sa.Column("verdicts", sa.JSON),
        sa.Column("summary", sa.JSON),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("heartbeat_at", sa.Float),
        sa.Column("duration_s", sa.Float),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("git_dirty", sa.Boolean),
        sa.Column("environment", sa.JSON),
        sa.Column("host", sa.String(255)),
        sa.Column("pid", sa.Integer),
        sa.Column("command", sa.Text),
        sa.Column("mlflow_run_id", sa.String(64)),
        sa.Column("failure_id", sa.String(40)),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )
    op.create_index("ix_experiments_project_started", "experiments", ["project", "started_at"])
    op.create_index("ix_experiments_status", "experiments", ["status"])
    op.create_index("ix_experiments_outcome", "experiments", ["outcome"])
    op.create_index("ix_experiments_mlflow_run_id", "experiments", ["mlflow_run_id"])

    op.create_table(
        "experiment_parents",
        sa.Column(
            "experiment_id",
            sa.String(40),
            sa.ForeignKey("experiments.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("parent_id", sa.String(40), primary_key=True),
    )
    op.create_index("ix_experiment_parents_parent", "experiment_parents", ["parent_id"])

    op.create_table(
        "notes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "experiment_id",
            sa.String(40),
            sa.ForeignKey("experiments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_notes_experiment", "notes", ["experiment_id"])

    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "experiment_id",
            sa.String(40),
            sa.ForeignKey("experiments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.Integer),
        sa.Column("sha256", sa.String(64)),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_artifacts_experiment", "artifacts", ["experiment_id"])

    op.create_table(
        "metric_chunks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "experiment_id",
            sa.String(40),
            sa.ForeignKey("experiments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("steps", sa.LargeBinary, nullable=False),
        sa.Column("vals", sa.LargeBinary, nullable=False),
        sa.Column("times", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_metric_chunks_experiment_key", "metric_chunks", ["experiment_id", "key"])

    op.create_table(
        "failures",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("experiment_id", sa.String(40)),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("exc_type", sa.String(300), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("frames", sa.JSON, nullable=False),
        sa.Column("log_tail", sa.Text),
        sa.Column("exit_code", sa.Integer),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("masked_message", sa.Text, nullable=False),
        sa.Column("tokens", sa.Text, nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("diagnosis", sa.JSON, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )
    op.create_index("ix_failures_fingerprint", "failures", ["fingerprint"])
    op.create_index("ix_failures_experiment", "failures", ["experiment_id"])
    op.create_index("ix_failures_project_created", "failures", ["project", "created_at"])
    op.create_index("ix_failures_category", "failures", ["category"])

    op.create_table(
        "lessons",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
    )
    op.create_index("ix_lessons_project_created", "lessons", ["project", "created_at"])

    op.create_table(
        "lesson_links",
        sa.Column(
            "lesson_id",
            sa.String(40),
            sa.ForeignKey("lessons.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("target_id", sa.String(40), primary_key=True),
        sa.Column("relation", sa.String(16), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_lesson_links_target", "lesson_links", ["target_id"])


def downgrade() -> None:
    for table in (
        "lesson_links",
        "lessons",
        "failures",
        "metric_chunks",
        "artifacts",
        "notes",
        "experiment_parents",
        "experiments",
    ):
        op.drop_table(table)
