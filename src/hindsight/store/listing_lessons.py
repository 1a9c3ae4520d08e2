"""The team server's lessons table: one filtered page and its count, in SQL."""

from __future__ import annotations

import json

from sqlalchemy import ColumnElement, String, cast, func, select

from hindsight.store import schema as t
from hindsight.store.base import Row, StoreBase

__all__ = ["lesson_projects", "search_lessons"]


def _link_count(relation: str) -> ColumnElement[int]:
    """How many links of one relation the lesson row has (a correlated subquery)."""
    les, ll = t.lessons, t.lesson_links
    return (
        select(func.count())
        .select_from(ll)
        .where(ll.c.lesson_id == les.c.id, ll.c.relation == relation)
        .correlate(les)
        .scalar_subquery()
    )


def search_lessons(
    store: StoreBase,
    *,
    text: str | None = None,
    tag: str | None = None,
    project: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Row], int]:
    """One page of lessons, newest first, and how many match in all.

    ``text`` matches the lesson's text (case-insensitive substring, ``%`` and ``_``
    literal); ``tag`` one of its tags exactly; ``project`` its project. Each row has the
    lesson's columns plus ``source_count`` and ``applied_count``.
    """
    les = t.lessons
    where: list[ColumnElement[bool]] = []
    if project:
        where.append(les.c.project == project)
    if tag:
        # Tags are a JSON list of strings; the quoted tag matches one whole element.
        where.append(cast(les.c.tags, String).contains(json.dumps(tag), autoescape=True))
    if text:
        where.append(func.lower(les.c.text).contains(text.lower(), autoescape=True))
    page = (
        select(
            les,
            _link_count("source").label("source_count"),
            _link_count("applied").label("applied_count"),
        )
        .where(*where)
        .order_by(les.c.created_at.desc(), les.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    rows, total = store.page_and_count(page, les, where)
    for row in rows:
        row["source_count"] = int(row["source_count"] or 0)
        row["applied_count"] = int(row["applied_count"] or 0)
    return rows, total


def lesson_projects(store: StoreBase) -> list[str]:
    """Every project with at least one lesson, by name."""
    les = t.lessons
    return store.distinct_values(les.c.project)
