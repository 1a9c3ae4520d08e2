"""Every metric in hindsight.evaluate.metrics against scikit-learn, its edge cases and errors."""

from __future__ import annotations

import doctest
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from hindsight.errors import ConfigError, DataError
from hindsight.evaluate import metrics
from hindsight.evaluate.metrics import (
    METRIC_DIRECTIONS,
    binary_metrics,
    multiclass_metrics,
    regression_metrics,
    reliability,
)

BINARY_KEYS = [
    "n", "prevalence", "positive_rate", "accuracy", "precision", "recall", "specificity", "f1",
    "fpr", "fnr", "balanced_accuracy", "mcc", "tp", "fp", "fn", "tn",
]  # fmt: skip
SCORE_KEYS = ["auc", "average_precision", "brier", "log_loss", "ece"]
NAN = np.nan


def quiet(fn: Callable[[], Any]) -> Any:
    """Call scikit-learn where it warns about the undefined cases we return NaN for."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


def same(ours: float, theirs: float) -> None:
    if math.isnan(theirs):
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)


def binary_data(
    seed: int, n: int, prevalence: float, decimals: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(int)
    # Informative but noisy scores: positives score higher on average.
    s = np.clip(rng.beta(2, 5, n) + 0.35 * y, 0.0, 1.0)
    if decimals is not None:
        s = np.round(s, decimals)  # many ties
    return y, s, (s >= 0.5).astype(int)


def ece_reference(y: np.ndarray, s: np.ndarray, bins: int) -> float:
    """ECE bin by bin, the way a textbook writes it."""
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        mask = (s >= lo) & ((s < hi) if b < bins - 1 else (s <= hi))
        if mask.any():
            total += mask.sum() / s.size * abs(y[mask].mean() - s[mask].mean())
    return total


CASES = {
    "balanced": (0, 400, 0.5, None),
    "imbalanced": (1, 2000, 0.03, None),
    "ties": (2, 300, 0.4, 1),
    "heavy-ties": (3, 500, 0.2, 0),
    "small": (4, 12, 0.5, 2),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_binary_matches_sklearn(case: str) -> None:
    y, s, p = binary_data(*CASES[case])
    m = binary_metrics(y, p, s)
    assert list(m) == BINARY_KEYS + SCORE_KEYS
    tn, fp, fn, tp = skm.confusion_matrix(y, p, labels=[0, 1]).ravel()
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (tp, fp, fn, tn)
    assert all(isinstance(v, float) for v in m.values())
    same(m["n"], y.size)
    same(m["prevalence"], y.mean())
    same(m["positive_rate"], p.mean())
    same(m["accuracy"], skm.accuracy_score(y, p))
    same(m["precision"], skm.precision_score(y, p, zero_division=NAN))
    same(m["recall"], skm.recall_score(y, p, zero_division=NAN))
    same(m["specificity"], skm.recall_score(y, p, pos_label=0, zero_division=NAN))
    same(m["f1"], skm.f1_score(y, p, zero_division=NAN))
    same(m["fpr"], fp / (fp + tn))
    same(m["fnr"], 1 - skm.recall_score(y, p))
    same(m["balanced_accuracy"], skm.balanced_accuracy_score(y, p))
    same(m["mcc"], skm.matthews_corrcoef(y, p))
    same(m["auc"], skm.roc_auc_score(y, s))
    same(m["average_precision"], skm.average_precision_score(y, s))
    same(m["brier"], skm.brier_score_loss(y, s))
    # scikit-learn 1.5+ clips at float eps; hindsight at 1e-15, as scikit-learn used to.
    same(m["log_loss"], skm.log_loss(y, np.clip(s, 1e-15, 1 - 1e-15), labels=[0, 1]))
    same(m["ece"], ece_reference(y, s, 10))


def test_binary_accepts_bools_and_lists() -> None:
    y, s, p = binary_data(5, 50, 0.5)
    expected = binary_metrics(y, p, s)
    assert binary_metrics(y.astype(bool).tolist(), p.astype(bool), s.tolist()) == expected
    assert binary_metrics(y.astype(float), p.astype(np.int8), s) == expected


def test_no_predicted_positives() -> None:
    y = np.array([1, 1, 0, 0, 0])
    p = np.zeros(5, dtype=int)
    m = binary_metrics(y, p)
    assert math.isnan(m["precision"])
    same(m["precision"], skm.precision_score(y, p, zero_division=NAN))
    # F1's denominator 2tp + fp + fn is not zero here, so it is 0, as in scikit-learn.
    assert m["f1"] == 0.0 == skm.f1_score(y, p, zero_division=NAN)
    assert m["recall"] == 0.0 and m["fnr"] == 1.0
    # scikit-learn says 0 for an empty margin; undefined is NaN here.
    assert skm.matthews_corrcoef(y, p) == 0.0
    assert math.isnan(m["mcc"])
    assert m["positive_rate"] == 0.0 and m["accuracy"] == 0.6


def test_no_positives_in_y_true() -> None:
    y = np.zeros(6, dtype=int)
    p = np.array([0, 1, 0, 0, 1, 0])
    s = np.array([0.1, 0.7, 0.2, 0.3, 0.9, 0.3])
    m = binary_metrics(y, p, s)
    for key in ("recall", "fnr", "mcc", "auc", "average_precision"):
        assert math.isnan(m[key]), key
    same(m["recall"], skm.recall_score(y, p, zero_division=NAN))
    assert math.isnan(quiet(lambda: skm.roc_auc_score(y, s)))
    assert m["precision"] == 0.0 and m["specificity"] == pytest.approx(4 / 6)
    # Balanced accuracy over the one class present, as scikit-learn.
    same(m["balanced_accuracy"], quiet(lambda: skm.balanced_accuracy_score(y, p)))
    same(m["brier"], skm.brier_score_loss(y, s, labels=[0, 1]))
    same(m["log_loss"], skm.log_loss(y, s, labels=[0, 1]))


def test_only_positives_in_y_true() -> None:
    y = np.ones(4, dtype=int)
    p = np.array([1, 1, 0, 1])
    s = np.array([0.9, 0.6, 0.2, 0.6])
    m = binary_metrics(y, p, s)
    for key in ("specificity", "fpr", "mcc", "auc", "average_precision"):
        assert math.isnan(m[key]), key
    same(m["specificity"], skm.recall_score(y, p, pos_label=0, zero_division=NAN))
    assert m["precision"] == 1.0 and m["recall"] == 0.75
    same(m["balanced_accuracy"], quiet(lambda: skm.balanced_accuracy_score(y, p)))


def test_nothing_to_score_f1_is_nan() -> None:
    m = binary_metrics([0, 0, 0], [0, 0, 0])
    assert math.isnan(m["f1"])
    assert math.isnan(skm.f1_score([0, 0, 0], [0, 0, 0], zero_division=NAN))
    assert m["accuracy"] == 1.0 and m["specificity"] == 1.0 and m["balanced_accuracy"] == 1.0
    assert "auc" not in m


def test_perfect_and_inverted_scores() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7])
    assert binary_metrics(y, y, s)["auc"] == 1.0
    assert binary_metrics(y, y, s)["average_precision"] == 1.0
    assert binary_metrics(y, y, 1 - s)["auc"] == 0.0
    assert binary_metrics(y, y, s)["mcc"] == 1.0
    assert binary_metrics(y, 1 - y)["mcc"] == -1.0
    # All scores tied: AUC is one half, AP the prevalence.
    tied = binary_metrics(y, y, np.full(6, 0.4))
    assert tied["auc"] == 0.5 and tied["average_precision"] == 0.5


def test_log_loss_clips_at_1e_15() -> None:
    y = np.array([1, 0, 1, 0])
    s = np.array([0.0, 1.0, 1.0, 0.0])  # two confident mistakes, two confident hits
    m = binary_metrics(y, (s > 0.5).astype(int), s)
    lo, hi = 1e-15, 1 - 1e-15  # the scores clipped, then the usual formula
    miss_1, miss_0 = -math.log(lo), -math.log(1 - hi)
    hit_1, hit_0 = -math.log(hi), -math.log(1 - lo)
    expected = (miss_1 + miss_0 + hit_1 + hit_0) / 4
    assert m["log_loss"] == pytest.approx(expected, rel=1e-9)
    assert math.isfinite(m["log_loss"])


# -- calibration ------------------------------------------------------------------------------


@pytest.mark.parametrize("bins", [1, 5, 10, 17])
@pytest.mark.parametrize("decimals", [None, 1, 2])
def test_ece_matches_reference_and_reliability(bins: int, decimals: int | None) -> None:
    y, s, p = binary_data(10 + bins, 700, 0.3, decimals)
    ece = binary_metrics(y, p, s, bins=bins)["ece"]
    assert ece == pytest.approx(ece_reference(y, s, bins), abs=1e-12)
    r = reliability(y, s, bins=bins)
    count, mean_s, obs = (np.array(r[k]) for k in ("count", "mean_score", "observed"))
    full = count > 0
    from_curve = np.sum(count[full] / y.size * np.abs(obs[full] - mean_s[full]))
    assert ece == pytest.approx(from_curve, abs=1e-12)
    assert np.array_equal(count, np.histogram(s, bins=np.array(r["edges"]))[0])


@pytest.mark.parametrize("bins", [3, 10, 20])
def test_reliability_matches_calibration_curve(bins: int) -> None:
    # Continuous scores never sit on an edge, where scikit-learn closes bins on the right.
    y, s, _ = binary_data(20 + bins, 1000, 0.4)
    r = reliability(y, s, bins=bins)
    prob_true, prob_pred = calibration_curve(y, s, n_bins=bins, strategy="uniform")
    full = np.array(r["count"]) > 0
    np.testing.assert_allclose(np.array(r["observed"])[full], prob_true, rtol=1e-12)
    np.testing.assert_allclose(np.array(r["mean_score"])[full], prob_pred, rtol=1e-12)
    assert sum(r["count"]) == y.size


def test_reliability_bin_edges_and_empty_bins() -> None:
    y = np.array([1, 0, 1, 0, 1])
    s = np.array([0.0, 0.3, 0.3, 0.99, 1.0])
    r = reliability(y, s, bins=10)
    assert r["edges"] == [i / 10 for i in range(11)]
    assert r["edges"][3] == 0.3
    # 0.0 in the first bin, 0.3 in the bin starting at 0.3, 1.0 in the last with 0.99.
    assert r["count"] == [1, 0, 0, 2, 0, 0, 0, 0, 0, 2]
    assert r["observed"][3] == 0.5 and r["observed"][9] == 0.5
    assert r["mean_score"][9] == pytest.approx(0.995)
    assert math.isnan(r["observed"][1]) and math.isnan(r["mean_score"][1])
    ece = binary_metrics(y, y, s, bins=10)["ece"]
    assert ece == pytest.approx((1 * 1.0 + 2 * 0.2 + 2 * 0.495) / 5)


def test_perfectly_calibrated_bins_have_zero_ece() -> None:
    # In each bin the outcome rate equals the mean score exactly.
    s = np.repeat([0.25, 0.75], 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert binary_metrics(y, y, s, bins=4)["ece"] == 0.0
    assert binary_metrics(y, y, s, bins=1)["ece"] == pytest.approx(0.0)
    assert binary_metrics(y, y, 1 - s, bins=4)["ece"] == pytest.approx(0.5)


# -- multi-class ------------------------------------------------------------------------------


def multiclass_data(
    seed: int, n: int, k: int, weights: list[float] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=weights)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, prob.argmax(axis=1), prob


def check_multiclass(
    m: dict[str, Any], y: Any, p: Any, prob: Any, labels: list[Any]
) -> None:
    def sk(fn: Callable[..., float], average: str | None) -> Any:
        return quiet(lambda: fn(y, p, labels=labels, average=average, zero_division=NAN))

    same(m["n"], len(y))
    confusion = quiet(lambda: skm.confusion_matrix(y, p, labels=labels))
    same(m["accuracy"], skm.accuracy_score(y, p))
    same(m["macro_precision"], sk(skm.precision_score, "macro"))
    same(m["macro_recall"], sk(skm.recall_score, "macro"))
    same(m["macro_f1"], sk(skm.f1_score, "macro"))
    same(m["weighted_f1"], sk(skm.f1_score, "weighted"))
    same(m["balanced_accuracy"], quiet(lambda: skm.balanced_accuracy_score(y, p)))
    names = [str(c) for c in labels]
    assert m["confusion"]["classes"] == names == list(m["per_class"])
    assert m["confusion"]["matrix"] == confusion.tolist()
    per_class = zip(
        sk(skm.precision_score, None),
        sk(skm.recall_score, None),
        sk(skm.f1_score, None),
        confusion.sum(axis=1),
        strict=True,
    )
    for name, (pr, rc, f, su) in zip(names, per_class, strict=True):
        got = m["per_class"][name]
        same(got["precision"], pr)
        same(got["recall"], rc)
        same(got["f1"], f)
        assert got["support"] == su
    if prob is not None:
        same(m["log_loss"], skm.log_loss(y, prob, labels=labels))
        same(m["brier"], skm.brier_score_loss(y, prob, labels=labels))
        correct = (np.asarray(labels)[prob.argmax(axis=1)] == np.asarray(y)).astype(int)
        same(m["top_label_ece"], ece_reference(correct, prob.max(axis=1), 10))


@pytest.mark.parametrize(
    ("seed", "n", "k", "weights"),
    [(0, 600, 3, None), (1, 2000, 5, [0.8, 0.1, 0.05, 0.04, 0.01]), (2, 40, 4, None)],
)
def test_multiclass_matches_sklearn(seed: int, n: int, k: int, weights: list[float] | None) -> None:
    y, p, prob = multiclass_data(seed, n, k, weights)
    labels = sorted(set(y) | set(p))
    assume_full = len(labels) == k
    m = multiclass_metrics(y, p, prob if assume_full else None)
    check_multiclass(m, y, p, prob if assume_full else None, labels)
    assert set(m) >= {"log_loss", "brier", "top_label_ece"} or not assume_full


def test_multiclass_string_labels_with_classes_in_model_order() -> None:
    y_idx, p_idx, prob = multiclass_data(3, 500, 3)
    order = np.array(["cat", "ant", "bee"])  # the model's column order, not sorted
    y, p = order[y_idx], order[p_idx]
    m = multiclass_metrics(y, p, prob, classes=order)
    assert m["confusion"]["classes"] == ["cat", "ant", "bee"]
    check_multiclass(m, y, p, None, list(order))
    # scikit-learn wants columns in sorted label order.
    sorted_cols = prob[:, np.argsort(order)]
    same(m["log_loss"], skm.log_loss(y, sorted_cols))
    same(m["brier"], skm.brier_score_loss(y, sorted_cols, labels=sorted(order)))
    correct = (prob.argmax(axis=1) == y_idx).astype(int)
    same(m["top_label_ece"], ece_reference(correct, prob.max(axis=1), 10))


def test_top_label_ece_uses_the_probabilities_not_y_pred() -> None:
    y, _, prob = multiclass_data(4, 400, 3)
    decisions = np.random.default_rng(99).integers(0, 3, 400)  # decided by some other rule
    m = multiclass_metrics(y, decisions, prob)
    check_multiclass(m, y, decisions, prob, [0, 1, 2])
    assert m["accuracy"] < 0.5 < np.mean(prob.argmax(axis=1) == y)


def test_macro_averages_skip_nan_classes() -> None:
    y = [0, 1, 2, 2]
    p = [0, 0, 2, 2]  # class 1 is never predicted: its precision is undefined
    m = multiclass_metrics(y, p)
    assert math.isnan(m["per_class"]["1"]["precision"])
    assert m["macro_precision"] == pytest.approx(0.75)  # mean of 0.5 and 1.0
    same(m["macro_precision"], skm.precision_score(y, p, average="macro", zero_division=NAN))
    check_multiclass(m, y, p, None, [0, 1, 2])


def test_class_never_true_and_class_absent_everywhere() -> None:
    y = ["a", "a", "b", "b", "b"]
    p = ["a", "c", "b", "b", "a"]  # "c" is predicted but never true
    labels = ["a", "b", "c", "d"]  # "d" appears nowhere
    m = multiclass_metrics(y, p, classes=labels)
    check_multiclass(m, y, p, None, labels)
    assert math.isnan(m["per_class"]["c"]["recall"]) and m["per_class"]["c"]["precision"] == 0
    assert all(math.isnan(m["per_class"]["d"][k]) for k in ("precision", "recall", "f1"))
    assert m["per_class"]["d"]["support"] == 0
    # Balanced accuracy over the classes present in y_true: (1/2 + 2/3) / 2.
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 2 / 3) / 2)


def test_multiclass_single_class() -> None:
    m = multiclass_metrics(["x", "x"], ["x", "x"], [[1.0], [1.0]])
    assert m["accuracy"] == 1.0 and m["macro_f1"] == 1.0 and m["confusion"]["matrix"] == [[2]]
    assert m["log_loss"] == pytest.approx(-math.log(1 - 1e-15)) and m["brier"] == 0.0


def test_binary_and_multiclass_agree() -> None:
    y, s, p = binary_data(7, 300, 0.3)
    b = binary_metrics(y, p)
    m = multiclass_metrics(y, p, np.c_[1 - s, s])
    for key in ("precision", "recall", "f1"):
        assert m["per_class"]["1"][key] == pytest.approx(b[key])
    assert m["per_class"]["0"]["recall"] == pytest.approx(b["specificity"])
    assert m["balanced_accuracy"] == pytest.approx(b["balanced_accuracy"])
    assert m["accuracy"] == pytest.approx(b["accuracy"])
    assert m["brier"] == pytest.approx(2 * binary_metrics(y, p, s)["brier"])
    assert m["log_loss"] == pytest.approx(binary_metrics(y, p, s)["log_loss"])


# -- regression -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [1_000, 7])
def test_regression_matches_sklearn(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.lognormal(size=n) * rng.choice([-1, 1], size=n)
    pred = y + rng.normal(0.3, 1.0, size=n)
    m = regression_metrics(y, pred)
    assert list(m) == [
        "n", "mae", "mse", "rmse", "median_ae", "r2", "explained_variance", "mape", "bias",
        "max_error",
    ]  # fmt: skip
    same(m["n"], n)
    same(m["mae"], skm.mean_absolute_error(y, pred))
    same(m["mse"], skm.mean_squared_error(y, pred))
    same(m["rmse"], skm.root_mean_squared_error(y, pred))
    same(m["median_ae"], skm.median_absolute_error(y, pred))
    same(m["r2"], skm.r2_score(y, pred))
    same(m["explained_variance"], skm.explained_variance_score(y, pred))
    same(m["mape"], skm.mean_absolute_percentage_error(y, pred))
    same(m["max_error"], skm.max_error(y, pred))
    same(m["bias"], float(np.mean(pred) - np.mean(y)))


def test_regression_zero_targets_and_constant_target() -> None:
    y = np.array([0.0, 1.0, 2.0, 0.0])
    pred = np.array([0.5, 1.0, 1.0, 0.0])
    same(regression_metrics(y, pred)["mape"], skm.mean_absolute_percentage_error(y, pred))
    assert regression_metrics(y, pred)["mape"] > 1e14  # 0.5 / eps, finite
    const = regression_metrics([3.0, 3.0, 3.0], [3.0, 4.0, 3.0])
    assert math.isnan(const["r2"]) and math.isnan(const["explained_variance"])
    assert const["max_error"] == 1.0 and const["bias"] == pytest.approx(1 / 3)
    # Even where floating point would leave a tiny nonzero variance.
    assert math.isnan(regression_metrics([0.1] * 3, [0.2] * 3)["r2"])
    perfect = regression_metrics([1, 2, 4], [1, 2, 4])
    assert perfect["r2"] == 1.0 and perfect["mae"] == 0.0


# -- properties -------------------------------------------------------------------------------

small_binary = st.integers(2, 30).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.75, 1.0]), min_size=n, max_size=n),
    )
)


@settings(max_examples=200, deadline=None)
@given(small_binary)
def test_auc_and_average_precision_match_sklearn(data: tuple[list[int], list[float]]) -> None:
    y, s = data
    assume(0 < sum(y) < len(y))
    m = binary_metrics(y, y, s)
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert m["average_precision"] == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    assert 0.0 <= m["ece"] <= 1.0
    assert m["ece"] == pytest.approx(ece_reference(np.array(y), np.array(s), 10), abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 40).flatmap(
        lambda n: st.tuples(
            st.lists(st.sampled_from("abcd"), min_size=n, max_size=n),
            st.lists(st.sampled_from("abcde"), min_size=n, max_size=n),
        )
    )
)
def test_multiclass_matches_sklearn_on_any_labels(data: tuple[list[str], list[str]]) -> None:
    y, p = data
    check_multiclass(multiclass_metrics(y, p), y, p, None, sorted(set(y) | set(p)))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 1), min_size=1, max_size=30).flatmap(
        lambda y: st.tuples(st.just(y), st.lists(st.integers(0, 1), min_size=len(y), max_size=len(y)))
    )
)
def test_binary_confusion_metrics_match_sklearn(data: tuple[list[int], list[int]]) -> None:
    y, p = data
    m = binary_metrics(y, p)
    same(m["precision"], skm.precision_score(y, p, zero_division=NAN))
    same(m["recall"], skm.recall_score(y, p, zero_division=NAN))
    same(m["f1"], skm.f1_score(y, p, zero_division=NAN))
    same(m["balanced_accuracy"], quiet(lambda: skm.balanced_accuracy_score(y, p)))
    mcc = quiet(lambda: skm.matthews_corrcoef(y, p))
    if len(set(y)) == 2 and len(set(p)) == 2:
        same(m["mcc"], mcc)
    else:  # an empty margin: scikit-learn says 0, undefined is NaN here
        assert mcc == 0.0 and math.isnan(m["mcc"])


# -- directions -------------------------------------------------------------------------------


def test_directions_cover_every_metric() -> None:
    y, s, p = binary_data(0, 200, 0.4)
    yk, pk, prob = multiclass_data(0, 200, 3)
    keys = (
        set(binary_metrics(y, p, s))
        | set(multiclass_metrics(yk, pk, prob))
        | set(regression_metrics(s, s + 0.1))
    )
    undirected = {"n", "prevalence", "positive_rate", "bias", "per_class", "confusion"}
    assert set(METRIC_DIRECTIONS) == keys - undirected
    assert set(METRIC_DIRECTIONS.values()) == {"higher", "lower"}
    assert METRIC_DIRECTIONS["recall"] == "higher" and METRIC_DIRECTIONS["brier"] == "lower"


def test_directions_rank_a_perfect_model_above_a_noisy_one() -> None:
    def better(name: str, good: float, bad: float) -> bool:
        return good > bad if METRIC_DIRECTIONS[name] == "higher" else good < bad

    y, s, p = binary_data(1, 300, 0.4)
    good = binary_metrics(y, y, np.clip(y * 0.9 + 0.05, 0, 1))
    bad = binary_metrics(y, p, s)
    for name in set(good) & set(METRIC_DIRECTIONS):
        assert better(name, good[name], bad[name]), name
    yk, pk, prob = multiclass_data(1, 300, 3)
    good_m = multiclass_metrics(yk, yk, np.eye(3)[yk] * 0.9 + 0.1 / 3)
    bad_m = multiclass_metrics(yk, pk, prob)
    for name in set(good_m) & set(METRIC_DIRECTIONS):
        assert better(name, good_m[name], bad_m[name]), name
    rng = np.random.default_rng(1)
    t = rng.normal(5, 1, 100)
    good_r = regression_metrics(t, t + rng.normal(0, 0.01, 100))
    bad_r = regression_metrics(t, t + rng.normal(0, 1, 100))
    for name in set(good_r) & set(METRIC_DIRECTIONS):
        assert better(name, good_r[name], bad_r[name]), name


# -- bad input --------------------------------------------------------------------------------

GOOD_Y = [0, 1, 1, 0, 1]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: binary_metrics(GOOD_Y, [0, 1, 1]), r"y_pred has 3 rows but y_true has 5; pass one decision per label"),
        (lambda: binary_metrics([], []), r"y_true is empty"),
        (lambda: binary_metrics([[0, 1]], [[0, 1]]), r"y_true must be 1-D; got shape \(1, 2\)"),
        (lambda: binary_metrics([0, 2, 1], [0, 1, 1]), r"y_true must hold only 0 and 1; got \[2\]. Map the positive class to 1"),
        (lambda: binary_metrics(["no", "yes"], [0, 1]), r"y_true must be 0/1 or bool.*Map the positive class to 1"),
        (lambda: binary_metrics([0.0, np.nan], [0, 1]), r"y_true has missing values"),
        (lambda: binary_metrics(GOOD_Y, GOOD_Y, [0.1] * 4), r"scores has 4 rows but y_true has 5; pass one score per label"),
        (lambda: binary_metrics(GOOD_Y, GOOD_Y, [0.1, 0.2, 3.0, 0.4, 0.5]), r"scores must be probabilities in \[0, 1\]; got values from 0.1 to 3. Pass probabilities, e.g. predict_proba\(X\)\[:, 1\]"),
        (lambda: binary_metrics(GOOD_Y, GOOD_Y, [0.1, np.nan, 0.3, 0.4, 0.5]), r"scores has 1 values that are not finite"),
        (lambda: binary_metrics(GOOD_Y, GOOD_Y, ["a"] * 5), r"scores must hold numbers"),
        (lambda: reliability(GOOD_Y, [-0.1] * 5), r"reliability: scores must be probabilities"),
        (lambda: regression_metrics([1.0, 2.0], [1.0, np.inf]), r"y_pred has 1 values that are not finite numbers \(NaN or inf\); drop or impute"),
        (lambda: regression_metrics([1.0, 2.0], [1.0]), r"regression_metrics: y_pred has 1 rows but y_true has 2"),
        (lambda: regression_metrics(["a", "b"], [1.0, 2.0]), r"y_true must hold numbers"),
        (lambda: multiclass_metrics([1, 2], ["1", "2"]), r"mix numbers and strings"),
        (lambda: multiclass_metrics([1.0, np.nan], [1.0, 2.0]), r"y_true has missing labels"),
        (lambda: multiclass_metrics(["a", "b"], ["a", "c"], classes=["a", "b"]), r"y_pred has labels \['c'\] that are not in classes"),
        (lambda: multiclass_metrics(["a", "b"], ["a", "b"], classes=["a", "b", "a"]), r"classes lists \['a'\] more than once"),
        (lambda: multiclass_metrics([0, 1], [0, 1], [[0.5, 0.5, 0.0]] * 2), r"probabilities has 3 columns but y_true and y_pred hold 2 labels; pass classes="),
        (lambda: multiclass_metrics([0, 1], [0, 1], [[0.5, 0.5]] * 2, classes=[0, 1, 2]), r"probabilities has 2 columns but classes lists 3"),
        (lambda: multiclass_metrics([0, 1], [0, 1], [[0.5, 0.4], [0.5, 0.5]]), r"each row of probabilities must sum to 1 \(within 1e-06\); row 0 sums to 0.9"),
        (lambda: multiclass_metrics([0, 1], [0, 1], [[0.5, 0.5]]), r"probabilities must have shape \(2, K\)"),
        (lambda: multiclass_metrics([0, 1], [0, 1], [[1.5, -0.5]] * 2), r"finite numbers in \[0, 1\]"),
        (lambda: multiclass_metrics(np.array([1, "a"], dtype=object), [1, 1]), r"mutually comparable"),
        (lambda: multiclass_metrics([0, 1, 1], [0, 1]), r"y_pred has 2 rows but y_true has 3"),
    ],
)  # fmt: skip
def test_bad_input_says_what_to_do(call: Callable[[], Any], match: str) -> None:
    with pytest.raises(DataError, match=match):
        call()


def test_row_sums_within_tolerance_pass() -> None:
    m = multiclass_metrics([0, 1], [0, 1], [[0.5 + 5e-7, 0.5], [0.2, 0.8]])
    assert m["accuracy"] == 1.0


@pytest.mark.parametrize("bins", [0, -1, 2.5, True])
def test_bins_must_be_a_positive_int(bins: Any) -> None:
    with pytest.raises(ConfigError, match="The 'bins' parameter of binary_metrics must be an int >= 1"):
        binary_metrics(GOOD_Y, GOOD_Y, [0.5] * 5, bins=bins)


def test_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        regression_metrics([], [])


def test_docstring_examples() -> None:
    result = doctest.testmod(metrics, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
