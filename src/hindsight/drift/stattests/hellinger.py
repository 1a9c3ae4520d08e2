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
from typing import Any

import numpy as np

from hindsight._validation import Interval
from hindsight.drift.stattests.base import DriftTest, register
from hindsight.drift.stattests.psi import DEFAULT_BINS, distribution_counts, proportions

__all__ = ["Hellinger", "hellinger_distance"]


def hellinger_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Hellinger distance of two share vectors that each sum to 1."""
    return math.sqrt(float(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)) / 2.0)


@register
class Hellinger(DriftTest):
    """Hellinger distance; drift when it reaches ``threshold`` (default 0.1)."""

    name = "hellinger"
    kinds = frozenset({"numeric", "categorical"})
    has_p_value = False
    default_threshold = 0.1
    threshold_on = "effect_size"
    effect_name = "hellinger_distance"
    _constraints = {"bins": Interval(int, 2, None)}

    bins: int

    def __init__(self, threshold: float | None = None, *, bins: int = DEFAULT_BINS) -> None:
        super().__init__(threshold, bins=bins)

    def _compute(
        self, reference: Any, current: Any
    ) -> tuple[float, float | None, float, dict[str, Any]]:
        counts, details = distribution_counts(reference, current, self.bins)
        value = hellinger_distance(*proportions(counts))
        return value, None, value, details
