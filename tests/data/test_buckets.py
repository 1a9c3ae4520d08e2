"""Bucketed samples answer ranks, order statistics and the KS distance exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from hindsight.data.buckets import Buckets, float_keys, grid_for, ks_statistic
from hindsight.data.sketch import QuantileSummary


def _gen(rng: np.random.Generator, kind: int, n: int, shift: float = 0.0) -> np.ndarray:
    if kind == 0:
        return rng.integers(-5, 5, n).astype(float) + shift
    if kind == 1:
        return rng.lognormal(shift, 2, n) * rng.choice([-1, 1], n)
    if kind == 2:
        return np.where(rng.random(n) < 0.3, 0.0, rng.normal(shift, 1, n))
    return 1.7e9 + rng.normal(shift, 100, n)


def test_keys_order_like_floats() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [rng.normal(size=2000) * 10.0 ** rng.integers(-300, 300, 2000), [0.0, -0.0, 5e-324, -5e-324]]
    )
    order = np.argsort(x, kind="stable")
    k = float_keys(x)[order]
    assert np.all(k[1:] >= k[:-1])
    assert float_keys(np.array([-0.0]))[0] == float_keys(np.array([0.0]))[0]


@pytest.mark.parametrize("kind", range(4))
def test_counts_order_statistics_and_ks_match_sorting_and_scipy(kind: int) -> None:
    rng = np.random.default_rng(kind)
    for _ in range(40):
        a = _gen(rng, kind, int(rng.integers(1, 400)))
        b = _gen(rng, kind, int(rng.integers(1, 400)), 0.3)
        s = np.sort(a)
        t = np.concatenate([a, a + 1e-9, rng.normal(size=20) * 5, [a.min() - 1, a.max() + 1, 0.0]])
        buck = Buckets.build(a)
        np.testing.assert_array_equal(buck.count_le(t), np.searchsorted(s, t, side="right"))
        np.testing.assert_array_equal(buck.count_le(t, strict=True), np.searchsorted(s, t, side="left"))
        r = rng.integers(0, a.size, 10)
        np.testing.assert_array_equal(buck.order_statistics(r), s[r])
        grid = grid_for([a, b])
        d = ks_statistic(Buckets.build(a, grid), Buckets.build(b, grid))
        assert d == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(
    a=st.lists(st.floats(-1e9, 1e9, allow_nan=False) | st.integers(-3, 3).map(float), min_size=1, max_size=200),
    b=st.lists(st.floats(-1e9, 1e9, allow_nan=False) | st.integers(-3, 3).map(float), min_size=1, max_size=200),
)
def test_ks_is_exact_on_arbitrary_samples(a: list[float], b: list[float]) -> None:
    x, y = np.asarray(a), np.asarray(b)
    grid = grid_for([x, y])
    d = ks_statistic(Buckets.build(x, grid), Buckets.build(y, grid))
    with np.errstate(divide="ignore"):  # SciPy's p-value divides by zero at one value
        expected = stats.ks_2samp(x, y, method="asymp").statistic
    assert d == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("kind", range(4))
def test_summary_from_buckets_equals_summary_from_sorted(kind: int) -> None:
    rng = np.random.default_rng(10 + kind)
    x = _gen(rng, kind, 50_000)
    a = QuantileSummary.from_buckets(Buckets.build(x), 512, Buckets.build(x).distinct_values())
    b = QuantileSummary.from_sorted(np.sort(x), 512)
    for field in ("values", "lt_lo", "lt_hi", "le_lo", "le_hi"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
