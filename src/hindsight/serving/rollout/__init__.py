"""Rollouts: canary, shadow and A/B, with their automatic analysis."""

from __future__ import annotations
