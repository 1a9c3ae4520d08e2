"""Deterministic, mergeable summaries: a quantile summary with exact rank bounds, and KMV.

:class:`QuantileSummary` keeps up to ``k + 1`` knots of a numeric column; for each knot
``v`` it stores lower and upper bounds on ``#{x < v}`` and ``#{x <= v}``. Built from one
sorted column the bounds are exact (lower == upper), and a column with at most ``k + 1``
distinct values is kept whole, so every rank query is exact. Merging partition summaries
carries the bounds through (Greenwald-Khanna style), so the error of any rank query is
*known from the summary itself*: :attr:`QuantileSummary.rank_error` is the largest
possible error of any CDF value, as a fraction of the count. Merging all partitions at
once keeps it under about ``2 / k``.

Why not DataSketches' KLL: its compactions flip coins seeded from the clock, so the
same data would not give the same bytes; profiles here must be deterministic.

:class:`DistinctSketch` is a K-minimum-values sketch over 64-bit hashes: exact while a
column has fewer than ``k`` distinct values, then an estimate with relative standard
error about ``1 / sqrt(k - 2)``; merged by keeping the ``k`` smallest hashes of the union.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hindsight.data.buckets import Buckets

__all__ = ["DistinctSketch", "QuantileSummary", "hash_floats", "hash_strings"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijective, well-mixed 64-bit hash of 64-bit keys."""
    z = z + _GOLDEN  # the one copy; everything after works in place
    t = np.empty_like(z)
    with np.errstate(over="ignore"):
        np.right_shift(z, np.uint64(30), out=t)
        z ^= t
        z *= _M1
        np.right_shift(z, np.uint64(27), out=t)
        z ^= t
        z *= _M2
        np.right_shift(z, np.uint64(31), out=t)
        z ^= t
    return z


def hash_floats(values: np.ndarray) -> np.ndarray:
    """64-bit hashes of float64 values (``-0.0`` and ``0.0`` hash alike)."""
    v = np.asarray(values, dtype=np.float64) + 0.0  # turns -0.0 into 0.0
    return _mix64(v.view(np.uint64))


def hash_strings(values: pa.Array) -> np.ndarray:
    """64-bit hashes of the strings of an Arrow array (FNV-1a over bytes, then mixed).

    Vectorised over strings: the loop runs over byte positions, not over values.
    """
    arr = pc.cast(values, pa.large_binary())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data_buf = arr.buffers()[2]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    starts = offsets[:-1]
    lengths = np.diff(offsets)
    h = np.full(n, _FNV_OFFSET, dtype=np.uint64)
    longest = int(lengths.max()) if n else 0
    with np.errstate(over="ignore"):
        for j in range(longest):
            live = np.flatnonzero(lengths > j)
            h[live] = (h[live] ^ data[starts[live] + j].astype(np.uint64)) * _FNV_PRIME
        h ^= lengths.astype(np.uint64)
    return _mix64(h)


@dataclass(frozen=True)
class DistinctSketch:
    """K-minimum-values distinct-count sketch; ``hashes`` are the k smallest, sorted."""

    k: int
    hashes: np.ndarray  # uint64, sorted, unique, at most k

    @classmethod
    def from_hashes(cls, hashes: np.ndarray, k: int) -> DistinctSketch:
        """The sketch of a set of hashes (duplicates allowed)."""
        h = np.asarray(hashes, dtype=np.uint64)
        # Hashes are uniform: the k smallest distinct ones lie below about k/N of the range.
        # Widen the cut until it holds k distinct hashes (or everything).
        frac = 4.0 * k / max(h.size, 1)
        while frac < 1.0:
            cand = np.unique(h[h < np.uint64(frac * 2.0**64)])
            if cand.size >= k:
                return cls(k, cand[:k])
            frac *= 16.0
        return cls(k, np.unique(h)[:k])

    @property
    def exact(self) -> bool:
        return self.hashes.size < self.k

    def estimate(self) -> float:
        """Distinct values counted; NaN for a sketch that was not computed (``k == 0``)."""
        if self.k == 0:
            return float("nan")
        if self.exact:
            return float(self.hashes.size)
        kth = float(self.hashes[self.k - 1]) / 2.0**64
        return (self.k - 1) / kth

    @classmethod
    def merge(cls, sketches: Sequence[DistinctSketch]) -> DistinctSketch:
        k = min(s.k for s in sketches)
        if k == 0:
            return cls(0, np.zeros(0, dtype=np.uint64))
        return cls.from_hashes(np.concatenate([s.hashes for s in sketches]), k)


