"""Drift: a registry of statistical tests, drift reports, and streaming detectors."""

from __future__ import annotations

from hindsight.drift.compare import ColumnDrift, DriftSettings
from hindsight.drift.engine import drift_report
from hindsight.drift.report import SCHEMA, DriftReport, SchemaChange

__all__ = ["SCHEMA", "ColumnDrift", "DriftReport", "DriftSettings", "SchemaChange", "drift_report"]
