"""The shared statistics agree with SciPy and a direct NumPy computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hindsight.training._stats import MAD_SCALE, ls_fit, robust_zscore


@pytest.mark.parametrize("seed", range(5))
def test_ls_fit_matches_linregress_on_every_prefix(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = np.sort(rng.integers(0, 1000, size=40)).astype(float) + np.arange(40)
    y = 0.3 * x + rng.normal(size=40)
    for n in range(2, 41):
        slope, intercept = ls_fit(x[:n], y[:n])
        ref = stats.linregress(x[:n], y[:n])
        assert slope == pytest.approx(ref.slope, rel=1e-9, abs=1e-12)
        assert intercept == pytest.approx(ref.intercept, rel=1e-9, abs=1e-9)


def test_ls_fit_of_a_constant_x_is_flat() -> None:
    assert ls_fit([3, 3, 3], [1.0, 2.0, 3.0]) == (0.0, 2.0)


@pytest.mark.parametrize("seed", range(5))
def test_robust_zscore_matches_numpy_and_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.standard_t(3, size=51)
    value = 4.2
    z, med, mad = robust_zscore(value, ref)
    direct_mad = np.median(np.abs(ref - np.median(ref)))
    assert med == np.median(ref)
    assert mad == pytest.approx(direct_mad)
    assert z == pytest.approx((value - np.median(ref)) / (MAD_SCALE * direct_mad))
    scipy_sigma = stats.median_abs_deviation(ref, scale="normal")
    assert z == pytest.approx((value - med) / scipy_sigma, rel=1e-4)


def test_robust_zscore_of_a_flat_reference() -> None:
    assert robust_zscore(1.0, [1.0, 1.0, 1.0])[0] == 0.0
    assert robust_zscore(2.0, [1.0, 1.0, 1.0])[0] == np.inf
