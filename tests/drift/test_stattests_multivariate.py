"""Multivariate drift tests: MMD (linear and permutation), C2ST and PCA reconstruction error.

The MMD statistics are checked against slow, literal transcriptions of Gretton et al.
2012 (Eq. 3 and Lemma 14); the tests' p-values against their null distributions.
"""

from __future__ import annotations

import doctest
import itertools
import json
import math
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from scipy import stats

from hindsight.drift.stattests import c2st, mmd, pca_reconstruction
from hindsight.drift.stattests.base import REGISTRY, DriftTest
from hindsight.drift.stattests.c2st import C2ST, roc_auc
from hindsight.drift.stattests.ks import KS
from hindsight.drift.stattests.mmd import (
    MMDLinear,
    MMDPermutation,
    _mmd2_for_labellings,
    gaussian_kernel,
    median_heuristic,
    mmd2_linear,
    mmd2_unbiased,
)
from hindsight.drift.stattests.pca_reconstruction import PCAReconstruction, fit_reconstruction
from hindsight.errors import ConfigError, DriftError

TESTS: list[type[DriftTest]] = [MMDLinear, MMDPermutation, C2ST, PCAReconstruction]


@pytest.fixture(autouse=True)
def _one_openmp_thread() -> Iterator[None]:
    """Boosting on a few thousand rows gains nothing from threads, and on a busy machine
    OpenMP's spinning threads make it ten times slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="openmp"):
        yield


def _k(a: np.ndarray, b: np.ndarray, bandwidth: float) -> float:
    return math.exp(-sum((ai - bi) ** 2 for ai, bi in zip(a, b, strict=True)) / (2 * bandwidth**2))


def _slow_mmd2_unbiased(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    """Gretton et al. 2012, Eq. 3, one kernel evaluation at a time."""
    m, n = len(x), len(y)
    xx = sum(_k(x[i], x[j], bandwidth) for i in range(m) for j in range(m) if i != j)
    yy = sum(_k(y[i], y[j], bandwidth) for i in range(n) for j in range(n) if i != j)
    xy = sum(_k(x[i], y[j], bandwidth) for i in range(m) for j in range(n))
    return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n)


def _slow_mmd2_linear(x: np.ndarray, y: np.ndarray, bandwidth: float) -> tuple[float, list[float]]:
    """Gretton et al. 2012, Lemma 14: the mean of h over consecutive, disjoint pairs."""
    m2 = min(len(x), len(y)) // 2
    terms = []
    for i in range(m2):
        x1, x2, y1, y2 = x[2 * i], x[2 * i + 1], y[2 * i], y[2 * i + 1]
        terms.append(
            _k(x1, x2, bandwidth)
            + _k(y1, y2, bandwidth)
            - _k(x1, y2, bandwidth)
            - _k(x2, y1, bandwidth)
        )
    return sum(terms) / m2, terms


# --- MMD against the paper -------------------------------------------------------------


@pytest.mark.parametrize(("m", "n", "d"), [(7, 5, 3), (6, 6, 1), (4, 9, 2)])
def test_unbiased_mmd2_matches_eq3(m: int, n: int, d: int) -> None:
    rng = np.random.default_rng(m * 100 + n)
    x, y = rng.normal(size=(m, d)), rng.normal(0.4, 1.3, size=(n, d))
    for bandwidth in (0.5, 1.7):
        assert mmd2_unbiased(x, y, bandwidth) == pytest.approx(
            _slow_mmd2_unbiased(x, y, bandwidth), rel=1e-10, abs=1e-12
        )


def test_linear_mmd2_matches_lemma14() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(11, 3)), rng.normal(0.3, size=(8, 3))  # 4 pairs; rows 9-11 unused
    statistic, std_error = mmd2_linear(x, y, 1.2)
    expected, terms = _slow_mmd2_linear(x, y, 1.2)
    assert statistic == pytest.approx(expected, rel=1e-12)
    mean = sum(terms) / len(terms)
    variance = sum((t - mean) ** 2 for t in terms) / (len(terms) - 1)
    assert std_error == pytest.approx(math.sqrt(variance / len(terms)), rel=1e-12)


def test_permuted_statistics_equal_eq3_on_the_relabelled_samples() -> None:
    rng = np.random.default_rng(2)
    pooled = rng.normal(size=(9, 2))
    m = 4
    kernel = gaussian_kernel(pooled, pooled, 0.9)
    labellings = [rng.permutation(9)[:m] for _ in range(5)]
    masks = np.zeros((9, 5))
    for column, rows in enumerate(labellings):
        masks[rows, column] = 1.0
    got = _mmd2_for_labellings(kernel, masks, m)
    for column, rows in enumerate(labellings):
        others = np.setdiff1d(np.arange(9), rows)
        assert got[column] == pytest.approx(
            _slow_mmd2_unbiased(pooled[rows], pooled[others], 0.9), rel=1e-10, abs=1e-12
        )


@pytest.mark.parametrize("rows", [2, 3, 4, 5, 12])
def test_median_heuristic_is_the_median_pairwise_distance(rows: int) -> None:
    pooled = np.random.default_rng(rows).normal(size=(rows, 3)) + 1e3  # far from the origin
    distances = [float(np.linalg.norm(a - b)) for a, b in itertools.combinations(pooled, 2)]
    assert median_heuristic(pooled) == pytest.approx(float(np.median(distances)), rel=1e-9)


def test_median_heuristic_skips_duplicate_rows() -> None:
    rows = np.repeat(np.array([[0.0, 0.0], [3.0, 4.0]]), 5, axis=0)  # 20 of 45 pairs are 0
    assert median_heuristic(rows) == pytest.approx(5.0)
    duplicates = np.repeat(np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]]), [8, 1, 1], axis=0)
    assert median_heuristic(duplicates) == pytest.approx(5.0)  # median of non-zero: 5, 5, ..., 10
    assert median_heuristic(np.ones((6, 2))) == 1.0


def test_permutation_statistic_is_eq3_with_the_median_bandwidth() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(15, 2)), rng.normal(size=(12, 2))
    result = MMDPermutation(n_permutations=20)(x, y)
    bandwidth = median_heuristic(np.vstack([x, y]))
    assert result.details["bandwidth"] == pytest.approx(bandwidth)
    assert result.statistic == pytest.approx(_slow_mmd2_unbiased(x, y, bandwidth), rel=1e-9)
    assert result.effect_size == pytest.approx(math.sqrt(max(result.statistic, 0.0)))
    assert result.p_value is not None
    assert round(result.p_value * 21) == pytest.approx(result.p_value * 21)  # (1 + k) / 21


def test_linear_p_value_is_the_normal_tail_of_the_z_score() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(300, 2)), rng.normal(0.2, size=(300, 2))
    result = MMDLinear(bandwidth=1.0)(x, y)
    details = result.details
    assert details["z"] == pytest.approx(result.statistic / details["std_error"])
    assert result.p_value == pytest.approx(stats.norm.sf(details["z"]))
    assert details["n_pairs"] == 150 and details["bandwidth_source"] == "given"


# --- calibration and power -------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "n"),
    [
        (lambda seed: MMDPermutation(n_permutations=99, random_state=seed), 40),
        (lambda seed: MMDLinear(random_state=seed), 400),
    ],
    ids=["mmd", "mmd_linear"],
)
def test_mmd_p_values_are_calibrated_under_the_null(
    make: Callable[[int], DriftTest], n: int
) -> None:
    datasets = 40
    p_values = []
    for seed in range(datasets):
        rng = np.random.default_rng(1000 + seed)
        result = make(seed)(rng.normal(size=(n, 3)), rng.normal(size=(n, 3)))
        p_values.append(result.p_value)
    p = np.array(p_values)
    # Binomial bands at the 0.1% level on either side.
    low, high = stats.binom.ppf([0.001, 0.999], datasets, 0.05)
    assert low <= (p < 0.05).sum() <= high
    low, high = stats.binom.ppf([0.001, 0.999], datasets, 0.5)
    assert low <= (p < 0.5).sum() <= high


def _shifted(seed: int, n: int = 500) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)), rng.normal(0.5, 1.0, size=(n, 5))


@pytest.mark.parametrize("test", [MMDPermutation(), MMDLinear()], ids=["mmd", "mmd_linear"])
def test_mmd_detects_a_half_sd_mean_shift_in_five_dimensions(test: DriftTest) -> None:
    result = test(*_shifted(5))
    assert result.drifted
    assert result.p_value is not None and result.p_value < 0.01
    assert result.effect_size > 0.0


def test_mmd_permutation_subsamples_and_says_so() -> None:
    reference, current = _shifted(6, n=300)
    result = MMDPermutation(max_samples=100, n_permutations=30)(reference, current)
    assert result.details["subsampled"] is True
    assert result.details["n_reference_used"] == result.details["n_current_used"] == 100
    assert "100 rows" in result.details["note"]
    assert MMDPermutation(max_samples=100, n_permutations=30)(reference, current) == result
    whole = MMDPermutation(n_permutations=30)(reference, current)
    assert whole.details["subsampled"] is False and "note" not in whole.details


def test_permutation_p_value_floor_is_one_over_permutations_plus_one() -> None:
    reference, current = _shifted(7, n=200)
    assert MMDPermutation(n_permutations=49)(reference, current).p_value == pytest.approx(1 / 50)


# --- C2ST ------------------------------------------------------------------------------


def test_c2st_accuracy_is_near_one_half_under_the_null() -> None:
    rng = np.random.default_rng(8)
    result = C2ST()(rng.normal(size=(1000, 3)), rng.normal(size=(1200, 3)))
    n_test = result.details["n_test"]
    assert n_test == 1000 and result.details["n_per_sample_used"] == 1000
    assert abs(result.statistic - 0.5) < 3.5 * 0.5 / math.sqrt(n_test)
    assert abs(result.effect_size - 0.5) < 0.06
    assert result.p_value == pytest.approx(
        stats.norm.sf((result.statistic - 0.5) * 2 * math.sqrt(n_test))
    )
    assert not result.drifted


def test_c2st_detects_a_correlation_change_marginal_tests_miss() -> None:
    rng = np.random.default_rng(9)
    reference = rng.normal(size=(1000, 2))
    current = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.8], [0.8, 1.0]], size=1000)
    assert not any(KS()(reference[:, j], current[:, j]).drifted for j in range(2))
    result = C2ST()(reference, current)
    assert result.drifted
    assert result.statistic > 0.55 and result.effect_size > 0.6
    assert result.details["classifier"] == "HistGradientBoostingClassifier"


def test_c2st_takes_any_classifier_and_leaves_it_unfitted() -> None:
    from sklearn.linear_model import LogisticRegression

    estimator = LogisticRegression()
    rng = np.random.default_rng(10)
    test = C2ST(estimator=estimator, max_samples=300)
    result = test(rng.normal(size=(500, 3)), rng.normal(size=(400, 3)) + np.array([0.5, 0.0, 0.0]))
    assert result.drifted and result.details["classifier"] == "LogisticRegression"
    assert result.details["n_per_sample_used"] == 300 and result.details["subsampled"] is True
    assert not hasattr(estimator, "coef_")


def test_c2st_refuses_an_object_that_is_no_classifier() -> None:
    with pytest.raises(ConfigError, match="fit\\(\\) and predict\\(\\)"):
        C2ST(estimator="logistic")


def test_c2st_without_scikit_learn_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.ensemble", None)
    rng = np.random.default_rng(11)
    with pytest.raises(DriftError, match="pip install scikit-learn"):
        C2ST()(rng.normal(size=(50, 2)), rng.normal(size=(50, 2)))


def test_roc_auc_matches_scikit_learn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(12)
    labels = rng.integers(0, 2, size=200)
    scores = np.round(rng.normal(size=200) + labels, 1)
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))


# --- PCA reconstruction ----------------------------------------------------------------


def _correlated(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    cov = np.full((4, 4), rho) + (1 - rho) * np.eye(4)
    return rng.multivariate_normal(np.zeros(4), cov, size=n)


def test_pca_reconstruction_detects_a_correlation_change_with_the_same_marginals() -> None:
    rng = np.random.default_rng(13)
    reference = _correlated(rng, 3000, 0.7)
    result = PCAReconstruction()(reference, _correlated(rng, 300, 0.0))
    assert result.drifted and result.effect_size > 10
    assert result.details["current_error"] > result.details["upper"]
    assert len(result.details["chunk_errors"]) == 10 and result.details["chunk_size"] == 300
    assert result.details["n_components"] == 1 and result.details["explained_variance"] >= 0.65


def test_pca_reconstruction_does_not_flag_the_same_distribution() -> None:
    rng = np.random.default_rng(14)
    reference = _correlated(rng, 3000, 0.7)
    for _ in range(5):
        result = PCAReconstruction()(reference, _correlated(rng, 300, 0.7))
        assert not result.drifted
        assert result.details["lower"] < result.statistic < result.details["upper"]


def test_pca_reconstruction_effect_counts_reference_chunk_sigmas() -> None:
    rng = np.random.default_rng(15)
    reference = rng.normal(size=(1000, 3)) * [1.0, 10.0, 0.1]
    result = PCAReconstruction(variance=0.5, chunks=5)(reference, rng.normal(size=(50, 3)))
    model = fit_reconstruction(reference, 0.5)
    chunk_errors = [part.mean() for part in np.array_split(model.errors(reference), 5)]
    mu, sigma = float(np.mean(chunk_errors)), float(np.std(chunk_errors, ddof=1))
    assert result.details["chunk_errors"] == pytest.approx(chunk_errors)
    assert result.effect_size == pytest.approx(abs(result.statistic - mu) / sigma)
    # Standardised, the components are orthonormal, and the errors are residual norms.
    np.testing.assert_allclose(model.components @ model.components.T, np.eye(2), atol=1e-12)
    z = (reference - reference.mean(axis=0)) / reference.std(axis=0)
    residual = z - z @ model.components.T @ model.components
    np.testing.assert_allclose(model.errors(reference), np.linalg.norm(residual, axis=1))


def test_pca_reconstruction_keeps_a_residual_and_sees_a_constant_column_move() -> None:
    rng = np.random.default_rng(16)
    reference = np.hstack([rng.normal(size=(500, 2)), np.full((500, 1), 0.1)])
    assert fit_reconstruction(reference, 1.0).components.shape[0] == 2  # at most d - 1
    same = PCAReconstruction(variance=1.0)(reference, reference[:100])
    assert not same.drifted and math.isfinite(same.effect_size)
    moved = np.hstack([rng.normal(size=(100, 2)), np.full((100, 1), 0.5)])
    assert PCAReconstruction()(reference, moved).drifted


# --- contract, input and parameter errors -----------------------------------------------


@pytest.mark.parametrize("cls", TESTS)
def test_registered_as_multivariate(cls: type[DriftTest]) -> None:
    assert REGISTRY[cls.name] is cls
    assert cls.kinds == frozenset({"multivariate"})
    rng = np.random.default_rng(17)
    result = cls()(rng.normal(size=(60, 3)), rng.normal(size=(60, 3)))
    assert json.loads(json.dumps(result.to_dict()))["test"] == cls.name
    assert (result.p_value is None) == (not cls.has_p_value)


BAD_INPUTS = [
    (np.zeros(50), np.zeros((50, 2)), "must be 2-D"),
    (np.zeros((50, 2, 1)), np.zeros((50, 2)), "must be 2-D"),
    (np.zeros((50, 2)), np.zeros((50, 3)), "same features"),
    (np.zeros((50, 0)), np.zeros((50, 0)), "no features"),
    (np.full((50, 2), np.nan), np.zeros((50, 2)), "NaN or infinity"),
    (np.zeros((50, 2)), np.full((50, 2), np.inf), "NaN or infinity"),
    ([["a", "b"]] * 50, np.zeros((50, 2)), "must be numeric"),
    (np.zeros((50, 2)), np.zeros((1, 2)), "at least"),
]


@pytest.mark.parametrize("cls", TESTS)
@pytest.mark.parametrize(("reference", "current", "message"), BAD_INPUTS)
def test_bad_input_is_a_drift_error(
    cls: type[DriftTest], reference: Any, current: Any, message: str
) -> None:
    with pytest.raises(DriftError, match=message):
        cls()(reference, current)


def test_each_test_says_how_many_rows_it_needs() -> None:
    rng = np.random.default_rng(18)
    with pytest.raises(DriftError, match="at least 4 rows in the current"):
        MMDLinear()(rng.normal(size=(10, 2)), rng.normal(size=(3, 2)))
    with pytest.raises(DriftError, match="at least 10 rows in the reference"):
        C2ST()(rng.normal(size=(9, 2)), rng.normal(size=(30, 2)))
    with pytest.raises(DriftError, match="at least 20 rows in the reference"):
        PCAReconstruction()(rng.normal(size=(19, 2)), rng.normal(size=(30, 2)))
    with pytest.raises(DriftError, match="at least 2 features"):
        PCAReconstruction()(rng.normal(size=(50, 1)), rng.normal(size=(30, 1)))


@pytest.mark.parametrize(
    ("cls", "params", "message"),
    [
        (MMDPermutation, {"n_permutations": 0}, "'n_permutations' parameter of MMDPermutation"),
        (MMDPermutation, {"max_samples": 2}, "'max_samples'"),
        (MMDLinear, {"bandwidth": 0.0}, "'bandwidth' parameter of MMDLinear"),
        (MMDLinear, {"random_state": -1}, "'random_state'"),
        (C2ST, {"test_size": 1.0}, "'test_size' parameter of C2ST"),
        (PCAReconstruction, {"variance": 0.0}, "'variance' parameter of PCAReconstruction"),
        (PCAReconstruction, {"chunks": 1}, "'chunks'"),
        (PCAReconstruction, {"threshold": -1.0}, "'threshold'"),
    ],
)
def test_bad_parameters_are_config_errors(
    cls: type[DriftTest], params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        cls(**params)


@pytest.mark.parametrize("module", [mmd, c2st, pca_reconstruction])
def test_docstring_examples(module: types.ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
