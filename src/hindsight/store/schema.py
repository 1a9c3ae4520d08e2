"""The store's tables, as SQLAlchemy Core metadata (the current, head schema).

Migrations in ``store/migrations/versions`` build exactly this schema; a test
compares the two. Timestamps are UNIX seconds (floats) so SQLite and PostgreSQL
agree and durations are plain subtraction.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "SCHEMA_VERSION",
    "api_tokens",
    "artifacts",
    "breaker_events",
    "drift_reports",
    "experiment_parents",
    "experiments",
    "failures",
    "ingested_ops",
    "lesson_links",
    "lessons",
    "metadata",
    "metric_chunks",
    "monitor_findings",
    "monitor_keys",
    "monitor_state",
    "monitor_windows",
    "notes",
    "outcomes",
    "postmortems",
    "predictions",
    "profiles",
    "review_items",
    "rollouts",
    "users",
    "web_sessions",
]

#: Version stamped on every persisted record; bump when a record's shape changes.
SCHEMA_VERSION = 1

metadata = MetaData()

_ID = 40

experiments = Table(
    "experiments",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("project", String(200), nullable=False),
    Column("name", String(300), nullable=False),
    Column("hypothesis", Text, nullable=False, default=""),
    Column("approach", Text, nullable=False, default=""),
    Column("tags", JSON, nullable=False),
    Column("config", JSON, nullable=False),
    Column("criteria", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("outcome", String(16)),
    Column("outcome_source", String(16)),
    Column("outcome_reason", Text),
    Column("verdicts", JSON),
    Column("summary", JSON),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("heartbeat_at", Float),
    Column("duration_s", Float),
    Column("git_commit", String(64)),
    Column("git_dirty", Boolean),
    Column("environment", JSON),
    Column("host", String(255)),
    Column("pid", Integer),
    Column("command", Text),
    Column("mlflow_run_id", String(64)),
    Column("failure_id", String(_ID)),
    Column("schema_version", Integer, nullable=False),
    Index("ix_experiments_project_started", "project", "started_at"),
    Index("ix_experiments_status", "status"),
    # Finds the fixes of failed runs: the first / latest success of a name (0003).
    Index("ix_experiments_outcome_project_name", "outcome", "project", "name", "started_at"),
    # The team server's list pages: newest first, overall and by outcome or status (0008).
    Index("ix_experiments_started", "started_at"),
    Index("ix_experiments_outcome_started", "outcome", "started_at"),
    Index("ix_experiments_status_started", "status", "started_at"),
    Index("ix_experiments_mlflow_run_id", "mlflow_run_id"),
)

experiment_parents = Table(
    "experiment_parents",
    metadata,
    Column(
        "experiment_id",
        String(_ID),
        ForeignKey("experiments.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("parent_id", String(_ID), primary_key=True),
    Index("ix_experiment_parents_parent", "parent_id"),
)

notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "experiment_id",
        String(_ID),
        ForeignKey("experiments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_notes_experiment", "experiment_id"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "experiment_id",
        String(_ID),
        ForeignKey("experiments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(300), nullable=False),
    Column("path", Text, nullable=False),
    Column("size", Integer),
    Column("sha256", String(64)),
    Column("created_at", Float, nullable=False),
    Index("ix_artifacts_experiment", "experiment_id"),
)

# Metric step series are stored columnar: one row per flushed chunk of one key,
# with steps/values/times as little-endian int64/float64 arrays. Writing 100k
# points is then a handful of inserts instead of 100k rows.
metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "experiment_id",
        String(_ID),
        ForeignKey("experiments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("key", String(250), nullable=False),
    Column("n", Integer, nullable=False),
    Column("steps", LargeBinary, nullable=False),
    Column("vals", LargeBinary, nullable=False),
    Column("times", LargeBinary, nullable=False),
    Index("ix_metric_chunks_experiment_key", "experiment_id", "key"),
)

failures = Table(
    "failures",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("experiment_id", String(_ID)),
    Column("project", String(200), nullable=False),
    Column("source", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("exc_type", String(300), nullable=False, default=""),
    Column("message", Text, nullable=False, default=""),
    Column("frames", JSON, nullable=False),
    Column("log_tail", Text),
    Column("exit_code", Integer),
    Column("fingerprint", String(32), nullable=False),
    Column("masked_message", Text, nullable=False, default=""),
    Column("tokens", Text, nullable=False, default=""),
    Column("category", String(40), nullable=False),
    Column("diagnosis", JSON, nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("schema_version", Integer, nullable=False),
    # Covers the newest occurrences of a fingerprint, read without touching the rows (0003).
    Index("ix_failures_fingerprint_created", "fingerprint", "created_at", "id", "experiment_id"),
    Index("ix_failures_experiment", "experiment_id"),
    Index("ix_failures_project_created", "project", "created_at"),
    Index("ix_failures_category", "category"),
)

lessons = Table(
    "lessons",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("project", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Index("ix_lessons_project_created", "project", "created_at"),
)

# relation: "source" (the lesson came from the target: an experiment, a failure
# or a post-mortem) or "applied" (the target experiment applied the lesson).
lesson_links = Table(
    "lesson_links",
    metadata,
    Column(
        "lesson_id",
        String(_ID),
        ForeignKey("lessons.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("target_id", String(_ID), primary_key=True),
    Column("relation", String(16), primary_key=True),
    Column("created_at", Float, nullable=False),
    Index("ix_lesson_links_target", "target_id"),
)

postmortems = Table(
    "postmortems",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("failure_id", String(_ID)),
    Column("experiment_id", String(_ID)),
    Column("project", String(200), nullable=False),
    Column("title", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Index("ix_postmortems_failure", "failure_id"),
    Index("ix_postmortems_project", "project"),
)

profiles = Table(
    "profiles",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("project", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("n_rows", BigInteger, nullable=False),
    Column("n_columns", Integer, nullable=False),
    Column("format_version", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("schema_version", Integer, nullable=False),
    # The newest profile of a name is one step along this index (0004).
    Index("ix_profiles_project_name_created", "project", "name", "created_at"),
)

# -- serving (0005) ---------------------------------------------------------------------

# One row per served request, written in batches off the request path
# (serving/log.py). ``attempts`` holds each tier's part (tier, outcome, latency, detail).
predictions = Table(
    "predictions",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("request_id", String(200)),
    Column("created_at", Float, nullable=False),
    Column("service", String(200), nullable=False),
    Column("version", String(200), nullable=False, default=""),
    Column("arm", String(64), nullable=False),
    Column("tier", String(200), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("fell_back", Boolean, nullable=False, default=False),
    Column("attempts", JSON, nullable=False),
    Column("inputs", JSON),
    Column("output", JSON),
    Column("confidence", Float),
    Column("latency_ms", Float, nullable=False),
    Column("review_ticket", String(_ID)),
    Column("schema_version", Integer, nullable=False),
    Index("ix_predictions_service_created", "service", "created_at"),
    Index("ix_predictions_request", "request_id"),
)

# Labels and rewards that arrive after the prediction (``POST /outcomes``). No foreign
# key: an outcome may be recorded before its prediction's batch is flushed.
outcomes = Table(
    "outcomes",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("prediction_id", String(_ID), nullable=False),
    Column("label", JSON),
    Column("reward", Float),
    Column("created_at", Float, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Index("ix_outcomes_prediction_created", "prediction_id", "created_at"),
)

# Predictions sent to people for review. status: pending, claimed, decided, expired.
review_items = Table(
    "review_items",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("prediction_id", String(_ID)),
    Column("service", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("priority", Float, nullable=False, default=0.0),
    Column("inputs", JSON),
    Column("proposed_output", JSON),
    Column("decision", JSON),
    Column("reviewer", String(200)),
    Column("note", Text),  # 0006
    Column("created_at", Float, nullable=False),
    Column("claimed_at", Float),
    Column("decided_at", Float),
    Column("due_at", Float),
    Column("schema_version", Integer, nullable=False),
    Index("ix_review_items_service_status_created", "service", "status", "created_at"),
    Index("ix_review_items_prediction", "prediction_id"),
)

# -- rollouts (0006) --------------------------------------------------------------------

# One row per canary, shadow or A/B rollout of a service: where it stands, every
# interval's analysis (verdict and the inputs behind it), and, for a canary that was
# rolled back, the failed experiment and failure it was recorded as.
rollouts = Table(
    "rollouts",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("service", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # canary, shadow, ab
    Column("baseline", String(200), nullable=False),
    Column("candidate", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # running, promoted, rolled_back, stopped
    Column("step", Integer, nullable=False, default=0),
    Column("share", Float, nullable=False, default=0.0),
    Column("config", JSON, nullable=False),
    Column("analyses", JSON, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("experiment_id", String(_ID)),
    Column("failure_id", String(_ID)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("schema_version", Integer, nullable=False),
    Index("ix_rollouts_service_created", "service", "created_at"),
)

# -- monitors (0007) --------------------------------------------------------------------

# One row per monitor and window: the window's mergeable profile (raw rows are not kept)
# and its count tables (each action per segment). A later batch of the same window is
# merged into the row, in place.
monitor_windows = Table(
    "monitor_windows",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("project", String(200), nullable=False),
    Column("monitor", String(200), nullable=False),
    Column("window_start", Float, nullable=False),
    Column("window_end", Float, nullable=False),
    Column("n_rows", BigInteger, nullable=False),
    Column("profile", LargeBinary, nullable=False),
    Column("counts", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Index("ux_monitor_windows", "project", "monitor", "window_start", unique=True),
)

# What a monitor's scheduled runs remember: the last window judged, the alert rules'
# memory, how far each source was read. Written in the transaction that writes the
# run's findings, so a restart neither loses nor repeats a window.
monitor_state = Table(
    "monitor_state",
    metadata,
    Column("project", String(200), primary_key=True),
    Column("monitor", String(200), primary_key=True),
    Column("state", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("schema_version", Integer, nullable=False),
)

# Every check's verdict on every judged window (what the dashboard draws).
monitor_findings = Table(
    "monitor_findings",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("project", String(200), nullable=False),
    Column("monitor", String(200), nullable=False),
    Column("window_start", Float, nullable=False),
    Column("check_name", String(64), nullable=False),
    Column("key", String(300), nullable=False),
    Column("value", Float),
    Column("flagged", Boolean, nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("evidence", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Index("ix_monitor_findings_window", "project", "monitor", "window_start"),
)

# The request ids of a window's predictions (with what was predicted and its score), one
# chunk per logged batch as Arrow IPC, kept only when ids are logged: what a label that
# arrives later by request id is joined to.
monitor_keys = Table(
    "monitor_keys",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("project", String(200), nullable=False),
    Column("monitor", String(200), nullable=False),
    Column("window_start", Float, nullable=False),
    Column("n_rows", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Index("ix_monitor_keys_window", "project", "monitor", "window_start"),
)

# -- the team server (0008) -------------------------------------------------------------

# People who log in to the dashboard, and the role that decides what they may change.
# ``password_hash`` is an Argon2id hash (argon2-cffi); the password itself is never kept.
users = Table(
    "users",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),  # viewer, editor, admin
    Column("password_hash", Text),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Index("ux_users_name", "name", unique=True),
)

# API tokens for clients. Only the SHA-256 of a token is kept (tokens are 32 random
# bytes, so a plain hash is enough); the token is shown once, when it is created.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("user_id", String(_ID), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float),
    Column("revoked_at", Float),
    Column("schema_version", Integer, nullable=False),
    Index("ux_api_tokens_hash", "token_hash", unique=True),
)

# Logged-in browser sessions, by the SHA-256 of the session cookie, with the session's
# CSRF token (the forms carry it; a cookie alone cannot post).
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", String(_ID), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("schema_version", Integer, nullable=False),
)

# -- logging through the server (0009) --------------------------------------------------

# The ids of the write operations clients sent through the server's ingest endpoint,
# each written in the same transaction as the operation: a batch retried after a lost
# reply is applied once.
ingested_ops = Table(
    "ingested_ops",
    metadata,
    Column("op_id", String(64), primary_key=True),
    Column("op", String(40), nullable=False),
    Column("user_id", String(_ID)),
    Column("applied_at", Float, nullable=False),
)

# -- stored drift reports (0010) --------------------------------------------------------

# A drift report as its JSON document (``DriftReport.to_dict()``), with the figures the
# Data page lists and filters by pulled out into columns.
drift_reports = Table(
    "drift_reports",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("project", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("reference_source", Text, nullable=False),
    Column("current_source", Text, nullable=False),
    Column("n_reference", BigInteger, nullable=False),
    Column("n_current", BigInteger, nullable=False),
    Column("n_columns", Integer, nullable=False),
    Column("n_drifted", Integer, nullable=False),
    Column("drift_detected", Boolean, nullable=False),
    Column("report", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Index("ix_drift_reports_project_name_created", "project", "name", "created_at"),
    Index("ix_drift_reports_created", "created_at"),
)

# -- breaker states (0011) --------------------------------------------------------------

# Every state change of a serving tier's circuit breaker (closed, open, half_open), with
# the reason and the breaker's figures then: the Services page reads each tier's newest.
breaker_events = Table(
    "breaker_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service", String(200), nullable=False),
    Column("tier", String(200), nullable=False),
    Column("state", String(16), nullable=False),
    Column("previous", String(16), nullable=False),
    Column("reason", Text),
    Column("snapshot", JSON, nullable=False),
    Column("at", Float, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Index("ix_breaker_events_service_tier_at", "service", "tier", "at"),
)
