"""The KS statistic against a profile, with the interval the true statistic lies in.

A stored reference profile keeps a :class:`~hindsight.data.sketch.QuantileSummary`, so
its CDF is known exactly at the knots (exact profiles) or within stated bounds. Against
a raw current sample or another summary, the KS distance is then
bracketed: ``low`` is the largest gap that must exist at some evaluated point; ``high``
is the largest gap that could exist anywhere between two knots. Decisions use ``low``
(conservative); reports carry both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hindsight.data.buckets import Buckets
from hindsight.data.sketch import QuantileSummary

__all__ = ["KSBounds", "ks_bounds_sample", "ks_bounds_summaries"]


@dataclass(frozen=True)
class KSBounds:
    """The KS distance lies in ``[low, high]``."""

    low: float
    high: float


def _gap(a_lo: np.ndarray, a_hi: np.ndarray, b_lo: np.ndarray, b_hi: np.ndarray) -> np.ndarray:
    """The smallest distance between intervals ``[a_lo, a_hi]`` and ``[b_lo, b_hi]``."""
    return np.maximum(np.maximum(a_lo - b_hi, b_lo - a_hi), 0.0)


def ks_bounds_sample(ref: QuantileSummary, cur: Buckets) -> KSBounds:
    """Bounds on the KS distance between a summarised reference and a raw current sample.

    The current CDF at each knot is bracketed by its bucket's counts (no pass over the
    data); those brackets are a tiny share of the sample, far below the knots' gaps.
    """
    n, m = ref.n, cur.n
    v = ref.values
    c_lo, c_hi = (c / m for c in cur.count_bounds(v))
    le_lo, le_hi = ref.le_lo / n, ref.le_hi / n
    lt_lo, lt_hi = ref.lt_lo / n, ref.lt_hi / n
    low = max(
        float(_gap(le_lo, le_hi, c_lo, c_hi).max()),
        float(_gap(lt_lo, lt_hi, c_lo, c_hi).max()),
    )
    at_knots = max(
        float(np.maximum(le_hi - c_lo, c_hi - le_lo).max()),
        float(np.maximum(lt_hi - c_lo, c_hi - lt_lo).max()),
    )
    between = 0.0
    if v.size > 1:
        # In (v_i, v_{i+1}) the reference CDF is in [le_lo_i, lt_hi_{i+1}], the current
        # one in [c_lo_i, c_hi_{i+1}].
        between = float(np.maximum(lt_hi[1:] - c_lo[:-1], c_hi[1:] - le_lo[:-1]).max())
    return KSBounds(low, max(low, at_knots, between))


def ks_bounds_summaries(a: QuantileSummary, b: QuantileSummary) -> KSBounds:
    """Bounds on the KS distance between two summarised samples."""
    grid = np.union1d(a.values, b.values)
    na, nb = a.n, b.n
    a_le_lo, a_le_hi = (x / na for x in a.rank_bounds(grid))
    a_lt_lo, a_lt_hi = (x / na for x in a.rank_bounds(grid, strict=True))
    b_le_lo, b_le_hi = (x / nb for x in b.rank_bounds(grid))
    b_lt_lo, b_lt_hi = (x / nb for x in b.rank_bounds(grid, strict=True))
    low = max(
        float(_gap(a_le_lo, a_le_hi, b_le_lo, b_le_hi).max()),
        float(_gap(a_lt_lo, a_lt_hi, b_lt_lo, b_lt_hi).max()),
    )
    at_points = max(
        float(np.maximum(a_le_hi - b_le_lo, b_le_hi - a_le_lo).max()),
        float(np.maximum(a_lt_hi - b_lt_lo, b_lt_hi - a_lt_lo).max()),
    )
    between = 0.0
    if grid.size > 1:
        between = float(
            np.maximum(a_lt_hi[1:] - b_le_lo[:-1], b_lt_hi[1:] - a_le_lo[:-1]).max()
        )
    return KSBounds(low, max(low, at_points, between))
