"""Write operations that clients send through the team server, each applied once (``Store`` inherits these)."""

from __future__ import annotations

from hindsight.store.base import StoreBase

__all__ = ["IngestMixin"]


class IngestMixin(StoreBase):
    """Write operations that clients send through the team server, each applied once (``Store`` inherits these)."""
