"""A paged listing of post-mortems for the team server (one page read, one count)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hindsight.store import schema as t
from hindsight.store.base import Row, StoreBase

__all__ = ["search_postmortems"]


def search_postmortems(
    store: StoreBase,
    *,
    project: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Row], int]:
    """One page of post-mortems, newest first, and how many there are in all.

    Each row has the post-mortem's id, title, status, project, failure and experiment
    ids, ``created_at``/``updated_at``, ``failure_title`` (``None`` without a stored
    failure), ``failure_experiment_id`` and ``open_action_items`` (the body is not
    returned).
    """
    pm, f = t.postmortems, t.failures
    where = [pm.c.project == project] if project else []
    page = (
        select(
            pm.c.id, pm.c.title, pm.c.status, pm.c.project, pm.c.failure_id,
            pm.c.experiment_id, pm.c.created_at, pm.c.updated_at, pm.c.body,
            f.c.exc_type.label("f_exc_type"), f.c.message.label("f_message"),
            f.c.category.label("f_category"), f.c.diagnosis.label("f_diagnosis"),
            f.c.experiment_id.label("failure_experiment_id"),
        )
        .select_from(pm.outerjoin(f, f.c.id == pm.c.failure_id))
        .where(*where)
        .order_by(pm.c.created_at.desc(), pm.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    rows, total = store.page_and_count(page, pm, where)
    return [_summary(r) for r in rows], total


def _summary(row: Row) -> Row:
    body = row.pop("body") or {}
    exc_type, message = row.pop("f_exc_type"), row.pop("f_message")
    category, diagnosis = row.pop("f_category"), row.pop("f_diagnosis") or {}
    row["failure_title"] = (
        _failure_title(exc_type, message or "", category, diagnosis)
        if category is not None else None
    )
    items: list[Any] = body.get("action_items") or []
    row["open_action_items"] = sum(
        1 for a in items if isinstance(a, dict) and a.get("status", "open") == "open"
    )
    return row


def _failure_title(exc_type: str | None, message: str, category: str, diagnosis: Any) -> str:
    """As :attr:`FailureRecord.title`: exception type and first line, or the diagnosis."""
    if exc_type:
        first = message.strip().splitlines()[0] if message.strip() else ""
        return f"{exc_type}: {first}"[:200] if first else exc_type[:200]
    return str((diagnosis or {}).get("title") or category)
