"""Population Stability Index: the symmetrised KL divergence of two binned distributions.

``PSI = sum((q - p) * ln(q / p))`` over bins, with ``p`` the reference's and ``q`` the
current sample's share of each bin. Numeric samples are cut into ``bins`` bins at the
reference's quantiles (so each reference bin holds about the same share, the usual
"decile" PSI); labels and :class:`~hindsight.drift.stattests.Counts` are compared category
by category. A share of zero would make the logarithm infinite, so every share is raised
to at least ``epsilon`` (default ``1e-4``, one row in ten thousand) before the sum.

The industry rules of thumb: below 0.1 the population is stable, 0.1 to 0.25 is a
moderate shift worth a look, above 0.25 a major shift. The default threshold is 0.1.

This module also holds :func:`distribution_counts` and :func:`proportions`, which every
binned distance (Jensen-Shannon, Hellinger, KL, total variation) shares.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> result = PSI()(rng.normal(size=2000), rng.normal(0.5, size=2000))
>>> result.drifted, round(result.effect_size, 3)
(True, 0.26)
"""

from __future__ import annotations

import numpy as np

from hindsight.drift.stattests.base import register
from hindsight.drift.stattests.binned import (
    DEFAULT_BINS,
    DEFAULT_EPSILON,
    SmoothedBinnedDistance,
    distribution_counts,
    proportions,
)

__all__ = ["DEFAULT_BINS", "DEFAULT_EPSILON", "PSI", "distribution_counts", "proportions", "psi_value"]


def psi_value(p: np.ndarray, q: np.ndarray, epsilon: float) -> float:
    """PSI of reference shares ``p`` and current shares ``q``, shares floored at ``epsilon``."""
    p = np.maximum(p, epsilon)
    q = np.maximum(q, epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


@register
class PSI(SmoothedBinnedDistance):
    """Population Stability Index; drift when it reaches ``threshold`` (default 0.1).

    ``bins`` sets how many reference-quantile bins numeric samples are cut into (tied
    quantiles merge, so there may be fewer); ``epsilon`` is the floor on every bin's share.
    """

    name = "psi"
    default_threshold = 0.1
    effect_name = "psi"

    def distance(self, p: np.ndarray, q: np.ndarray) -> float:
        return psi_value(p, q, float(self.epsilon))
