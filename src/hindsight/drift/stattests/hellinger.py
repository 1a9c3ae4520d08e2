"""Hellinger distance: the Euclidean distance of the square roots of two distributions.

``H = sqrt(sum((sqrt(p) - sqrt(q)) ** 2) / 2)``, equal to ``sqrt(1 - sum(sqrt(p * q)))``,
with ``p`` and ``q`` the reference's and current sample's bin shares; it lies in [0, 1]
and, like Jensen-Shannon, needs no smoothing of empty bins. Numeric samples are cut at
the reference's quantiles (``bins``, default 10); labels and
:class:`~hindsight.drift.stattests.Counts` are compared per category. The first form is
used because it cannot go negative under rounding.

The default threshold is 0.1. For small changes ``8 * H ** 2`` is about the PSI, so
H = 0.1 matches a PSI of about 0.08, just under PSI's "moderate shift" cut-off of 0.1.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> result = Hellinger()(rng.normal(size=2000), rng.normal(0.5, size=2000))
>>> result.drifted, round(result.effect_size, 3)
(True, 0.179)
"""

from __future__ import annotations

import math

import numpy as np

from hindsight.drift.stattests.base import register
from hindsight.drift.stattests.binned import BinnedDistance

__all__ = ["Hellinger", "hellinger_distance"]


def hellinger_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Hellinger distance of two share vectors that each sum to 1."""
    return math.sqrt(float(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)) / 2.0)


@register
class Hellinger(BinnedDistance):
    """Hellinger distance; drift when it reaches ``threshold`` (default 0.1)."""

    name = "hellinger"
    default_threshold = 0.1
    effect_name = "hellinger_distance"

    def distance(self, p: np.ndarray, q: np.ndarray) -> float:
        return hellinger_distance(p, q)
