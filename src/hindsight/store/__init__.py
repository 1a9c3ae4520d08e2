"""Persistence: SQLite by default, PostgreSQL for teams, migrated with Alembic."""

from __future__ import annotations

from hindsight.store.engine import HEAD, KNOWN_REVISIONS
from hindsight.store.store import MetricChunk, Store, open_store

__all__ = ["HEAD", "KNOWN_REVISIONS", "MetricChunk", "Store", "open_store"]
