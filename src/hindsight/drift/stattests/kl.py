"""Kullback-Leibler divergence of the current distribution from the reference.

``KL(q || p) = sum(q * ln(q / p))`` in nats, with ``p`` and ``q`` the reference's and
current sample's bin shares: the information lost when the reference is used to describe
today's data. It is infinite when the current sample fills a bin the reference left
empty, so every share is first raised to at least ``epsilon`` (default ``1e-4``) and the
shares renormalised, as :func:`scipy.stats.entropy` does. Numeric samples are cut at the
reference's quantiles (``bins``, default 10); labels and
:class:`~hindsight.drift.stattests.Counts` are compared per category.

The default threshold is 0.05 nats. For small changes ``KL(q || p)`` and ``KL(p || q)``
are about equal and PSI is their sum, so 0.05 matches PSI's usual cut-off of 0.1.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> result = KLDivergence()(rng.normal(size=2000), rng.normal(0.5, size=2000))
>>> result.drifted, round(result.effect_size, 3)
(True, 0.128)
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from hindsight.drift.stattests.base import register
from hindsight.drift.stattests.binned import SmoothedBinnedDistance

__all__ = ["KLDivergence", "kl_divergence"]


def kl_divergence(p: np.ndarray, q: np.ndarray, epsilon: float) -> float:
    """``KL(q || p)`` in nats of shares ``q`` from reference shares ``p``, floored at ``epsilon``."""
    return float(stats.entropy(np.maximum(q, epsilon), np.maximum(p, epsilon)))


@register
class KLDivergence(SmoothedBinnedDistance):
    """KL divergence D(current || reference); drift when it reaches ``threshold`` (0.05)."""

    name = "kl_divergence"
    default_threshold = 0.05
    effect_name = "kl_divergence"

    def distance(self, p: np.ndarray, q: np.ndarray) -> float:
        return kl_divergence(p, q, float(self.epsilon))
