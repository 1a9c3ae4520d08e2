"""Paged, filtered listings for the team server's tables (one page read, one count)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import ColumnElement, String, cast, func, or_, select

from hindsight.store import schema as t
from hindsight.store.base import Row, StoreBase

__all__ = ["ListingMixin"]

#: The experiment columns a list page shows (no configs, environments or metrics).
EXPERIMENT_LIST_COLUMNS = (
    "id", "project", "name", "hypothesis", "tags", "status", "outcome", "outcome_reason",
    "started_at", "duration_s", "failure_id",
)


class ListingMixin(StoreBase):
    """``search_experiments``, ``list_projects``, ``latest_success_before`` (``Store`` inherits these)."""

    def search_experiments(
        self,
        *,
        project: str | None = None,
        statuses: Sequence[str] = (),
        outcomes: Sequence[str] = (),
        tag: str | None = None,
        text: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Row], int]:
        """One page of experiments, newest first, and how many match in all.

        ``text`` matches the name, hypothesis or approach (case-insensitive substring);
        ``tag`` one of the tags exactly.
        """
        e = t.experiments
        where: list[ColumnElement[bool]] = []
        if project:
            where.append(e.c.project == project)
        if statuses:
            where.append(e.c.status.in_(list(statuses)))
        if outcomes:
            where.append(e.c.outcome.in_(list(outcomes)))
        if tag:
            # Tags are a JSON list of strings; the quoted tag matches one whole element.
            where.append(cast(e.c.tags, String).contains(json.dumps(tag), autoescape=True))
        if text:
            needle = text.lower()
            where.append(or_(*(func.lower(e.c[c]).contains(needle, autoescape=True)
                               for c in ("name", "hypothesis", "approach"))))
        page = (select(*(e.c[c] for c in EXPERIMENT_LIST_COLUMNS)).where(*where)
                .order_by(e.c.started_at.desc(), e.c.id).offset(offset).limit(limit))
        return self.page_and_count(page, e, where)

    def list_projects(self) -> list[str]:
        """Every project with at least one experiment, by name."""
        return self.distinct_values(t.experiments.c.project)

    def latest_success_before(self, *, project: str, name: str, before: float) -> Row | None:
        """The newest successful experiment of a project and name started before ``before``
        (id, started_at, config): the last success of that line of work."""
        e = t.experiments
        q = (
            select(e.c.id, e.c.started_at, e.c.config)
            .where(e.c.outcome == "success", e.c.project == project, e.c.name == name,
                   e.c.started_at < before)
            .order_by(e.c.started_at.desc())
            .limit(1)
        )
        with self.read() as conn:
            row = conn.execute(q).mappings().first()
        return None if row is None else dict(row)
