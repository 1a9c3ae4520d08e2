"""The drift report: per-column findings, schema changes and a dataset verdict with its rule.

``DriftReport.to_dict()`` is the stable, documented JSON schema (``"schema":
"hindsight.drift_report/1"``); the HTML view and the CLI are rendered from it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hindsight.drift.compare import ColumnDrift, DriftSettings

__all__ = ["SCHEMA", "DriftReport", "SchemaChange"]

SCHEMA = "hindsight.drift_report/1"


@dataclass(frozen=True)
class SchemaChange:
    """A column missing from, added to, or retyped in the current data."""

    column: str
    change: str  # "missing", "extra" or "retyped"
    reference_kind: str | None
    current_kind: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "change": self.change,
            "reference_kind": self.reference_kind,
            "current_kind": self.current_kind,
        }


@dataclass
class DriftReport:
    """Everything :func:`hindsight.drift_report` found, JSON-first."""

    columns: list[ColumnDrift]
    schema_changes: list[SchemaChange]
    settings: DriftSettings
    drift_share: float
    n_reference: int
    n_current: int
    reference_source: str
    current_source: str
    skipped: dict[str, str] = field(default_factory=dict)
    multivariate: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def share_drifted(self) -> float:
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def drift_detected(self) -> bool:
        """The dataset-level verdict (see :attr:`rule`)."""
        n = len(self.drifted_columns)
        multi = any(m.get("drifted") for m in self.multivariate)
        return (n > 0 and self.share_drifted >= self.drift_share) or multi

    @property
    def rule(self) -> str:
        s = self.settings
        share = (
            "at least one column drifts"
            if self.drift_share <= 0
            else f"at least {self.drift_share:.0%} of the columns drift (and at least one)"
        )
        return (
            f"The dataset drifts when {share}"
            + (" or a multivariate test drifts" if self.multivariate else "")
            + f". A column drifts when its p-value, adjusted across columns by "
            f"Benjamini-Hochberg, is below {s.alpha:g}; above {s.large_sample:,} rows per "
            "side its effect size must also reach its threshold (the larger of the practical "
            "minimum and the level seen between resamples of the reference)."
        )

    def __getitem__(self, column: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == column:
                return c
        raise KeyError(column)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "drift_detected": self.drift_detected,
            "rule": self.rule,
            "drifted_columns": self.drifted_columns,
            "n_columns_tested": len(self.columns),
            "share_drifted": self.share_drifted,
            "reference": {"rows": self.n_reference, "source": self.reference_source},
            "current": {"rows": self.n_current, "source": self.current_source},
            "settings": {**self.settings.to_dict(), "drift_share": self.drift_share},
            "schema_changes": [c.to_dict() for c in self.schema_changes],
            "skipped_columns": dict(self.skipped),
            "columns": [c.to_dict() for c in self.columns],
            "multivariate": list(self.multivariate),
            "seconds": round(self.seconds, 4),
        }

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int = 2) -> str:
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """A self-contained HTML page (no CDN, no raw rows); written to ``path`` if given."""
        from hindsight.reports.drift_html import render_drift_html

        html = render_drift_html(self.to_dict())
        if path is not None:
            Path(path).write_text(html, encoding="utf-8")
        return html
