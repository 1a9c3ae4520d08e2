"""Rollouts: canary, shadow and A/B, with their automatic analysis.

Start one on a :class:`~hindsight.serving.service.Service` with ``service.start_canary``,
``start_shadow``, ``start_ab`` (or ``start_rollout``); :mod:`.stats` holds the tests
they are judged by.
"""

from __future__ import annotations

from hindsight.serving.rollout.ab import ABTest
from hindsight.serving.rollout.base import ArmWindow, Rollout, unit_hash
from hindsight.serving.rollout.canary import Canary
from hindsight.serving.rollout.shadow import Shadow
from hindsight.serving.rollout.stats import MetricJudgement, RolloutVerdict

__all__ = [
    "ABTest",
    "ArmWindow",
    "Canary",
    "MetricJudgement",
    "Rollout",
    "RolloutVerdict",
    "Shadow",
    "unit_hash",
]
