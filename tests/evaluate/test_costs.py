"""Cost curves and the cheapest threshold: brute force, the Bayes decision, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from hindsight.errors import ConfigError, DataError
from hindsight.evaluate import best_threshold, cost_curve


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    score = rng.beta(0.7, 2.0, n)
    return (rng.random(n) < score).astype(int), score


def _brute(y: np.ndarray, s: np.ndarray, fp: np.ndarray, fn: np.ndarray, t: float) -> float:
    pred = s >= t
    return float((np.where(pred & (y == 0), fp, 0.0) + np.where(~pred & (y == 1), fn, 0.0)).mean())


def test_the_curve_is_the_brute_force_cost_at_every_threshold() -> None:
    y, s = _calibrated(2000, 1)
    s = np.round(s, 2)  # ties: many rows share a score
    amount = np.random.default_rng(2).lognormal(3, 1, y.size)
    curve = cost_curve(y, s, {"fp": 5.0, "fn": amount})
    assert np.all(np.diff(curve.thresholds) > 0) and curve.n == y.size
    fp, fn = np.full(y.size, 5.0), amount
    for t, c in zip(curve.thresholds.tolist(), curve.expected_cost.tolist(), strict=True):
        assert c == pytest.approx(_brute(y, s, fp, fn, t), rel=1e-9, abs=1e-12)
    # The confusion matrix at a threshold, as scikit-learn counts it.
    t = float(curve.thresholds[len(curve.thresholds) // 2])
    _tn, fpn, fnn, _tp = confusion_matrix(y, s >= t).ravel()
    with_counts = cost_curve(y, s, {"fp": 1.0, "fn": 1.0})
    i = int(np.flatnonzero(with_counts.thresholds == t)[0])
    assert with_counts.expected_cost[i] == pytest.approx((fpn + fnn) / y.size)


@pytest.mark.parametrize(("fp", "fn"), [(1.0, 1.0), (5.0, 50.0), (30.0, 10.0)])
def test_calibrated_scores_cost_least_at_the_bayes_threshold(fp: float, fn: float) -> None:
    y, s = _calibrated(200_000, 3)
    choice = best_threshold(y, s, {"fp": fp, "fn": fn}, bootstrap=50, seed=1)
    bayes = fp / (fp + fn)
    assert choice.ci is not None and choice.ci[0] <= bayes <= choice.ci[1]
    assert abs(choice.threshold - bayes) < 0.03
    assert choice.expected_cost <= choice.cost_at_half + 1e-12
    assert choice.expected_cost == pytest.approx(
        _brute(y, s, np.full(y.size, fp), np.full(y.size, fn), choice.threshold)
    )


def test_correct_decisions_can_cost_too_and_ties_go_to_the_highest_threshold() -> None:
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.4, 0.1])
    # Reviewing a case (a positive) costs 1 whether it was right or not: only cost.
    free = best_threshold(y, s, {"tp": 1.0, "fp": 1.0}, bootstrap=0)
    assert free.expected_cost == 0.0 and free.threshold > 0.9 and free.ci is None
    curve = cost_curve(y, s, {"fp": 1.0, "fn": 1.0, "tp": -1.0})
    # At 0.4: two true positives (-1 each) and one false positive (+1), over 4 rows.
    assert curve.expected_cost.min() == pytest.approx(-0.25)


def test_bad_input_says_what_to_do() -> None:
    y, s = np.array([0, 1, 1]), np.array([0.2, 0.7, 0.9])
    with pytest.raises(DataError, match="0/1"):
        cost_curve(np.array([0, 2, 1]), s, {"fp": 1})
    with pytest.raises(DataError, match="missing"):
        cost_curve(np.array([0.0, np.nan, 1.0]), s, {"fp": 1})
    with pytest.raises(DataError, match="one score per label"):
        cost_curve(y, s[:2], {"fp": 1})
    with pytest.raises(DataError, match="one value or one per row"):
        cost_curve(y, s, {"fn": [1.0, 2.0]})
    with pytest.raises(ConfigError, match="unknown cost keys"):
        cost_curve(y, s, {"false_positive": 1})
    with pytest.raises(ConfigError, match="bootstrap"):
        best_threshold(y, s, {"fp": 1}, bootstrap=-1)
