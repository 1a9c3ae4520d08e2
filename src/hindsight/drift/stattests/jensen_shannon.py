"""Jensen-Shannon distance: the square root of the mean KL divergence to the midpoint.

With ``p`` and ``q`` the reference's and current sample's bin shares and
``m = (p + q) / 2``, the divergence is ``(KL(p || m) + KL(q || m)) / 2`` in bits and the
distance is its square root, so it lies in [0, 1] (0: same shares, 1: no bin in common).
Unlike KL and PSI it is finite when a bin is empty on one side, so no smoothing is
needed. Numeric samples are cut at the reference's quantiles (``bins``, default 10);
labels and :class:`~hindsight.drift.stattests.Counts` are compared per category. The
value equals :func:`scipy.spatial.distance.jensenshannon` with ``base=2``; it is computed
here directly so that rounding can never make the divergence negative (a NaN distance).

The default threshold is 0.1. For small changes the divergence in nats is about PSI / 8,
so a distance of 0.1 matches a PSI of about 0.055: a little stricter than PSI's 0.1, while
sampling noise alone stays near 0.04 for 2,000 rows in 10 bins.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> result = JensenShannon()(rng.normal(size=2000), rng.normal(0.5, size=2000))
>>> result.drifted, round(result.effect_size, 3)
(True, 0.214)
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import rel_entr

from hindsight.drift.stattests.base import register
from hindsight.drift.stattests.binned import BinnedDistance

__all__ = ["JensenShannon", "jensen_shannon_distance"]


def jensen_shannon_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Base-2 Jensen-Shannon distance of two share vectors that each sum to 1."""
    m = (p + q) / 2.0
    divergence = (float(rel_entr(p, m).sum()) + float(rel_entr(q, m).sum())) / 2.0
    return math.sqrt(max(divergence, 0.0) / math.log(2.0))


@register
class JensenShannon(BinnedDistance):
    """Jensen-Shannon distance (base 2); drift when it reaches ``threshold`` (default 0.1)."""

    name = "jensen_shannon"
    default_threshold = 0.1
    effect_name = "jensen_shannon_distance"

    def distance(self, p: np.ndarray, q: np.ndarray) -> float:
        return jensen_shannon_distance(p, q)
