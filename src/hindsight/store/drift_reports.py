"""Stored drift reports: save, list (paged) and read back (``Store`` inherits these)."""

from __future__ import annotations

from hindsight.store.base import StoreBase

__all__ = ["DriftReportsMixin"]


class DriftReportsMixin(StoreBase):
    """Stored drift reports: save, list (paged) and read back (``Store`` inherits these)."""
