"""Total variation distance: the share of probability mass that has to move.

``TV = sum(|p - q|) / 2`` with ``p`` and ``q`` the reference's and current sample's bin
shares; it lies in [0, 1] and equals the largest difference in probability the two
distributions give any set of bins. Numeric samples are cut at the reference's quantiles
(``bins``, default 10); labels and :class:`~hindsight.drift.stattests.Counts` are compared
per category.

The default threshold, 0.1, reads directly: drift once a tenth of the mass has moved.
Sampling noise alone moves a few hundredths (about 0.04 for 2,000 rows in 10 quantile
bins; it shrinks as ``sqrt(bins / n)``).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> result = TotalVariation()(rng.normal(size=2000), rng.normal(0.5, size=2000))
>>> result.drifted, round(result.effect_size, 3)
(True, 0.196)
"""

from __future__ import annotations

import numpy as np

from hindsight.drift.stattests.base import register
from hindsight.drift.stattests.binned import BinnedDistance

__all__ = ["TotalVariation", "total_variation_distance"]


def total_variation_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance of two share vectors that each sum to 1."""
    return float(np.abs(p - q).sum() / 2.0)


@register
class TotalVariation(BinnedDistance):
    """Total variation distance; drift when it reaches ``threshold`` (default 0.1)."""

    name = "total_variation"
    default_threshold = 0.1
    effect_name = "total_variation_distance"

    def distance(self, p: np.ndarray, q: np.ndarray) -> float:
        return total_variation_distance(p, q)
