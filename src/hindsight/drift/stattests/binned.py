"""The binned distances' shared base: counts per bin or category, then a distance of shares.

PSI, Jensen-Shannon, Hellinger, KL and total variation all compare two distributions
of shares: numeric samples cut at the reference's quantiles, labels per category, or
:class:`~hindsight.drift.stattests.Counts` as given. A subclass only says how far
apart two share vectors are.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from hindsight._validation import Interval
from hindsight.drift.stattests.base import (
    Counts,
    DriftTest,
    as_counts,
    as_numeric,
    quantile_bin_counts,
)

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_EPSILON",
    "BinnedDistance",
    "SmoothedBinnedDistance",
    "distribution_counts",
    "proportions",
]

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


class BinnedDistance(DriftTest):
    """A distance between the bin shares of two samples; no p-value."""

    kinds = frozenset({"numeric", "categorical"})
    has_p_value = False
    threshold_on = "effect_size"
    _constraints = {"bins": Interval(int, 2, None)}

    bins: int

    def __init__(self, threshold: float | None = None, *, bins: int = DEFAULT_BINS) -> None:
        super().__init__(threshold, bins=bins)

    @abc.abstractmethod
    def distance(self, p: np.ndarray, q: np.ndarray) -> float:
        """How far apart reference shares ``p`` and current shares ``q`` are."""

    def _compute(
        self, reference: Any, current: Any
    ) -> tuple[float, float | None, float, dict[str, Any]]:
        counts, details = distribution_counts(reference, current, self.bins)
        value = self.distance(*proportions(counts))
        return value, None, value, {**details, **self._details()}

    def _details(self) -> dict[str, Any]:
        return {}


class SmoothedBinnedDistance(BinnedDistance):
    """A binned distance that takes logarithms, so every share is floored at ``epsilon``."""

    _constraints = {
        "bins": Interval(int, 2, None),
        "epsilon": Interval(float, 0.0, 1.0, closed="neither"),
    }

    epsilon: float

    def __init__(
        self,
        threshold: float | None = None,
        *,
        bins: int = DEFAULT_BINS,
        epsilon: float = DEFAULT_EPSILON,
    ) -> None:
        DriftTest.__init__(self, threshold, bins=bins, epsilon=epsilon)

    def _details(self) -> dict[str, Any]:
        return {"epsilon": float(self.epsilon)}
