"""Realised performance against scikit-learn, and CBPE against known probabilities."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from hindsight.errors import ConfigError
from hindsight.monitor.performance import (
    CBPE,
    METRICS,
    EstimatedPerformance,
    WindowPerformance,
    realised_performance,
)


def _close(ours: float | None, theirs: float) -> bool:
    if math.isnan(theirs):
        return ours is None
    return ours is not None and math.isclose(ours, theirs, rel_tol=1e-12, abs_tol=1e-12)


def _sklearn_window(y: np.ndarray, yhat: np.ndarray, s: np.ndarray) -> dict[str, float]:
    if y.size == 0:
        return dict.fromkeys(METRICS, math.nan)
    kw = {"zero_division": np.nan}
    return {
        "accuracy": accuracy_score(y, yhat),
        "precision": precision_score(y, yhat, **kw),
        "recall": recall_score(y, yhat, **kw),
        "f1": f1_score(y, yhat, **kw),
        "roc_auc": roc_auc_score(y, s) if 0 < y.sum() < y.size else math.nan,
    }


def _labelled_data(seed: int = 0):
    """12 windows of mixed sizes; rounded scores (ties); one window with no positives,
    one with no labels at all, one with no predicted positives, one tiny one."""
    rng = np.random.default_rng(seed)
    window = rng.integers(0, 12, size=3000)
    window[:3] = 99  # a 3-row window
    scores = np.round(rng.random(window.size), 1)  # heavy ties
    y = (rng.random(window.size) < scores).astype(float)
    yhat = (scores > 0.5).astype(int)
    y[window == 3] = 0.0  # no positives
    yhat[window == 4] = 0  # no predicted positives
    y[rng.random(window.size) < 0.3] = np.nan  # 30 % not labelled yet
    y[window == 5] = np.nan  # no labels at all
    return window, scores, y, yhat


def test_realised_metrics_equal_sklearn_per_window() -> None:
    window, scores, y, yhat = _labelled_data()
    results = realised_performance(y, yhat, window=window, scores=scores)
    assert [r.window for r in results] == sorted(set(window.tolist()))
    checked = 0
    for r in results:
        in_w = window == r.window
        lab = in_w & ~np.isnan(y)
        assert r.n == in_w.sum()
        assert r.n_labelled == lab.sum()
        assert r.label_coverage == pytest.approx(lab.sum() / in_w.sum())
        expected = _sklearn_window(y[lab].astype(int), yhat[lab], scores[lab])
        for m in METRICS:
            assert _close(getattr(r, m), expected[m]), (r.window, m, getattr(r, m), expected[m])
            checked += getattr(r, m) is not None
    by_w = {r.window: r for r in results}
    assert by_w[3].roc_auc is None and by_w[3].recall is None  # no positives
    assert by_w[4].precision is None and by_w[4].f1 == 0.0  # no predicted positives
    assert by_w[5].n_labelled == 0 and all(getattr(by_w[5], m) is None for m in METRICS)
    assert checked > 40


def test_object_labels_with_none_and_explicit_mask_and_string_positive() -> None:
    y = np.array(["yes", None, "no", float("nan"), "yes", "no"], dtype=object)
    yhat = np.array(["yes", "yes", "yes", "no", "no", "no"], dtype=object)
    window = np.array([0, 0, 0, 1, 1, 1])
    (w0, w1) = realised_performance(y, yhat, window=window, positive="yes")
    assert (w0.n, w0.n_labelled, w0.tp, w0.fp) == (3, 2, 1, 1)
    assert (w1.n_labelled, w1.fn, w1.tn) == (2, 1, 1)
    assert w0.precision == 0.5 and w1.recall == 0.0
    mask = np.array([True, False, False, False, True, True])
    (m0, m1) = realised_performance(y, yhat, window=window, positive="yes", labelled=mask)
    assert m0.n_labelled == 1 and m0.accuracy == 1.0 and m1.n_labelled == 2


def test_costs_total_and_per_labelled_prediction() -> None:
    y = np.array([1, 0, 1, 0, np.nan, 1])
    yhat = np.array([1, 1, 0, 0, 1, 1])
    window = np.array([7, 7, 7, 7, 7, 8])
    costs = {"fp": 5.0, "fn": 20.0}
    (w7, w8) = realised_performance(y, yhat, window=window, costs=costs)
    assert w7.cost == 25.0 and w7.cost_per_prediction == pytest.approx(25.0 / 4)
    assert w8.cost == 0.0 and w8.cost_per_prediction == 0.0
    d = w7.to_dict()
    assert d["roc_auc"] is None  # no scores given → None, not NaN
    json.dumps(d, allow_nan=False)
    assert realised_performance(y, yhat, window=window)[0].cost is None


# --------------------------------------------------------------------------- CBPE


def _calibrated(rng: np.random.Generator, n: int, a: float = 0.6, b: float = 0.6):
    p = rng.beta(a, b, size=n)
    y = (rng.random(n) < p).astype(int)
    return p, y, (p > 0.5).astype(int)


def test_cbpe_estimate_tracks_realised_within_sampling_error() -> None:
    rng = np.random.default_rng(1)
    ref_p, ref_y, _ = _calibrated(rng, 20_000)
    cbpe = CBPE(calibrate=False).fit(ref_p, ref_y)
    p, y, yhat = _calibrated(rng, 60 * 500)
    window = np.repeat(np.arange(60), 500)
    est = cbpe.estimate(p, yhat, window=window)
    real = realised_performance(y, yhat, window=window, scores=p)
    rec = CBPE.reconcile(est, real)
    for m in METRICS:
        diff = np.array([r[m].difference for r in rec], dtype=float)
        se = np.array([r[m].sampling_error for r in rec], dtype=float)
        assert np.all(se > 0), m
        # unbiased: the mean difference is within 3 standard errors of that mean
        assert abs(diff.mean()) < 3 * se.mean() / math.sqrt(diff.size), m
        # and the band covers nearly every window
        assert np.mean(np.abs(diff) <= 2 * se) >= 0.85, m
        assert np.all(np.abs(diff) <= 4 * se), m


def test_calibration_fixes_a_miscalibrated_score() -> None:
    rng = np.random.default_rng(2)
    ref_p, ref_y, _ = _calibrated(rng, 20_000)
    p, y, yhat = _calibrated(rng, 20 * 1000)

    def distort(q: np.ndarray) -> np.ndarray:  # underconfident: same ranking, wrong probabilities
        return 0.5 + 0.4 * (q - 0.5)

    window = np.repeat(np.arange(20), 1000)
    real = realised_performance(y, yhat, window=window, scores=distort(p))
    realised = {m: np.mean([getattr(r, m) for r in real]) for m in METRICS}

    def mean_est(cbpe: CBPE) -> dict[str, float]:
        est = cbpe.fit(distort(ref_p), ref_y).estimate(distort(p), yhat, window=window)
        return {m: float(np.mean([getattr(e, m) for e in est])) for m in METRICS}

    raw = mean_est(CBPE(calibrate=False, sampling_error=False))
    fixed = mean_est(CBPE(calibrate=True, sampling_error=False))
    for m in ("accuracy", "precision", "recall", "f1"):
        assert abs(raw[m] - realised[m]) > 0.1, (m, raw[m], realised[m])
        assert abs(fixed[m] - realised[m]) < 0.01, (m, fixed[m], realised[m])
    # AUC ranks by the model's own scores, so it is right either way
    assert fixed["roc_auc"] == pytest.approx(realised["roc_auc"], abs=0.01)


@pytest.mark.parametrize("ties", [False, True])
def test_estimated_auc_is_the_expected_auc(ties: bool) -> None:
    rng = np.random.default_rng(3)
    p = rng.beta(1.5, 1.5, size=200)
    if ties:
        p = np.round(p, 1)
    cbpe = CBPE(calibrate=False, sampling_error=False).fit(p, (p > 0.5).astype(int))
    (est,) = cbpe.estimate(p, (p > 0.5).astype(int), window=np.zeros(p.size, dtype=int))
    draws = (rng.random((300, p.size)) < p).astype(int)  # Monte Carlo SE of the mean ~0.002
    mc = np.mean([roc_auc_score(d, p) for d in draws])
    assert est.roc_auc == pytest.approx(mc, abs=0.008)


def test_cbpe_sees_the_drop_under_covariate_shift() -> None:
    rng = np.random.default_rng(4)
    ref_p, ref_y, _ = _calibrated(rng, 10_000)
    cbpe = CBPE().fit(ref_p, ref_y)
    calm_p, calm_y, calm_hat = _calibrated(rng, 2000)
    shift_p, shift_y, shift_hat = _calibrated(rng, 2000, a=6.0, b=6.0)  # scores near 0.5
    p = np.concatenate([calm_p, shift_p])
    yhat = np.concatenate([calm_hat, shift_hat])
    window = np.repeat([0, 1], 2000)
    before, after = cbpe.estimate(p, yhat, window=window)
    assert isinstance(before, EstimatedPerformance)
    assert before.accuracy is not None and after.accuracy is not None
    assert before.accuracy - after.accuracy > 0.15
    band = before.band("accuracy")
    assert band is not None and band[0] > after.accuracy  # outside the sampling band
    real_before = realised_performance(calm_y, calm_hat, window=np.zeros(2000, dtype=int))[0]
    assert real_before.accuracy == pytest.approx(before.accuracy, abs=0.04)
    real_after = realised_performance(shift_y, shift_hat, window=np.ones(2000, dtype=int))[0]
    assert isinstance(real_after, WindowPerformance)
    assert real_after.accuracy == pytest.approx(after.accuracy, abs=0.04)
    json.dumps(after.to_dict(), allow_nan=False)


def test_reconcile_before_labels_arrive() -> None:
    rng = np.random.default_rng(5)
    p, y, yhat = _calibrated(rng, 600)
    window = np.repeat([0, 1, 2], 200)
    cbpe = CBPE(n_chunks=20).fit(p, y)
    y_partial = y.astype(float)
    y_partial[window == 2] = np.nan
    real = realised_performance(y_partial[window < 2], yhat[window < 2], window=window[window < 2])
    rec = CBPE.reconcile(cbpe.estimate(p, yhat, window=window), real)
    assert [r.window for r in rec] == [0, 1, 2]
    assert rec[2].n_labelled == 0 and rec[2]["accuracy"].realised is None
    assert rec[2]["accuracy"].difference is None and rec[2]["accuracy"].estimated is not None
    acc = rec[0]["accuracy"]
    assert acc.difference == pytest.approx(acc.realised - acc.estimated)
    d = rec[0].to_dict()
    assert set(d["metrics"]) == set(METRICS)
    json.dumps([r.to_dict() for r in rec], allow_nan=False)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: realised_performance([1, 0], [1], window=[0, 0]), "one value per prediction"),
        (lambda: realised_performance([1, 0], [1, 0], window=[0.5, 1]), "integer window"),
        (lambda: realised_performance([1, 0], [1, 0], window=[0, 0], costs={"x": 1}), "'fp'"),
        (
            lambda: realised_performance([1, 0], [1, 0], window=[0, 0], scores=[0.1, np.nan]),
            "impute",
        ),
        (lambda: CBPE().estimate([0.5], [1], window=[0]), "call .fit"),
        (lambda: CBPE().fit([0.2, 1.3], [0, 1]), "in [0, 1]"),
        (lambda: CBPE().fit([0.2, 0.3], [1, 1]), "both"),
        (lambda: CBPE().fit([0.2, 0.3, 0.4], [0, 1]), "one value per prediction"),
        (lambda: CBPE(n_chunks=1), "n_chunks"),
        (
            lambda: CBPE().fit([0.2, 0.8], [0, 1]).estimate([0.2, -0.1], [0, 1], window=[0, 0]),
            "[0, 1]",
        ),
        (
            lambda: CBPE().fit([0.2, 0.8], [0, 1]).estimate([0.2], [0, 1], window=[0, 0]),
            "one value",
        ),
    ],
)
def test_bad_input_raises_config_error(call, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        call()
    assert message in str(info.value)
