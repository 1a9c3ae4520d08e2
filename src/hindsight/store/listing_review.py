"""The team server's review queue table: one filtered page and its count, in SQL.

Reads only: every change to a review item goes through
:class:`hindsight.review.ReviewQueue`, whose transitions are conditional updates.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, select

from hindsight.store import schema as t
from hindsight.store.base import Row, StoreBase, _dicts

__all__ = ["review_item_row", "review_outcomes", "review_services", "search_review_items"]


def _where(service: str | None, status: str | None) -> list[ColumnElement[bool]]:
    r = t.review_items
    cond: list[ColumnElement[bool]] = []
    if service:
        cond.append(r.c.service == service)
    if status:
        cond.append(r.c.status == status)
    return cond


def search_review_items(
    store: StoreBase,
    *,
    service: str | None = None,
    status: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Row], int]:
    """One page of review items and how many match in all.

    Ordered as the queue lists them: highest priority first, then oldest first. Each row
    has the item's columns plus ``confidence``, the logged prediction's (None when the
    prediction is not logged yet or had none).
    """
    r, p = t.review_items, t.predictions
    where = _where(service, status)
    page = (
        select(r, p.c.confidence.label("confidence"))
        .select_from(r.outerjoin(p, p.c.id == r.c.prediction_id))
        .where(*where)
        .order_by(r.c.priority.desc(), r.c.created_at, r.c.id)
        .offset(offset)
        .limit(limit)
    )
    rows, total = store.page_and_count(page, r, where)
    return rows, total


def review_services(store: StoreBase) -> list[str]:
    """Every service with at least one review item, by name."""
    r = t.review_items
    return store.distinct_values(r.c.service)


def review_item_row(store: StoreBase, item_id: str) -> Row | None:
    """One review item's row with its logged prediction's ``confidence``, ``tier``,
    ``served_output`` and ``served_reason`` (None where not logged), or None."""
    r, p = t.review_items, t.predictions
    q = (
        select(
            r,
            p.c.confidence.label("confidence"),
            p.c.tier.label("tier"),
            p.c.output.label("served_output"),
            p.c.reason.label("served_reason"),
        )
        .select_from(r.outerjoin(p, p.c.id == r.c.prediction_id))
        .where(r.c.id == item_id)
    )
    with store.read() as conn:
        rows = _dicts(conn.execute(q))
    return rows[0] if rows else None


def review_outcomes(store: StoreBase, prediction_id: str) -> list[Row]:
    """The outcomes (labels, rewards) recorded for one prediction, oldest first."""
    o = t.outcomes
    q = (
        select(o)
        .where(o.c.prediction_id == prediction_id)
        .order_by(o.c.created_at, o.c.id)
    )
    with store.read() as conn:
        return _dicts(conn.execute(q))
