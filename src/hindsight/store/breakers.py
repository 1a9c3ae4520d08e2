"""Circuit breakers' state changes: record them and read each tier's newest (``Store`` inherits these)."""

from __future__ import annotations

from hindsight.store.base import StoreBase

__all__ = ["BreakersMixin"]


class BreakersMixin(StoreBase):
    """Circuit breakers' state changes: record them and read each tier's newest (``Store`` inherits these)."""
