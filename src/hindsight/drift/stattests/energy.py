"""Energy distance, standardised by the reference's standard deviation.

The energy distance of two 1-D samples is
``sqrt(2 * E|X - Y| - E|X - X'| - E|Y - Y'|)``, equal to
``sqrt(2 * integral (F(x) - G(x)) ** 2 dx)`` (:func:`scipy.stats.energy_distance`). It is
zero only for identical distributions and, unlike KS, sees every part of the CDFs. It
scales with the square root of the data's units, so the effect size is the energy
distance of both samples divided by the reference's (population) standard deviation,
which is the raw distance over ``sqrt(std)``; the raw distance is the statistic.

The default threshold is 0.1. For normal data a location shift of ``d`` standard
deviations gives a standardised energy distance of about ``0.75 * d``, so 0.1 flags
shifts from about 0.13 standard deviations, close to the normed Wasserstein distance's
0.1; two samples of 2,000 rows from one distribution land near 0.03.

A constant reference cannot be standardised: any change from it reads as an infinite
distance (drift), no change as 0.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> result = EnergyDistance()(rng.normal(size=2000), rng.normal(0.5, size=2000))
>>> result.drifted, round(result.effect_size, 3)
(True, 0.383)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from hindsight.drift.stattests.base import DriftTest, as_numeric, register
from hindsight.drift.stattests.wasserstein import normed

__all__ = ["EnergyDistance"]


@register
class EnergyDistance(DriftTest):
    """Standardised energy distance; drift when it reaches ``threshold`` (default 0.1)."""

    name = "energy_distance"
    kinds = frozenset({"numeric"})
    has_p_value = False
    default_threshold = 0.1
    threshold_on = "effect_size"
    effect_name = "energy_distance_normed"

    def _compute(
        self, reference: Any, current: Any
    ) -> tuple[float, float | None, float, dict[str, Any]]:
        ref = as_numeric(reference, "reference")
        cur = as_numeric(current, "current")
        distance = float(stats.energy_distance(ref, cur))
        scale = float(np.std(ref))
        return (
            distance,
            None,
            normed(distance, math.sqrt(scale)),
            {"reference_std": scale, "n_reference": ref.size, "n_current": cur.size},
        )
