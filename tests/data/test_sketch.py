"""The quantile summary's bounds hold, exactly or as stated, through any merge."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from hindsight.data.sketch import DistinctSketch, QuantileSummary, hash_floats, hash_strings


def _true_ranks(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.sort(x)
    return np.searchsorted(s, t, side="right"), np.searchsorted(s, t, side="left")


def _check_bounds(summary: QuantileSummary, x: np.ndarray, queries: np.ndarray) -> None:
    le, lt = _true_ranks(x, queries)
    lo, hi = summary.rank_bounds(queries)
    assert np.all(lo <= le) and np.all(le <= hi)
    lo, hi = summary.rank_bounds(queries, strict=True)
    assert np.all(lo <= lt) and np.all(lt <= hi)
    # The stated error covers every query.
    assert np.all(hi - lo <= summary.rank_error * summary.n + 1e-9)


def test_exact_when_few_distinct_values() -> None:
    x = np.sort(np.random.default_rng(0).integers(0, 50, 10_000).astype(float))
    s = QuantileSummary.from_sorted(x, 64)
    assert s.exact and s.rank_error == 0.0
    q = np.linspace(-1, 51, 200)
    le, _ = _true_ranks(x, q)
    lo, hi = s.rank_bounds(q)
    np.testing.assert_array_equal(lo, le)
    np.testing.assert_array_equal(hi, le)


def test_single_partition_error_is_one_over_k() -> None:
    x = np.sort(np.random.default_rng(1).normal(size=100_000))
    s = QuantileSummary.from_sorted(x, 1000)
    assert s.values.size <= 1001
    assert s.rank_error <= 1.0 / 1000 + 2 / x.size
    _check_bounds(s, x, np.random.default_rng(2).normal(size=2000))
    # Quantiles are within the stated rank error.
    qs = np.linspace(0, 1, 101)
    vals = s.quantiles(qs)
    ranks = np.searchsorted(x, vals, side="right")
    assert np.all(np.abs(ranks - qs * x.size) <= s.rank_error * x.size + 1)


floats = st.floats(-1e6, 1e6, allow_nan=False, width=64)


@settings(max_examples=60, deadline=None)
@given(
    parts=st.lists(st.lists(floats | st.integers(-5, 5).map(float), max_size=300), min_size=1, max_size=8),
    k=st.integers(16, 64),
)
def test_merged_bounds_contain_true_ranks(parts: list[list[float]], k: int) -> None:
    arrays = [np.sort(np.asarray(p, dtype=np.float64)) for p in parts]
    merged = QuantileSummary.merge([QuantileSummary.from_sorted(a, k) for a in arrays], k)
    x = np.concatenate(arrays)
    assert merged.n == x.size
    if x.size == 0:
        return
    assert merged.values[0] == x.min() and merged.values[-1] == x.max()
    assert merged.values.size <= k + 1
    queries = np.concatenate([x, x + 0.5, x - 0.5, [x.min() - 1, x.max() + 1]])
    _check_bounds(merged, x, queries)
    # Merging all partitions at once keeps the error near 2/k.
    assert merged.rank_error <= 3.0 / k + len(parts) / x.size


def test_merge_is_deterministic_and_order_insensitive_in_bounds() -> None:
    rng = np.random.default_rng(4)
    arrays = [np.sort(rng.exponential(size=5000)) for _ in range(5)]
    parts = [QuantileSummary.from_sorted(a, 128) for a in arrays]
    a = QuantileSummary.merge(parts, 128)
    b = QuantileSummary.merge(parts, 128)
    assert a.values.tobytes() == b.values.tobytes() and a.le_hi.tobytes() == b.le_hi.tobytes()
    c = QuantileSummary.merge(parts[::-1], 128)
    np.testing.assert_array_equal(a.values, c.values)


def test_kmv_distinct_counts() -> None:
    small = DistinctSketch.from_hashes(hash_floats(np.arange(500.0)), 1024)
    assert small.exact and small.estimate() == 500
    rng = np.random.default_rng(5)
    big = DistinctSketch.from_hashes(hash_floats(rng.normal(size=200_000)), 1024)
    assert not big.exact
    assert abs(big.estimate() / 200_000 - 1) < 4 / np.sqrt(1022)  # 4 standard errors
    halves = [
        DistinctSketch.from_hashes(hash_floats(np.arange(0.0, 60_000)), 1024),
        DistinctSketch.from_hashes(hash_floats(np.arange(40_000.0, 100_000)), 1024),
    ]
    merged = DistinctSketch.merge(halves)
    assert abs(merged.estimate() / 100_000 - 1) < 4 / np.sqrt(1022)
    assert hash_floats(np.array([-0.0]))[0] == hash_floats(np.array([0.0]))[0]


def test_string_hashes_are_stable_and_distinct() -> None:
    words = pa.array(["", "a", "b", "ab", "ba", "a" * 40, None]).drop_null()
    h = hash_strings(words)
    assert len(set(h.tolist())) == len(words)
    np.testing.assert_array_equal(h, hash_strings(pa.chunked_array([words.slice(0, 3), words.slice(3)])))
