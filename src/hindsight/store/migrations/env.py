"""Alembic environment: hindsight always hands Alembic an open connection."""

from __future__ import annotations

from alembic import context

from hindsight.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable by running alembic by hand
    raise RuntimeError(
        "hindsight migrations run through hindsight.store.open_store(), which passes a "
        "connection; do not run the alembic command line on this directory."
    )
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
