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

from typing import Any

import numpy as np

from hindsight._validation import Interval
from hindsight.drift.stattests.base import (
    Counts,
    DriftTest,
    as_counts,
    as_numeric,
    quantile_bin_counts,
    register,
)

__all__ = ["DEFAULT_BINS", "DEFAULT_EPSILON", "PSI", "distribution_counts", "proportions"]

#: Number of quantile bins numeric samples are cut into (deciles, the usual PSI setting).
DEFAULT_BINS = 10
#: Smallest share a bin is given before taking logarithms (one row in ten thousand).
DEFAULT_EPSILON = 1e-4

_NUMERIC_KINDS = "iuf"  # signed/unsigned ints and floats; booleans are categories


def distribution_counts(reference: Any, current: Any, bins: int) -> tuple[Counts, dict[str, Any]]:
    """Aligned counts of both samples and how they were formed.

    :class:`Counts` pass through (``current`` is then ignored); two numeric arrays (ints or
    floats) are cut into ``bins`` bins at the reference's quantiles; anything else (strings,
    booleans, objects) is counted per label.
    """
    if isinstance(reference, Counts):
        return reference, {"binning": "counts", "n_bins": int(reference.reference.size)}
    ref = np.asarray(reference)
    cur = np.asarray(current)
    if ref.dtype.kind in _NUMERIC_KINDS and cur.dtype.kind in _NUMERIC_KINDS:
        counts = quantile_bin_counts(as_numeric(ref, "reference"), as_numeric(cur, "current"), bins)
        return counts, {"binning": "reference_quantiles", "n_bins": int(counts.reference.size)}
    counts = as_counts(ref, cur)
    return counts, {"binning": "categories", "n_bins": int(counts.reference.size)}


def proportions(counts: Counts) -> tuple[np.ndarray, np.ndarray]:
    """The reference's and the current sample's share of each bin (each sums to 1)."""
    return counts.reference / counts.n_reference, counts.current / counts.n_current


def psi_value(p: np.ndarray, q: np.ndarray, epsilon: float) -> float:
    """PSI of reference shares ``p`` and current shares ``q``, shares floored at ``epsilon``."""
    p = np.maximum(p, epsilon)
    q = np.maximum(q, epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


@register
class PSI(DriftTest):
    """Population Stability Index; drift when it reaches ``threshold`` (default 0.1).

    ``bins`` sets how many reference-quantile bins numeric samples are cut into (tied
    quantiles merge, so there may be fewer); ``epsilon`` is the floor on every bin's share.
    """

    name = "psi"
    kinds = frozenset({"numeric", "categorical"})
    has_p_value = False
    default_threshold = 0.1
    threshold_on = "effect_size"
    effect_name = "psi"
    _constraints = {
        "bins": Interval(int, 2, None),
        "epsilon": Interval(float, 0.0, 1.0, closed="neither"),
    }

    bins: int
    epsilon: float

    def __init__(
        self,
        threshold: float | None = None,
        *,
        bins: int = DEFAULT_BINS,
        epsilon: float = DEFAULT_EPSILON,
    ) -> None:
        super().__init__(threshold, bins=bins, epsilon=epsilon)

    def _compute(
        self, reference: Any, current: Any
    ) -> tuple[float, float | None, float, dict[str, Any]]:
        counts, details = distribution_counts(reference, current, self.bins)
        p, q = proportions(counts)
        value = psi_value(p, q, float(self.epsilon))
        return value, None, value, {**details, "epsilon": float(self.epsilon)}