@dataclass(frozen=True)
class QuantileSummary:
    """Knots of a numeric column with bounds on ``#{x < v}`` and ``#{x <= v}`` at each.

    Arrays are int64 counts except ``values`` (float64, strictly increasing). The first
    and last knots are the exact minimum and maximum.
    """

    n: int
    values: np.ndarray
    lt_lo: np.ndarray
    lt_hi: np.ndarray
    le_lo: np.ndarray
    le_hi: np.ndarray

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_sorted(cls, x: np.ndarray, k: int) -> QuantileSummary:
        """Exact summary of a sorted, finite float64 array, at most ``k + 1`` knots."""
        n = int(x.size)
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(0, np.zeros(0), empty, empty, empty, empty)
        last = np.flatnonzero(np.append(x[1:] != x[:-1], True))
        if last.size <= k + 1:
            values = x[last]
            le = last.astype(np.int64) + 1
            lt = np.concatenate([[0], le[:-1]])
            return cls(n, values, lt, lt.copy(), le, le.copy())
        idx = np.unique(np.round(np.linspace(0, n - 1, k + 1)).astype(np.int64))
        values = np.unique(x[idx])
        lt = np.searchsorted(x, values, side="left").astype(np.int64)
        le = np.searchsorted(x, values, side="right").astype(np.int64)
        return cls(n, values, lt, lt.copy(), le, le.copy())

    @classmethod
    def from_buckets(
        cls, b: Buckets, k: int, distinct: tuple[np.ndarray, np.ndarray] | None = None
    ) -> QuantileSummary:
        """The same summary as :meth:`from_sorted` of the sorted sample, without sorting it."""
        n = b.n
        if n == 0:
            return cls.from_sorted(np.zeros(0), k)
        if distinct is not None and distinct[0].size <= k + 1:
            values, counts = distinct
            le = np.cumsum(counts).astype(np.int64)
            lt = le - counts
            return cls(n, values, lt, lt.copy(), le, le.copy())
        idx = np.unique(np.round(np.linspace(0, n - 1, k + 1)).astype(np.int64))
        values, lt, le = b.knots(idx)
        if values.size == idx.size or distinct is not None:
            return cls(n, values, lt, lt.copy(), le, le.copy())
        # Few distinct values: from_sorted keeps all of them when they fit.
        dv = b.distinct_values()
        if dv is not None and dv[0].size <= k + 1:
            return cls.from_buckets(b, k, dv)
        return cls(n, values, lt, lt.copy(), le, le.copy())

    @classmethod
    def from_bucket_counts(
        cls, b: Buckets, k: int, lo: float, hi: float, distinct: tuple[np.ndarray, np.ndarray] | None
    ) -> QuantileSummary:
        """A bounded summary read off the bucket counts alone (no pass over the values).

        Knots are bucket boundaries, where ``#{x < v}`` is exact and ``#{x <= v}`` is
        within the bucket's count; the first and last knots are the exact extremes.
        Exact instead when the column has at most ``k + 1`` distinct values.
        """
        n = b.n
        if n == 0 or (distinct is not None and distinct[0].size <= k + 1):
            return cls.from_buckets(b, k, distinct)
        targets = np.linspace(0, n - 1, k + 1)
        j = np.unique(np.searchsorted(b.cum, targets, side="right") - 1)
        edges = b.lower_edges(j)
        inside = (edges > lo) & (edges < hi)  # a bucket's edge can lie below the minimum
        j, edges = j[inside], edges[inside]
        lt = b.cum[j].astype(np.int64)
        le_hi = b.cum[j + 1].astype(np.int64)
        first_hi = int(b.cum[int(b.bucket_of(np.array([lo]))[0]) + 1])
        last_lo = int(b.cum[int(b.bucket_of(np.array([hi]))[0])])
        values = np.concatenate([[lo], edges, [hi]])
        lt_lo = np.concatenate([[0], lt, [last_lo]]).astype(np.int64)
        lt_hi = np.concatenate([[0], lt, [n - 1]]).astype(np.int64)
        le_lo = np.concatenate([[1], lt, [n]]).astype(np.int64)
        le_hi = np.concatenate([[first_hi], le_hi, [n]]).astype(np.int64)
        if hi == lo:  # one value
            return cls(n, values[:1], lt_lo[:1], lt_lo[:1].copy(), np.array([n]), np.array([n]))
        return cls(n, values, lt_lo, lt_hi, le_lo, le_hi)

    # -- queries ------------------------------------------------------------------
    @property
    def exact(self) -> bool:
        return self.rank_error == 0.0

    @property
    def rank_error(self) -> float:
        """Largest possible error of any CDF value this summary answers (fraction of n)."""
        if self.n == 0:
            return 0.0
        at_knots = max(
            int((self.le_hi - self.le_lo).max()), int((self.lt_hi - self.lt_lo).max())
        )
        between = int((self.lt_hi[1:] - self.le_lo[:-1]).max()) if self.values.size > 1 else 0
        return max(at_knots, between) / self.n

    def rank_bounds(self, t: np.ndarray, *, strict: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds on ``#{x <= t}`` (or ``#{x < t}`` if ``strict``)."""
        t = np.asarray(t, dtype=np.float64)
        m = self.values.size
        i = np.searchsorted(self.values, t, side="right") - 1
        ic = np.clip(i, 0, m - 1)
        hit = (i >= 0) & (self.values[ic] == t)
        nxt = np.clip(i + 1, 0, m - 1)
        # Strictly between knots i and i+1 both counts lie in [le_lo[i], lt_hi[i+1]].
        below_lo = np.where(i >= 0, self.le_lo[ic], 0)
        above_hi = np.where(i + 1 < m, self.lt_hi[nxt], self.n)
        if strict:
            lo = np.where(hit, self.lt_lo[ic], below_lo)
            hi = np.where(hit, self.lt_hi[ic], above_hi)
        else:
            lo = np.where(hit, self.le_lo[ic], below_lo)
            hi = np.where(hit, self.le_hi[ic], above_hi)
        return lo.astype(np.int64), hi.astype(np.int64)

    def quantiles(self, qs: Sequence[float] | np.ndarray) -> np.ndarray:
        """Values whose rank is closest to ``q * n`` for each ``q`` (within ``rank_error``)."""
        q = np.asarray(qs, dtype=np.float64)
        if self.n == 0:
            return np.full(q.shape, np.nan)
        mid = (self.le_lo + self.le_hi) / 2.0
        target = np.clip(q, 0.0, 1.0) * self.n
        j = np.clip(np.searchsorted(mid, target, side="left"), 0, self.values.size - 1)
        return self.values[j]

    def cdf(self, t: np.ndarray) -> np.ndarray:
        """Mid-point estimate of the CDF at ``t`` (``#{x <= t} / n``)."""
        lo, hi = self.rank_bounds(t)
        return (lo + hi) / (2.0 * max(self.n, 1))

    def bin_counts(self, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Estimated counts in ``(-inf, e0], (e0, e1], ..., (e_last, inf)`` and their error."""
        lo, hi = self.rank_bounds(np.asarray(edges, dtype=np.float64))
        mid = (lo + hi) / 2.0
        cum = np.concatenate([[0.0], mid, [float(self.n)]])
        err = np.concatenate([[0.0], (hi - lo) / 2.0, [0.0]])
        return np.diff(cum), err[1:] + err[:-1]

    # -- merging ------------------------------------------------------------------
    @classmethod
    def merge(cls, parts: Sequence[QuantileSummary], k: int) -> QuantileSummary:
        """One summary of the union of ``parts``, compressed to at most ``k + 1`` knots."""
        parts = [p for p in parts if p.n > 0]
        if not parts:
            return cls.from_sorted(np.zeros(0), k)
        if len(parts) == 1:
            return parts[0].compress(k)
        values = np.unique(np.concatenate([p.values for p in parts]))
        n = sum(p.n for p in parts)
        lt_lo = np.zeros(values.size, dtype=np.int64)
        lt_hi = np.zeros_like(lt_lo)
        le_lo = np.zeros_like(lt_lo)
        le_hi = np.zeros_like(lt_lo)
        for p in parts:
            a, b = p.rank_bounds(values, strict=True)
            lt_lo += a
            lt_hi += b
            a, b = p.rank_bounds(values)
            le_lo += a
            le_hi += b
        return cls(n, values, lt_lo, lt_hi, le_lo, le_hi).compress(k)

    def compress(self, k: int) -> QuantileSummary:
        """Keep at most ``k + 1`` knots spread evenly in rank; bounds are kept as they are."""
        m = self.values.size
        if m <= k + 1:
            return self
        mid = (self.le_lo + self.le_hi) / 2.0
        targets = np.linspace(0.0, float(self.n), k + 1)
        j = np.clip(np.searchsorted(mid, targets, side="left"), 0, m - 1)
        keep = np.unique(np.concatenate([[0, m - 1], j]))
        return QuantileSummary(
            self.n,
            self.values[keep],
            self.lt_lo[keep],
            self.lt_hi[keep],
            self.le_lo[keep],
            self.le_hi[keep],
        )
