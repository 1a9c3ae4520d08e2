"""Wasserstein-1 distance in units of the reference's standard deviation.

The earth mover's distance between two 1-D samples is the area between their empirical
CDFs, ``integral |F(x) - G(x)| dx``: how far, on average, each unit of probability mass
has to move. It is in the column's own units, so it is divided by the reference's
(population) standard deviation to make one threshold fit every column; a value of 0.1
means the mass moved a tenth of a standard deviation on average, and a pure location
shift of ``d`` standard deviations gives exactly ``d``. The raw distance is the
statistic, the normed one the effect size the threshold applies to (default 0.1).

A constant reference has no spread to norm by: any change from it is reported as an
infinite normed distance (drift), no change as 0.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> result = Wasserstein()(rng.normal(size=2000), rng.normal(0.5, size=2000))
>>> result.drifted, round(result.effect_size, 3)
(True, 0.526)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from hindsight.drift.stattests.base import DriftTest, as_numeric, register

__all__ = ["Wasserstein", "normed"]


def normed(distance: float, scale: float) -> float:
    """``distance / scale``; a zero ``scale`` gives 0 for no distance and infinity otherwise."""
    if scale > 0.0:
        return distance / scale
    return 0.0 if distance == 0.0 else math.inf


@register
class Wasserstein(DriftTest):
    """Normed Wasserstein-1 distance; drift when it reaches ``threshold`` (default 0.1)."""

    name = "wasserstein"
    kinds = frozenset({"numeric"})
    has_p_value = False
    default_threshold = 0.1
    threshold_on = "effect_size"
    effect_name = "wasserstein_distance_normed"

    def _compute(
        self, reference: Any, current: Any
    ) -> tuple[float, float | None, float, dict[str, Any]]:
        ref = as_numeric(reference, "reference")
        cur = as_numeric(current, "current")
        distance = float(stats.wasserstein_distance(ref, cur))
        scale = float(np.std(ref))
        return (
            distance,
            None,
            normed(distance, scale),
            {"reference_std": scale, "n_reference": ref.size, "n_current": cur.size},
        )
