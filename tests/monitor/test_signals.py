"""Label-free monitor signals: Welch, BH and entropy against SciPy, flags on seeded scenarios."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from hindsight.errors import ConfigError, DataError
from hindsight.monitor.signals import (
    ConfidenceWindow,
    HealthWindow,
    RateWindow,
    bh_adjust,
    confidence_shift,
    rate_shift,
    silent_failures,
)


def _beta_conf(rng: np.random.Generator, size: int, a: float = 8.0, b: float = 2.0) -> np.ndarray:
    return rng.beta(a, b, size=size)


@pytest.fixture
def stable() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    ref = _beta_conf(rng, 4000)
    sizes = [500, 800, 3, 650, 1200]
    cur = np.concatenate([_beta_conf(rng, s) for s in sizes])
    win = np.repeat([10, 11, 12, 13, 14], sizes)
    order = rng.permutation(cur.size)  # windows interleaved: grouping must not rely on order
    return ref, cur[order], win[order]


# --------------------------------------------------------------------------- confidence


def test_welch_matches_scipy_per_window(stable: tuple[np.ndarray, ...]) -> None:
    ref, cur, win = stable
    out = confidence_shift(ref, cur, window=win, min_samples=2)
    assert [w.window for w in out] == [10, 11, 12, 13, 14]
    for w in out:
        x = cur[win == w.window]
        res = stats.ttest_ind(x, ref, equal_var=False)
        assert w.n == x.size
        assert w.t_statistic is not None and w.p_value is not None and w.df is not None
        assert math.isclose(w.t_statistic, float(res.statistic), rel_tol=1e-9)
        assert math.isclose(w.p_value, float(res.pvalue), rel_tol=1e-9, abs_tol=1e-15)
        assert math.isclose(w.df, float(res.df), rel_tol=1e-9)
        lo, hi = res.confidence_interval(confidence_level=0.99)
        assert w.shift_ci is not None
        assert np.allclose(w.shift_ci, (lo, hi), rtol=1e-9)
        assert w.mean_confidence is not None
        assert math.isclose(w.mean_confidence, float(x.mean()), rel_tol=1e-12)


def test_bh_matches_scipy_and_ignores_untested() -> None:
    assert hasattr(stats, "false_discovery_control"), "SciPy >= 1.11 required for this check"
    rng = np.random.default_rng(3)
    p = np.concatenate([rng.uniform(size=40), rng.uniform(0, 1e-3, size=10), [1.0, 0.0, 0.5]])
    assert np.allclose(bh_adjust(p), stats.false_discovery_control(p, method="bh"), rtol=1e-12)
    with_nan = np.insert(p, [0, 5], np.nan)
    q = bh_adjust(with_nan)
    assert np.isnan(q[0]) and np.isnan(q[6])
    assert np.allclose(q[~np.isnan(q)], stats.false_discovery_control(p, method="bh"))
    assert np.isnan(bh_adjust([np.nan])).all()
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        bh_adjust([0.2, 1.5])


def test_entropy_matches_scipy_per_row_mean() -> None:
    rng = np.random.default_rng(11)
    ref = rng.dirichlet([6.0, 1.0, 1.0, 0.5], size=600)
    cur = rng.dirichlet([1.0, 1.0, 1.0, 1.0], size=900)
    cur[0] = [1.0, 0.0, 0.0, 0.0]  # 0 log 0 = 0
    win = np.repeat([0, 1, 2], 300)
    out = confidence_shift(ref, cur, window=win)
    ref_h = stats.entropy(ref, axis=1)
    for w in out:
        rows = cur[win == w.window]
        expected = float(stats.entropy(rows, axis=1).mean())
        assert w.mean_entropy is not None and math.isclose(w.mean_entropy, expected, rel_tol=1e-10)
        assert w.reference_entropy is not None
        assert math.isclose(w.reference_entropy, float(ref_h.mean()), rel_tol=1e-10)
        assert w.mean_confidence is not None
        assert math.isclose(w.mean_confidence, float(rows.max(axis=1).mean()), rel_tol=1e-12)
        # uniform-ish Dirichlet: far less confident and higher entropy than the reference
        assert w.shifted and w.entropy_shift is not None and w.entropy_shift > 0.3
        assert w.entropy_p is not None and w.entropy_p < 1e-10


def test_confidence_collapse_is_flagged_and_stable_windows_are_not() -> None:
    rng = np.random.default_rng(2024)
    ref = _beta_conf(rng, 5000)
    parts = [_beta_conf(rng, 1000) for _ in range(6)]
    parts[4] = rng.beta(3.0, 3.0, size=1000)  # window 4: the model loses its confidence
    cur = np.concatenate(parts)
    win = np.repeat(np.arange(6), 1000)
    out = confidence_shift(ref, cur, window=win)
    assert [w.window for w in out if w.shifted] == [4]
    bad = out[4]
    assert bad.shift is not None and bad.shift < -0.2
    assert bad.q_value is not None and bad.q_value < 1e-10
    assert bad.low_share is not None and bad.reference_low_share is not None
    assert bad.low_share > bad.reference_low_share + 0.3
    assert bad.low_share_q is not None and bad.low_share_q < 0.01
    assert "mean confidence" in bad.detail and "share below 0.6" in bad.detail
    for w in out[:4] + out[5:]:
        assert w.detail == "no significant shift"
    payload = json.loads(json.dumps([w.to_dict() for w in out]))
    assert payload[4]["shifted"] is True and isinstance(payload[4]["shift_ci"], list)


def test_confidence_small_windows_are_not_tested(stable: tuple[np.ndarray, ...]) -> None:
    ref, cur, win = stable
    out = {w.window: w for w in confidence_shift(ref, cur, window=win)}
    tiny = out[12]
    assert tiny.n == 3 and tiny.p_value is None and tiny.q_value is None
    assert tiny.low_share_p is None and not tiny.shifted
    assert "fewer than 30" in tiny.detail
    assert isinstance(tiny, ConfidenceWindow) and tiny.to_dict()["q_value"] is None


def test_small_shift_below_min_effect_is_not_flagged() -> None:
    rng = np.random.default_rng(5)
    ref = rng.normal(0.8, 0.05, size=50_000).clip(0, 1)
    cur = (rng.normal(0.8, 0.05, size=50_000) - 0.01).clip(0, 1)
    out = confidence_shift(ref, cur, window=np.zeros(cur.size, dtype=int))
    assert out[0].q_value is not None and out[0].q_value < 1e-10  # significant ...
    assert not out[0].shifted  # ... but a 0.01 drop is under min_effect=0.02
    assert confidence_shift(ref, cur, window=np.zeros(cur.size, dtype=int), min_effect=0.005)[
        0
    ].shifted


@pytest.mark.parametrize(
    ("ref", "cur", "win", "kwargs", "exc", "match"),
    [
        ([0.9] * 50, [0.9, 1.2], [0, 0], {}, DataError, r"probabilities in \[0, 1\]"),
        ([0.9] * 50, [0.9, np.nan], [0, 0], {}, DataError, "NaN or infinite"),
        ([0.9] * 50, [0.9, 0.8], [0], {}, ConfigError, "one window index per prediction"),
        ([0.9] * 50, [0.9, 0.8], [0.5, 1.0], {}, ConfigError, "integer window indices"),
        ([0.9] * 5, [0.9, 0.8], [0, 0], {}, DataError, "widen the reference"),
        ([0.9] * 50, [[0.5, 0.5]], [0], {}, ConfigError, "same form"),
        ([0.9] * 50, [[0.5, 0.6]], [0], {}, DataError, "sum to 1"),
        ([0.9] * 50, [0.9], [0], {"low": 1.5}, ConfigError, "'low' parameter"),
        ([0.9] * 50, [0.9], [0], {"alpha": 0.0}, ConfigError, "'alpha' parameter"),
        ([0.9] * 50, [[[0.9]]], [0], {}, ConfigError, "1-D"),
        ([0.9] * 50, [], [], {}, ConfigError, "empty"),
    ],
)
def test_confidence_bad_inputs(
    ref: list, cur: list, win: list, kwargs: dict, exc: type, match: str
) -> None:
    with pytest.raises(exc, match=match):
        confidence_shift(ref, cur, window=win, **kwargs)


# --------------------------------------------------------------------------- silent failures


def test_constant_and_nan_bursts_are_flagged_with_reasons() -> None:
    rng = np.random.default_rng(9)
    ref = rng.normal(0.4, 0.2, size=2000)
    preds = rng.normal(0.4, 0.2, size=4000)
    win = np.repeat([0, 1, 2, 3], 1000)
    preds[1000:2000] = 0.5  # window 1: stuck at one value
    preds[2000:3000] = 0.5 + rng.normal(0, 1e-4, size=1000)  # window 2: near-constant
    preds[3000:3150] = np.nan  # window 3: NaN burst, 15 %
    out = silent_failures(preds, window=win, reference=ref)
    flags = [(w.window, w.constant, w.nan) for w in out]
    assert flags == [(0, False, False), (1, True, False), (2, True, False), (3, False, True)]
    stuck, near, burst = out[1], out[2], out[3]
    assert stuck.distinct == 1 and stuck.top_share == 1.0 and stuck.top_value == 0.5
    assert any("100.0% of 1000 predictions are the same value (0.5)" in r for r in stuck.reasons)
    assert near.top_share is not None and near.top_share < 0.01  # distinct values, tiny spread
    assert near.std_ratio is not None and near.std_ratio < 0.05
    assert near.std is not None and math.isclose(near.std, float(preds[2000:3000].std(ddof=1)))
    assert any("standard deviation" in r and "below 0.05" in r for r in near.reasons)
    assert burst.n_missing == 150 and math.isclose(burst.nan_rate, 0.15)
    assert burst.reasons == (
        "15.0% of 1000 predictions (150) are NaN or None, above the 1.0% allowed",
    )
    assert out[0].reasons == () and not out[0].flagged
    assert json.loads(json.dumps(burst.to_dict()))["nan"] is True


def test_categorical_predictions_with_none() -> None:
    labels = np.array(["cat", "dog", "bird"], dtype=object)
    rng = np.random.default_rng(1)
    preds = labels[rng.integers(0, 3, size=600)]
    preds[300:] = "dog"
    preds[300:306] = None
    win = np.repeat([5, 6], 300)
    out = silent_failures(preds, window=win)
    assert isinstance(out[0], HealthWindow)
    assert out[0].distinct == 3 and not out[0].flagged and out[0].std is None
    assert out[1].constant and out[1].nan and out[1].top_value == "dog"
    assert out[1].n_missing == 6 and out[1].top_share == 1.0
    assert any("'dog'" in r for r in out[1].reasons)


def test_silent_failures_small_window_and_bad_inputs() -> None:
    out = silent_failures([1.0, 1.0, 2.0, 2.0, 2.0], window=[0, 0, 1, 1, 1])
    assert not any(w.constant for w in out)  # below min_samples
    assert out[1].top_share == 1.0 and out[1].distinct == 1
    with pytest.raises(ConfigError, match="non-empty 1-D"):
        silent_failures([[1.0, 2.0]], window=[0])
    with pytest.raises(ConfigError, match="'top_share' parameter"):
        silent_failures([1.0], window=[0], top_share=2.0)
    with pytest.raises(ConfigError, match="reference is not"):
        silent_failures([1.0, 2.0], window=[0, 0], reference=["a", "b"])
    with pytest.raises(DataError, match="at least two"):
        silent_failures([1.0, 2.0], window=[0, 0], reference=[1.0, np.nan])


# --------------------------------------------------------------------------- rates


def test_fallback_jump_is_worse_and_others_are_not() -> None:
    rng = np.random.default_rng(4)
    n = np.full(8, 5000)
    events = rng.binomial(n, 0.01)
    events[5] = 500  # 1 % to 10 %
    out = rate_shift(100, 10_000, events, n, name="fallback_rate", window=np.arange(20, 28))
    assert [w.window for w in out if w.worse] == [25]
    hit = out[5]
    assert isinstance(hit, RateWindow) and hit.rate == 0.1 and hit.reference_rate == 0.01
    assert hit.effect is not None and math.isclose(hit.effect, 0.09)
    assert hit.effect_ci is not None and hit.effect_ci[0] < 0.09 < hit.effect_ci[1]
    assert hit.q_value is not None and hit.p_value is not None and hit.q_value >= hit.p_value
    assert "fallback_rate" in hit.detail and "q=" in hit.detail
    ps = np.array([w.p_value for w in out])
    assert np.allclose([w.q_value for w in out], stats.false_discovery_control(ps))
    json.dumps([w.to_dict() for w in out])


def test_rate_drop_is_worse_only_when_lower_is_worse() -> None:
    ref_e, ref_n = np.array([900, 910]), np.array([1000, 1000])  # summed: 90.5 %
    out = rate_shift(ref_e, ref_n, [700, 905], [1000, 1000], name="answer_rate")
    assert not any(w.worse for w in out)
    out = rate_shift(
        ref_e, ref_n, [700, 905], [1000, 1000], name="answer_rate", higher_is_worse=False
    )
    assert [w.worse for w in out] == [True, False]
    small = rate_shift(10, 1000, [5], [50], name="abstention_rate")[0]
    assert small.p_value is None and not small.worse and "wait for more traffic" in small.detail


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((10, 1000, [5, 6], [100]), {}, "one count per window"),
        ((10, 1000, [500], [100]), {}, "cannot exceed"),
        ((10, 1000, [-1], [100]), {}, "non-negative whole counts"),
        ((10, 1000, [1.5], [100]), {}, "non-negative whole counts"),
        ((10, 50, [1], [100]), {}, "widen the reference"),
        ((10, 1000, [1], [100]), {"name": ""}, "non-empty string"),
        ((10, 1000, [1], [100]), {"window": [1, 2]}, "one integer label per window"),
        ((10, 1000, [1], [100]), {"alpha": 1.0}, "'alpha' parameter"),
    ],
)
def test_rate_shift_bad_inputs(args: tuple, kwargs: dict, match: str) -> None:
    kwargs = {"name": "fallback_rate", **kwargs}
    with pytest.raises((ConfigError, DataError), match=match):
        rate_shift(*args, **kwargs)
