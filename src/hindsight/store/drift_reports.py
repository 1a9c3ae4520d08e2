"""Stored drift reports: save, list (paged) and read back (``Store`` inherits these).

A row holds the report's JSON document (``DriftReport.to_dict()``, schema
``hindsight.drift_report/1``) in ``report``, with the figures the Data page lists and
filters by pulled out into columns. Building the row (and checking the document) is
:mod:`hindsight.drift.stored`'s job; the store only keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, insert, select

from hindsight._validation import Interval, validate_params
from hindsight.errors import NotFound
from hindsight.store import schema as t
from hindsight.store.base import Row, StoreBase
from hindsight.store.engine import redact

__all__ = ["DriftReportsMixin"]

#: The most rows one page of the listing may ask for, and the last page it may ask for.
MAX_PER_PAGE = 1000
MAX_PAGE = 1_000_000_000

# Every column but the (large) report document: what a listing reads.
_LISTED = tuple(c for c in t.drift_reports.c if c.name != "report")


class DriftReportsMixin(StoreBase):
    """Stored drift reports: save, list (paged) and read back (``Store`` inherits these)."""

    def save_drift_report(self, row: Mapping[str, Any]) -> None:
        """Store one drift report (a row of the ``drift_reports`` table)."""
        with self.write() as conn:
            conn.execute(insert(t.drift_reports), [dict(row)])

    def list_drift_reports(
        self,
        *,
        project: str | None = None,
        name: str | None = None,
        drifted: bool | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> tuple[list[Row], int]:
        """One page of stored reports, newest first, and how many match in all.

        Rows have every column but ``report`` (read one with :meth:`get_drift_report`).
        ``drifted`` keeps the reports whose dataset verdict is (``True``) or is not
        (``False``) drift; ``None`` keeps both.
        """
        validate_params(
            "list_drift_reports",
            {"page": page, "per_page": per_page},
            {"page": Interval(int, 1, MAX_PAGE), "per_page": Interval(int, 1, MAX_PER_PAGE)},
        )
        dr = t.drift_reports
        where: list[ColumnElement[bool]] = []
        if project:
            where.append(dr.c.project == project)
        if name:
            where.append(dr.c.name == name)
        if drifted is not None:
            where.append(dr.c.drift_detected == bool(drifted))
        q = (
            select(*_LISTED)
            .where(*where)
            .order_by(dr.c.created_at.desc(), dr.c.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
        rows, total = self.page_and_count(q, dr, where)
        for r in rows:
            r["drift_detected"] = bool(r["drift_detected"])
        return rows, total

    def get_drift_report(self, report_id: str) -> Row:
        """One stored report with its document (``report``); raises NotFound with advice."""
        dr = t.drift_reports
        with self.read() as conn:
            row = conn.execute(select(dr).where(dr.c.id == report_id)).mappings().first()
        if row is None:
            raise NotFound(
                f"No drift report with id {report_id!r} in {redact(self.url)}. Stored reports "
                "are listed on the Data page and at /api/v1/drift-reports; store one with "
                "`hindsight drift REF CUR --save NAME` or hindsight.drift.save_drift_report(report, NAME)."
            )
        out = dict(row)
        out["drift_detected"] = bool(out["drift_detected"])
        return out

    def drift_report_projects(self) -> list[str]:
        """Every project with a stored drift report, sorted (a filter's choices)."""
        return self.distinct_values(t.drift_reports.c.project)

    def drift_report_names(self) -> list[str]:
        """Every name a drift report is stored under, sorted (a filter's choices)."""
        return self.distinct_values(t.drift_reports.c.name)
