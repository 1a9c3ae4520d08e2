"""Drift: a registry of statistical tests, drift reports, and streaming detectors."""

from __future__ import annotations

from hindsight.drift.compare import ColumnDrift, DriftSettings
from hindsight.drift.document import ReportDocument, check_report_document
from hindsight.drift.engine import drift_report
from hindsight.drift.report import SCHEMA, DriftReport, SchemaChange
from hindsight.drift.stored import load_drift_report, save_drift_report

__all__ = [
    "SCHEMA",
    "ColumnDrift",
    "DriftReport",
    "DriftSettings",
    "ReportDocument",
    "SchemaChange",
    "check_report_document",
    "drift_report",
    "load_drift_report",
    "save_drift_report",
]
