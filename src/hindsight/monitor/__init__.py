"""Production monitors over the prediction log (issue 6, being built)."""

from __future__ import annotations
