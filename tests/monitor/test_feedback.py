"""Exposure concentration and holdout divergence of a recommender's feedback loop."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from hindsight.errors import ConfigError, DataError
from hindsight.monitor.feedback import (
    exposure,
    gini,
    holdout_divergence,
    linear_trend,
)


def _gini_brute(x: np.ndarray) -> float:
    """Mean absolute difference over all ordered pairs, divided by twice the mean."""
    x = np.asarray(x, dtype=float)
    return float(np.abs(x[:, None] - x[None, :]).mean() / (2.0 * x.mean()))


def _gini_sorted(x: np.ndarray) -> float:
    """The textbook O(n log n) form: 2 sum(i x_(i)) / (n sum x) - (n + 1) / n."""
    s = np.sort(np.asarray(x, dtype=float))
    n = s.size
    return float(2.0 * np.sum(np.arange(1, n + 1) * s) / (n * s.sum()) - (n + 1) / n)


def test_gini_extremes_and_formulas() -> None:
    assert gini(np.full(50, 7)) == 0.0
    for m in (1, 2, 10, 333):
        one = np.zeros(m)
        one[m // 2] = 12
        assert gini(one) == pytest.approx((m - 1) / m, abs=1e-15)
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.poisson(rng.uniform(0.2, 30), rng.integers(2, 300))
        if x.sum() == 0:
            continue
        assert gini(x) == pytest.approx(_gini_brute(x), abs=1e-12)
        assert gini(x) == pytest.approx(_gini_sorted(x), abs=1e-12)
    rows = rng.poisson(3.0, (4, 40))
    rows[2] = 0
    got = gini(rows)
    assert isinstance(got, np.ndarray) and math.isnan(got[2])
    np.testing.assert_allclose(np.delete(got, 2), [_gini_brute(r) for r in np.delete(rows, 2, 0)])
    with pytest.raises(DataError):
        gini([1, -1])


def test_exposure_per_window_matches_brute_force_with_zero_items() -> None:
    rng = np.random.default_rng(4)
    n, k, cat = 600, 5, 200
    lists = rng.choice(150, (n, k))  # items 150..199 are never shown
    win = rng.integers(0, 4, n)
    rep = exposure(lists, window=win, catalogue_size=cat)
    assert rep.catalogue_size == cat and rep.catalogue_given
    for w in rep.windows:
        c = Counter(lists[win == w.window].ravel().tolist())
        counts = np.array([c.get(i, 0) for i in range(cat)])
        assert w.n_lists == int((win == w.window).sum())
        assert w.n_impressions == counts.sum()
        assert w.gini == pytest.approx(_gini_brute(counts), abs=1e-12)
        assert w.coverage == pytest.approx(len(c) / cat)
        assert w.top_share == pytest.approx(np.sort(counts)[-2:].sum() / counts.sum())
    # Without catalogue_size the catalogue is the items seen anywhere: 150 here.
    seen = exposure(lists, window=win)
    assert seen.catalogue_size == 150 and not seen.catalogue_given
    assert all(w.coverage >= c.coverage for w, c in zip(seen.windows, rep.windows, strict=True))
    # The same log as a flat array with a row index gives the same numbers.
    flat = exposure(
        lists.ravel(), window=np.repeat(win, k), row=np.repeat(np.arange(n), k), catalogue_size=cat
    )
    assert [w.to_dict() for w in flat.windows] == [w.to_dict() for w in rep.windows]
    with pytest.raises(ConfigError, match="row"):
        exposure(lists.ravel(), window=np.repeat(win, k))
    with pytest.raises(DataError, match=r"\[0, 100\)"):
        exposure(lists, window=win, catalogue_size=100)


def test_linear_trend_matches_linregress() -> None:
    rng = np.random.default_rng(9)
    x = np.arange(12)
    y = 0.3 + 0.01 * x + rng.normal(0, 0.02, 12)
    ours = linear_trend(x, y, alternative="greater")
    ref = stats.linregress(x, y)
    assert ours.slope == pytest.approx(ref.slope, rel=1e-12)
    assert ours.se == pytest.approx(ref.stderr, rel=1e-10)
    assert ours.p_value == pytest.approx(ref.pvalue / 2, rel=1e-8)
    assert linear_trend(x, y, alternative="less").p_value == pytest.approx(1 - ref.pvalue / 2)
    assert linear_trend([0, 1], [0, 1]).slope is None


def _recommender(rng: np.random.Generator, reinforce: bool, n_windows: int = 12):
    """Lists of 10 distinct items from 400; a self-reinforcing one sharpens on its own exposure."""
    cat, n_lists, k = 400, 800, 10
    logits = rng.normal(0.0, 0.5, cat)
    lists, wins = [], []
    for w in range(n_windows):
        gumbel = rng.gumbel(size=(n_lists, cat))
        top = np.argpartition(-(logits + gumbel), k, axis=1)[:, :k]
        lists.append(top)
        wins.append(np.full(n_lists, w))
        if reinforce:  # shown items get clicks, clicks get exposure next window
            shown = np.bincount(top.ravel(), minlength=cat)
            logits = logits + 0.35 * np.log1p(shown)
    return np.concatenate(lists), np.concatenate(wins), cat


def test_self_reinforcing_recommender_concentrates() -> None:
    lists, win, cat = _recommender(np.random.default_rng(21), reinforce=True)
    rep = exposure(lists, window=win, catalogue_size=cat)
    assert rep.concentrating and rep.trend.slope is not None and rep.trend.slope > 0
    g, cov = rep.gini, rep.coverage
    assert g[-1] > g[0] + 0.2
    assert cov[-1] < cov[0] - 0.2
    assert rep.windows[-1].top_share is not None
    assert rep.windows[-1].top_share > rep.windows[0].top_share  # type: ignore[operator]
    assert rep.reason.startswith("concentrating: Gini")
    json.dumps(rep.to_dict())

    stable_lists, stable_win, _ = _recommender(np.random.default_rng(21), reinforce=False)
    stable = exposure(stable_lists, window=stable_win, catalogue_size=cat)
    assert not stable.concentrating
    assert stable.reason.startswith("no significant concentration")


def _holdout_log(rng: np.random.Generator, decline: float, n_windows: int = 10):
    """Clicks per request: holdout at 10 %, treated at 12 % minus ``decline`` per window."""
    per = 20_000
    win = np.repeat(np.arange(n_windows), per)
    hold = rng.random(win.size) < 0.05
    p = np.where(hold, 0.10, 0.12 - decline * win)
    return (rng.random(win.size) < p).astype(float), hold, win


def test_holdout_divergence_flags_a_falling_treated_quality() -> None:
    clicks, hold, win = _holdout_log(np.random.default_rng(8), decline=0.005)
    rep = holdout_divergence(clicks, hold, window=win)
    assert rep.degrading and rep.trend.slope is not None and rep.trend.slope < 0
    diffs = [w.difference for w in rep.windows]
    assert diffs[0] > 0 > diffs[-1]  # type: ignore[operator]
    assert "falling relative to the holdout" in rep.reason
    # Means and the Welch interval of one window against scipy.
    w3 = rep.windows[3]
    t_, h_ = clicks[(win == 3) & ~hold], clicks[(win == 3) & hold]
    assert (w3.treated_mean, w3.holdout_mean) == pytest.approx((t_.mean(), h_.mean()))
    ci = stats.ttest_ind(t_, h_, equal_var=False).confidence_interval(0.95)
    assert (w3.ci_low, w3.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    json.dumps(rep.to_dict())


def test_holdout_divergence_neutral_is_not_flagged() -> None:
    for seed in range(3):
        clicks, hold, win = _holdout_log(np.random.default_rng(seed), decline=0.0)
        rep = holdout_divergence(clicks, hold, window=win)
        assert not rep.degrading, rep.reason
        diffs = np.array([w.difference for w in rep.windows], dtype=float)
        assert 0.01 < diffs.mean() < 0.03  # treated stays about 2 points above the holdout
    with pytest.raises(ConfigError, match="boolean"):
        holdout_divergence(clicks, hold.astype(int), window=win)
