"""Rollout statistics, each checked against SciPy or the formula of its source paper."""

from __future__ import annotations

import doctest
import json
import math
from typing import Any

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.spatial.distance import jensenshannon

import hindsight.serving.rollout.stats as rs
from hindsight.errors import ConfigError
from hindsight.serving.rollout.stats import (
    AgreementResult,
    LiftResult,
    MetricJudgement,
    RolloutVerdict,
    SequentialResult,
    TestResult,
    agreement,
    always_valid_p,
    compare_distributions,
    compare_latency,
    compare_rates,
    hodges_lehmann,
    mcnemar,
    mcnemar_counts,
    msprt_means,
    msprt_rates,
    rate_lift,
    sample_ratio_mismatch,
    verdict,
    wilson_interval,
)

Z95 = stats.norm.ppf(0.975)


def _json_safe(value: Any) -> None:
    """Only JSON types, no numpy scalars, no NaN or infinities."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str)
            _json_safe(v)
    elif isinstance(value, list):
        for v in value:
            _json_safe(v)
    else:
        assert value is None or type(value) in (bool, int, float, str), type(value)
        if isinstance(value, float):
            assert math.isfinite(value)


def _roundtrip(result: Any) -> dict[str, Any]:
    d = result.to_dict()
    _json_safe(d)
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    return d


def test_module_doctest() -> None:
    result = doctest.testmod(rs, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


def test_all_is_complete() -> None:
    for name in rs.__all__:
        assert hasattr(rs, name), name


# -- Wilson and Newcombe -----------------------------------------------------------
@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (57, 1000), (1, 1)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_interval_matches_scipy(k: int, n: int, confidence: float) -> None:
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    low, high = wilson_interval(k, n, confidence=confidence)
    assert low == pytest.approx(ci.low, abs=1e-12)
    assert high == pytest.approx(ci.high, abs=1e-12)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "low", "high"),
    [  # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (0, 10, 0, 10, -0.2775, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0000),
        (10, 10, 0, 10, 0.6075, 1.0000),
    ],
)
def test_newcombe_interval_matches_the_paper(
    x1: int, n1: int, x2: int, n2: int, low: float, high: float
) -> None:
    # compare_rates reports canary - baseline, so the paper's first sample is the canary.
    result = compare_rates(x2, n2, x1, n1, min_samples=1)
    assert result.effect_ci is not None
    assert result.effect_ci[0] == pytest.approx(low, abs=6e-5)
    assert result.effect_ci[1] == pytest.approx(high, abs=6e-5)


def test_wilson_interval_rejects_bad_counts() -> None:
    with pytest.raises(ConfigError, match="cannot exceed"):
        wilson_interval(5, 4)
    with pytest.raises(ConfigError, match="'n' parameter"):
        wilson_interval(0, 0)


# -- latency ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def latencies() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    return rng.lognormal(3.0, 0.4, 300), rng.lognormal(3.0, 0.4, 280) * 1.5


def _hl_reference(x: np.ndarray, y: np.ndarray, confidence: float) -> tuple[float, float, float]:
    d = np.sort(np.subtract.outer(x, y).ravel())
    n = d.size
    z = stats.norm.ppf(0.5 + confidence / 2)
    c = math.floor(n / 2 - z * math.sqrt(x.size * y.size * (x.size + y.size + 1) / 12))
    return float(np.median(d)), float(d[c - 1]), float(d[n - c])


def test_compare_latency_matches_scipy_and_formula(
    latencies: tuple[np.ndarray, np.ndarray],
) -> None:
    b, c = latencies
    result = compare_latency(b, c)
    ref = stats.mannwhitneyu(c, b, alternative="two-sided", method="auto")
    assert result.statistic == pytest.approx(ref.statistic)
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    median, low, high = _hl_reference(c, b, 0.95)
    assert result.effect == pytest.approx(median, rel=1e-12)
    assert result.effect_ci == pytest.approx((low, high), rel=1e-12)
    assert result.status == "worse"
    assert result.test == "Mann-Whitney U"
    for side, x in (("baseline", b), ("canary", c)):
        summary = getattr(result, side)
        assert summary["n"] == x.size
        assert summary["median"] == pytest.approx(np.median(x))
        assert summary["p95"] == pytest.approx(np.percentile(x, 95))
        assert summary["p99"] == pytest.approx(np.percentile(x, 99))
        assert summary["mean"] == pytest.approx(x.mean())
    assert f"shift {median:+.3g} ms > " in result.detail
    assert "Mann-Whitney p=" in result.detail
    _roundtrip(result)


def test_compare_latency_uses_the_asymptotic_method_on_large_samples() -> None:
    rng = np.random.default_rng(3)
    b, c = rng.normal(50, 5, 600), rng.normal(50.5, 5, 40)
    ref = stats.mannwhitneyu(c, b, alternative="two-sided", method="asymptotic")
    result = compare_latency(b, c)
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-12)


def test_compare_latency_small_samples_use_scipy_auto() -> None:
    b = np.array([10.0, 11.5, 12.0, 9.0, 10.5, 13.0])
    c = np.array([15.0, 16.0, 14.5, 18.0, 17.5, 15.5])
    result = compare_latency(b, c, min_samples=5)
    ref = stats.mannwhitneyu(c, b, alternative="two-sided", method="auto")
    exact = stats.mannwhitneyu(c, b, alternative="two-sided", method="exact")
    assert result.p_value == pytest.approx(ref.pvalue) == pytest.approx(exact.pvalue)
    assert result.statistic == 36.0
    assert result.status == "worse"


def test_hodges_lehmann_interval_is_none_when_samples_are_tiny() -> None:
    shift, ci = hodges_lehmann([1.0, 2.0], [0.0, 0.5])
    assert shift == pytest.approx(np.median([1.0, 0.5, 2.0, 1.5]))
    assert ci is None
    assert hodges_lehmann([1.0, 2.0, 3.0], [0.0], confidence=None) == (2.0, None)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["continuous", "ties", "huge_ties"])
def test_hodges_lehmann_search_is_exact(
    seed: int, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(seed)
    nx, ny = 301 + seed, 240 + 3 * seed  # both parities of n x m across seeds
    if kind == "continuous":
        x, y = rng.lognormal(3, 0.6, nx), rng.lognormal(3, 0.5, ny) + rng.normal(0, 1)
        window = 2000
    else:
        x = rng.integers(0, 30, nx).astype(float)
        y = rng.integers(0, 25, ny).astype(float)
        window = 2000 if kind == "ties" else 50  # below one tied value's multiplicity
    monkeypatch.setattr(rs, "_EXACT_PAIRS", 0)
    monkeypatch.setattr(rs, "_WINDOW", window)
    shift, ci = hodges_lehmann(x, y, confidence=0.9)
    median, low, high = _hl_reference(x, y, 0.9)
    assert shift == pytest.approx(median, abs=1e-9)
    assert ci == pytest.approx((low, high), abs=1e-9)


def test_hodges_lehmann_default_large_path_is_exact() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.gamma(2.0, 10.0, 2101), rng.gamma(2.0, 9.0, 2000)
    assert x.size * y.size > rs._EXACT_PAIRS
    shift, ci = hodges_lehmann(x, y)
    median, low, high = _hl_reference(x, y, 0.95)
    assert shift == pytest.approx(median, abs=1e-12)
    assert ci == pytest.approx((low, high), abs=1e-12)


def test_compare_latency_effect_gate_keeps_tiny_significant_shifts_the_same() -> None:
    rng = np.random.default_rng(1)
    b = rng.normal(100.0, 2.0, 20_000)
    c = rng.normal(100.3, 2.0, 20_000)
    result = compare_latency(b, c, min_effect_ms=1.0, allowed_increase=0.0)
    assert result.p_value is not None and result.p_value < 1e-6
    assert result.effect is not None and 0.1 < result.effect < 0.5
    assert result.status == "same"
    assert "<= 1 ms allowed" in result.detail
    # The same data with no effect gate is worse.
    strict = compare_latency(b, c, min_effect_ms=0.0, allowed_increase=0.0)
    assert strict.status == "worse"


def test_compare_latency_relative_gate_uses_baseline_median() -> None:
    rng = np.random.default_rng(2)
    b = rng.normal(100.0, 5.0, 2000)
    c = rng.normal(105.0, 5.0, 2000)
    assert compare_latency(b, c, allowed_increase=0.10).status == "same"  # 5 ms < 10 ms
    assert compare_latency(b, c, allowed_increase=0.02).status == "worse"  # 5 ms > 2 ms


def test_compare_latency_faster_canary_is_better(latencies: tuple[np.ndarray, np.ndarray]) -> None:
    b, c = latencies
    result = compare_latency(c, b)
    assert result.status == "better"
    assert result.effect is not None and result.effect < 0


def test_compare_latency_identical_values_are_the_same_without_warnings() -> None:
    result = compare_latency(np.full(30, 12.0), np.full(40, 12.0))
    assert result.status == "same"
    assert result.p_value == 1.0
    assert result.statistic == 600.0
    assert result.effect == 0.0


def test_compare_latency_insufficient_samples() -> None:
    result = compare_latency(np.arange(30.0), np.arange(19.0), critical=True)
    assert result.status == "insufficient"
    assert result.critical is True
    assert result.p_value is None and result.effect is None
    assert "19 canary" in result.detail and "20 per side" in result.detail
    assert compare_latency(np.arange(30.0), np.arange(19.0), min_samples=19).status != (
        "insufficient"
    )
    _roundtrip(result)


@pytest.mark.parametrize(
    ("baseline", "canary", "kwargs", "match"),
    [
        ([], [1.0], {}, "baseline_ms is empty"),
        ([1.0, float("nan")], [1.0], {}, "NaN or infinite"),
        ([1.0, 2.0], [[1.0], [2.0]], {}, "one-dimensional"),
        (["a", "b"], [1.0], {}, "must be numbers"),
        ([1.0], [1.0], {"alpha": 0.0}, "'alpha' parameter"),
        ([1.0], [1.0], {"alpha": 1.0}, "'alpha' parameter"),
        ([1.0], [1.0], {"allowed_increase": -0.1}, "'allowed_increase'"),
        ([1.0], [1.0], {"min_samples": 0}, "'min_samples'"),
    ],
)
def test_compare_latency_rejects_bad_input(
    baseline: Any, canary: Any, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        compare_latency(baseline, canary, **kwargs)


# -- rates --------------------------------------------------------------------------
def test_compare_rates_z_test_matches_pearson_chi_square() -> None:
    xb, nb, xc, nc = 120, 10_000, 170, 10_000
    result = compare_rates(xb, nb, xc, nc)
    assert result.test == "two-proportion z-test"
    table = np.array([[xc, nc - xc], [xb, nb - xb]])
    chi = stats.chi2_contingency(table, correction=False)
    assert result.statistic is not None
    assert result.statistic**2 == pytest.approx(chi.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(chi.pvalue, rel=1e-10)
    pool = (xb + xc) / (nb + nc)
    z = (xc / nc - xb / nb) / math.sqrt(pool * (1 - pool) * (1 / nb + 1 / nc))
    assert result.statistic == pytest.approx(z)
    assert result.effect == pytest.approx(0.005)
    assert result.status == "worse"
    assert result.baseline == {"events": xb, "n": nb, "rate": 0.012}
    assert "1.70% (170/10000) vs 1.20% (120/10000)" in result.detail
    _roundtrip(result)


def test_compare_rates_newcombe_interval_is_built_from_wilson_intervals() -> None:
    xb, nb, xc, nc = 30, 1000, 52, 900
    result = compare_rates(xb, nb, xc, nc, alpha=0.1)
    lc, uc = stats.binomtest(xc, nc).proportion_ci(0.9, method="wilson")
    lb, ub = stats.binomtest(xb, nb).proportion_ci(0.9, method="wilson")
    pc, pb = xc / nc, xb / nb
    low = pc - pb - math.sqrt((pc - lc) ** 2 + (ub - pb) ** 2)
    high = pc - pb + math.sqrt((uc - pc) ** 2 + (pb - lb) ** 2)
    assert result.effect_ci == pytest.approx((low, high), rel=1e-10)


@pytest.mark.parametrize(("xb", "xc"), [(0, 4), (3, 12), (2, 2), (0, 0), (100, 96)])
def test_compare_rates_fisher_when_a_cell_is_small(xb: int, xc: int) -> None:
    nb, nc = 100, 100
    result = compare_rates(xb, nb, xc, nc)
    assert result.test == "Fisher exact"
    ref = stats.fisher_exact([[xc, nc - xc], [xb, nb - xb]])
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    d = _roundtrip(result)
    if not math.isfinite(float(ref.statistic)):
        assert d["statistic"] is None  # an infinite or undefined odds ratio
    else:
        assert d["statistic"] == pytest.approx(ref.statistic)


def test_compare_rates_switches_test_at_a_cell_of_five() -> None:
    assert compare_rates(4, 1000, 20, 1000).test == "Fisher exact"
    assert compare_rates(5, 1000, 20, 1000).test == "two-proportion z-test"
    assert compare_rates(50, 1000, 996, 1000).test == "Fisher exact"  # 4 non-events
    assert compare_rates(50, 1000, 995, 1000).test == "two-proportion z-test"


def test_compare_rates_small_significant_rise_is_within_min_effect() -> None:
    result = compare_rates(100, 1_000_000, 300, 1_000_000, min_effect=0.001)
    assert result.p_value is not None and result.p_value < 1e-20
    assert result.status == "same"  # +0.02 points is under the 0.1-point minimum
    assert compare_rates(100, 1_000_000, 300, 1_000_000, min_effect=0.0).status == "worse"


def test_compare_rates_relative_allowance() -> None:
    # 10 % -> 11 %: significant, 1 point; allowed 20 % of 10 % = 2 points.
    assert compare_rates(10_000, 100_000, 11_000, 100_000, allowed_increase=0.2).status == ("same")
    assert compare_rates(10_000, 100_000, 11_000, 100_000, allowed_increase=0.05).status == (
        "worse"
    )


def test_compare_rates_direction() -> None:
    assert compare_rates(300, 10_000, 100, 10_000).status == "better"
    accuracy = compare_rates(9_000, 10_000, 8_700, 10_000, higher_is_worse=False, name="accuracy")
    assert accuracy.status == "worse"
    assert accuracy.effect == pytest.approx(-0.03)
    assert accuracy.detail.startswith("accuracy 87.00%")
    assert compare_rates(8_700, 10_000, 9_000, 10_000, higher_is_worse=False).status == "better"


def test_compare_rates_insufficient_and_zero_trials() -> None:
    result = compare_rates(0, 0, 0, 50, name="fallback_rate")
    assert result.status == "insufficient"
    assert result.baseline["rate"] is None
    assert result.canary["rate"] == 0.0
    assert "fewer than the 100 per side" in result.detail
    _roundtrip(result)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1, 100, 0, 100), "'baseline_events' parameter"),
        ((0, -5, 0, 100), "'baseline_n' parameter"),
        ((101, 100, 0, 100), "events cannot exceed trials"),
        ((0, 100, 7, 6), "the canary has 7 events out of 6"),
        ((1.5, 100, 0, 100), "must be an int"),
        ((True, 100, 0, 100), "must be an int"),
    ],
)
def test_compare_rates_rejects_bad_counts(args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        compare_rates(*args)


def test_compare_rates_accepts_numpy_integers() -> None:
    result = compare_rates(np.int64(20), np.int64(1000), np.int32(25), np.int64(1000))
    assert result.status == "same"
    _roundtrip(result)


# -- prediction distributions -------------------------------------------------------
def test_compare_distributions_numeric_uses_ks() -> None:
    rng = np.random.default_rng(4)
    b, c = rng.beta(2, 5, 800), rng.beta(2.6, 5, 700)
    result = compare_distributions(b, c)
    ref = stats.ks_2samp(b, c)
    assert result.test == "Kolmogorov-Smirnov"
    assert result.statistic == pytest.approx(ref.statistic)
    assert result.effect == pytest.approx(ref.statistic)
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert result.status == "different"
    assert result.baseline["median"] == pytest.approx(np.median(b))
    _roundtrip(result)


def test_compare_distributions_ks_effect_gate() -> None:
    rng = np.random.default_rng(6)
    b, c = rng.normal(0, 1, 50_000), rng.normal(0.05, 1, 50_000)
    result = compare_distributions(b, c, min_effect=0.1)
    assert result.p_value is not None and result.p_value < 1e-6
    assert result.effect is not None and result.effect < 0.1
    assert result.status == "same"


def _js_reference(b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, float]:
    labels = np.unique(np.concatenate([b, c]))
    fb = np.array([(b == v).sum() for v in labels], dtype=float)
    fc = np.array([(c == v).sum() for v in labels], dtype=float)
    return np.vstack([fb, fc]), float(jensenshannon(fb / fb.sum(), fc / fc.sum(), base=2))


def test_compare_distributions_categorical_uses_chi_square_and_js() -> None:
    rng = np.random.default_rng(8)
    b = rng.choice(["cat", "dog", "bird"], 1000, p=[0.5, 0.3, 0.2])
    c = rng.choice(["cat", "dog", "bird", "fish"], 900, p=[0.3, 0.3, 0.2, 0.2])
    result = compare_distributions(b, c)
    table, js = _js_reference(b, c)
    ref = stats.chi2_contingency(table, correction=False)
    assert result.test == "chi-square"
    assert result.statistic == pytest.approx(ref.statistic)
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-8)
    assert result.effect == pytest.approx(js, rel=1e-10)
    assert result.status == "different"
    labels = np.unique(np.concatenate([b, c]))
    top = labels[np.argmax(np.abs(table[1] / c.size - table[0] / b.size))]
    assert f"largest shift {str(top)!r} " in result.detail
    assert result.canary["categories"] == 4 and result.baseline["categories"] == 3
    _roundtrip(result)


def test_compare_distributions_few_distinct_numbers_are_categorical() -> None:
    rng = np.random.default_rng(9)
    b = rng.integers(0, 5, 600)
    c = rng.integers(0, 5, 600)
    result = compare_distributions(b, c)
    table, js = _js_reference(b, c)
    assert result.test == "chi-square"
    assert result.p_value == pytest.approx(stats.chi2_contingency(table).pvalue, rel=1e-8)
    assert result.effect == pytest.approx(js, rel=1e-10)
    assert result.status == "same"


def test_compare_distributions_booleans_and_identical_inputs() -> None:
    b = np.array([True, False] * 50)
    result = compare_distributions(b, b.copy())
    assert result.test == "chi-square"
    assert result.effect == 0.0
    assert result.p_value == pytest.approx(1.0)
    assert result.status == "same"
    one = compare_distributions(["x"] * 30, ["x"] * 30)
    assert one.p_value == 1.0 and one.effect == 0.0 and one.status == "same"


def test_compare_distributions_insufficient_and_bad_input() -> None:
    assert compare_distributions([1, 2, 3], [1, 2, 3]).status == "insufficient"
    with pytest.raises(ConfigError, match="canary is empty"):
        compare_distributions([1.0, 2.0], [])
    with pytest.raises(ConfigError, match="NaN"):
        compare_distributions([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ConfigError, match="'min_effect'"):
        compare_distributions([1.0], [1.0], min_effect=1.5)
    with pytest.raises(ConfigError, match="one value per request"):
        compare_distributions([[0.2, 0.8], [0.5, 0.5]], [[0.1, 0.9], [0.4, 0.6]])
    with pytest.raises(ConfigError, match="one value per request"):
        compare_distributions([[0.2, 0.8], [0.5]], [[0.1, 0.9]])


# -- mixture SPRT -------------------------------------------------------------------
def _integrated_lr(theta: float, v: float, tau: float) -> float:
    """The mixture likelihood ratio by numerical integration over the N(0, tau^2) prior."""

    def integrand(t: float) -> float:
        ratio = math.exp((theta * t - t * t / 2.0) / v)  # N(theta; t, v) / N(theta; 0, v)
        return ratio * stats.norm.pdf(t, 0.0, tau)

    lim = 12 * tau + abs(theta)
    value, _ = integrate.quad(integrand, -lim, lim, points=[0.0, theta], limit=200)
    return value


@pytest.mark.parametrize(
    ("xb", "nb", "xc", "nc", "tau"),
    [
        (1000, 10_000, 1100, 10_000, 0.01),
        (500, 5000, 480, 5000, 0.02),
        (50, 2000, 65, 1800, 0.005),
        (300, 1000, 310, 1000, 0.05),
    ],
)
def test_msprt_rates_matches_the_integral(xb: int, nb: int, xc: int, nc: int, tau: float) -> None:
    result = msprt_rates(xb, nb, xc, nc, tau=tau)
    pb, pc = xb / nb, xc / nc
    v = pb * (1 - pb) / nb + pc * (1 - pc) / nc
    theta = pc - pb
    expected = math.sqrt(v / (v + tau**2)) * math.exp(theta**2 * tau**2 / (2 * v * (v + tau**2)))
    assert result.effect == pytest.approx(theta)
    assert result.variance == pytest.approx(v)
    assert result.likelihood_ratio == pytest.approx(expected, rel=1e-12)
    assert result.likelihood_ratio == pytest.approx(_integrated_lr(theta, v, tau), rel=1e-7)
    assert result.p_value == pytest.approx(min(1.0, 1.0 / expected))
    assert result.reject == (expected >= 20.0)
    assert result.decision == ("reject" if expected >= 20.0 else "continue")
    _roundtrip(result)


def test_msprt_confidence_sequence_ends_where_the_ratio_crosses() -> None:
    result = msprt_rates(1000, 10_000, 1100, 10_000, alpha=0.05)
    assert result.effect_ci is not None and result.variance is not None
    v, tau2 = result.variance, result.tau**2
    for end in result.effect_ci:
        shifted = (result.effect or 0.0) - end
        lr = math.sqrt(v / (v + tau2)) * math.exp(shifted**2 * tau2 / (2 * v * (v + tau2)))
        assert lr == pytest.approx(20.0, rel=1e-9)
    assert result.effect_ci[0] < 0 < result.effect_ci[1]  # not rejected: 0 inside


def test_msprt_rates_default_tau_and_detection() -> None:
    result = msprt_rates(1000, 10_000, 1300, 10_000)
    assert result.tau == rs.DEFAULT_TAU == 0.01
    assert result.reject and result.decision == "reject"
    assert result.p_value < 0.05
    assert result.effect_ci is not None and result.effect_ci[0] > 0
    assert "difference detected" in result.detail


def test_msprt_rates_pools_variance_when_a_rate_is_zero() -> None:
    result = msprt_rates(0, 1000, 6, 1000)
    pool = 6 / 2000
    assert result.variance == pytest.approx(pool * (1 - pool) * (2 / 1000))
    assert result.decision in ("reject", "continue")


@pytest.mark.parametrize("args", [(0, 1000, 0, 1000), (1000, 1000, 500, 500), (0, 0, 3, 10)])
def test_msprt_rates_inconclusive_without_variance(args: tuple[int, int, int, int]) -> None:
    result = msprt_rates(*args)
    assert result.decision == "inconclusive"
    assert not result.reject
    assert result.p_value == 1.0
    _roundtrip(result)


def test_msprt_rates_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="cannot exceed"):
        msprt_rates(11, 10, 0, 10)
    with pytest.raises(ConfigError, match="'tau' parameter"):
        msprt_rates(1, 10, 1, 10, tau=0.0)
    with pytest.raises(ConfigError, match="'alpha' parameter"):
        msprt_rates(1, 10, 1, 10, alpha=2.0)


def _simulate_rates(
    rng: np.random.Generator, p_base: float, p_canary: float, sequences: int, looks: int, step: int
) -> tuple[np.ndarray, ...]:
    xb = rng.binomial(step, p_base, (sequences, looks)).cumsum(axis=1)
    xc = rng.binomial(step, p_canary, (sequences, looks)).cumsum(axis=1)
    n = np.broadcast_to(step * np.arange(1, looks + 1), xb.shape)
    return xb, n, xc, n


def test_msprt_stays_valid_under_continuous_peeking() -> None:
    rng = np.random.default_rng(2017)
    alpha, tau = 0.05, 0.01
    sequences, looks = 2000, 50
    xb, nb, xc, nc = _simulate_rates(rng, 0.1, 0.1, sequences, looks, step=200)
    theta, v = rs._rates_theta_variance(xb, nb, xc, nc)
    per_look = np.minimum(1.0, np.exp(-rs._mixture_log_lr(theta, v, tau)))
    running = always_valid_p(per_look)
    msprt_rate = float(np.mean(running[:, -1] <= alpha))
    # The public function agrees with the vectorised kernel at sampled looks.
    for i, j in zip(rng.integers(0, sequences, 25), rng.integers(0, looks, 25), strict=True):
        one = msprt_rates(int(xb[i, j]), int(nb[i, j]), int(xc[i, j]), int(nc[i, j]), tau=tau)
        assert one.p_value == pytest.approx(per_look[i, j], rel=1e-12)
    # A fixed-horizon z-test checked at every look: the peeking problem.
    pool = (xb + xc) / (nb + nc)
    z = (xc / nc - xb / nb) / np.sqrt(pool * (1 - pool) * (1 / nb + 1 / nc))
    naive_rate = float(np.mean((np.abs(z) > stats.norm.ppf(1 - alpha / 2)).any(axis=1)))
    slack = 3 * math.sqrt(alpha * (1 - alpha) / sequences)
    assert 0 < msprt_rate <= alpha + slack
    assert naive_rate > 2.5 * alpha
    # Each single look of the naive test is still a valid 5 % test.
    assert float(np.mean(np.abs(z[:, -1]) > 1.96)) <= alpha + slack


def test_msprt_detects_a_real_difference() -> None:
    rng = np.random.default_rng(7)
    xb, nb, xc, nc = _simulate_rates(rng, 0.10, 0.12, 500, 50, step=400)
    theta, v = rs._rates_theta_variance(xb, nb, xc, nc)
    running = always_valid_p(np.minimum(1.0, np.exp(-rs._mixture_log_lr(theta, v, 0.01))))
    assert float(np.mean(running[:, -1] <= 0.05)) >= 0.9


def test_msprt_means_matches_formula_and_integral() -> None:
    rng = np.random.default_rng(12)
    b, c = rng.normal(100, 20, 400), rng.normal(104, 25, 350)
    result = msprt_means(b, c, tau=3.0)
    theta = c.mean() - b.mean()
    v = b.var(ddof=1) / b.size + c.var(ddof=1) / c.size
    expected = math.sqrt(v / (v + 9.0)) * math.exp(theta**2 * 9.0 / (2 * v * (v + 9.0)))
    assert result.effect == pytest.approx(theta)
    assert result.variance == pytest.approx(v)
    assert result.likelihood_ratio == pytest.approx(expected, rel=1e-12)
    assert result.likelihood_ratio == pytest.approx(_integrated_lr(theta, v, 3.0), rel=1e-7)
    assert result.canary["std"] == pytest.approx(c.std(ddof=1))
    default = msprt_means(b, c)
    assert default.tau == pytest.approx(0.1 * np.concatenate([b, c]).std())
    _roundtrip(result)


def test_msprt_means_valid_under_peeking_and_powerful() -> None:
    rng = np.random.default_rng(99)
    sequences, looks, step, tau, alpha = 2000, 40, 25, 2.0, 0.05

    def running_p(shift: float) -> np.ndarray:
        b = rng.normal(100, 20, (sequences, looks * step))
        c = rng.normal(100 + shift, 20, (sequences, looks * step))
        ends = step * np.arange(1, looks + 1)

        def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            s1 = x.cumsum(axis=1)[:, ends - 1]
            s2 = (x * x).cumsum(axis=1)[:, ends - 1]
            return s1 / ends, (s2 - s1 * s1 / ends) / (ends - 1)

        (mb, vb), (mc, vc) = moments(b), moments(c)
        lr = rs._mixture_log_lr(mc - mb, vb / ends + vc / ends, tau)
        # Spot check against the public function on one prefix.
        one = msprt_means(b[0, : ends[5]], c[0, : ends[5]], tau=tau)
        assert one.log_likelihood_ratio == pytest.approx(float(lr[0, 5]), rel=1e-9)
        return always_valid_p(np.minimum(1.0, np.exp(-lr)))

    null = running_p(0.0)
    assert float(np.mean(null[:, -1] <= alpha)) <= alpha + 3 * math.sqrt(0.05 * 0.95 / sequences)
    power = running_p(6.0)
    assert float(np.mean(power[:, -1] <= alpha)) >= 0.9


def test_msprt_means_inconclusive_and_bad_input() -> None:
    assert msprt_means([1.0], [2.0, 3.0]).decision == "inconclusive"
    flat = msprt_means(np.full(10, 5.0), np.full(10, 5.0))
    assert flat.decision == "inconclusive"
    _roundtrip(flat)
    with pytest.raises(ConfigError, match="baseline is empty"):
        msprt_means([], [1.0])


def test_always_valid_p_is_the_running_minimum() -> None:
    assert always_valid_p([0.5, 0.7, 0.2, 0.4]).tolist() == [0.5, 0.5, 0.2, 0.2]
    looks = [msprt_rates(100, 1000, 100 + k, 1000) for k in (0, 30, 10)]
    running = always_valid_p(looks)
    assert running.tolist() == pytest.approx(
        np.minimum.accumulate([r.p_value for r in looks]).tolist()
    )
    grid = always_valid_p(np.array([[0.9, 0.1, 0.5], [1.0, 1.0, 0.3]]))
    assert grid.tolist() == [[0.9, 0.1, 0.1], [1.0, 1.0, 0.3]]
    with pytest.raises(ConfigError, match="empty"):
        always_valid_p([])
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        always_valid_p([0.5, 1.5])
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        always_valid_p([float("nan")])


# -- McNemar and agreement ----------------------------------------------------------
@pytest.mark.parametrize(("b", "c"), [(0, 1), (3, 9), (10, 14), (12, 12), (0, 24)])
def test_mcnemar_exact_below_25_discordant(b: int, c: int) -> None:
    result = mcnemar_counts(b, c)
    n = b + c
    assert result.test == "McNemar exact binomial"
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    assert result.p_value == pytest.approx(min(1.0, 2 * tail), rel=1e-12)
    assert result.p_value == pytest.approx(stats.binomtest(b, n, 0.5).pvalue, rel=1e-12)
    assert result.statistic == min(b, c)


@pytest.mark.parametrize(("b", "c"), [(10, 15), (20, 40), (100, 130), (30, 30), (31, 30)])
def test_mcnemar_chi_square_from_25_discordant(b: int, c: int) -> None:
    result = mcnemar_counts(b, c)
    assert result.test == "McNemar chi-square (continuity corrected)"
    statistic = max(abs(b - c) - 1, 0) ** 2 / (b + c)
    assert result.statistic == pytest.approx(statistic)
    assert result.p_value == pytest.approx(stats.chi2.sf(statistic, 1), rel=1e-12)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(statistic / 2)), rel=1e-10)
    assert result.significant == (result.p_value < 0.05)
    _roundtrip(result)


def test_mcnemar_from_paired_booleans() -> None:
    rng = np.random.default_rng(21)
    base = rng.random(500) < 0.8
    cand = np.where(rng.random(500) < 0.15, ~base, base)
    cand[:40] = True  # the candidate fixes some mistakes
    result = mcnemar(base, cand.astype(int))
    b = sum(1 for x, y in zip(base, cand, strict=True) if x and not y)
    c = sum(1 for x, y in zip(base, cand, strict=True) if y and not x)
    assert (result.data["b"], result.data["c"]) == (b, c)
    assert result.p_value == pytest.approx(mcnemar_counts(b, c).p_value)
    assert result.data["n"] == 500
    assert result.data["candidate_accuracy"] == pytest.approx(cand.mean())
    assert f"{c} times" in result.detail
    _roundtrip(result)


def test_mcnemar_no_discordant_pairs_and_bad_input() -> None:
    result = mcnemar([True, False], [True, False])
    assert result.p_value == 1.0 and not result.significant
    with pytest.raises(ConfigError, match="one pair per request"):
        mcnemar([True], [True, False])
    with pytest.raises(ConfigError, match="booleans"):
        mcnemar([0, 2], [1, 1])
    with pytest.raises(ConfigError, match="empty"):
        mcnemar([], [])
    with pytest.raises(ConfigError, match="'b' parameter"):
        mcnemar_counts(-1, 3)


def test_agreement_categorical_with_wilson_interval() -> None:
    a = ["spam", "ham", "spam", "ham", "spam"] * 20
    b = ["spam", "ham", "ham", "ham", "spam"] * 20
    result = agreement(a, b)
    assert isinstance(result, AgreementResult)
    assert (result.agreed, result.n, result.rate) == (80, 100, 0.8)
    ci = stats.binomtest(80, 100).proportion_ci(0.95, method="wilson")
    assert result.ci == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert "80/100" in result.detail
    _roundtrip(result)


def test_agreement_numeric_tolerance_and_rows() -> None:
    a = np.array([0.10, 0.50, 0.90, 0.30])
    b = np.array([0.11, 0.50, 0.70, 0.30])
    assert agreement(a, b).agreed == 2
    assert agreement(a, b, atol=0.02).agreed == 3
    rows_a = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
    rows_b = np.array([[0.21, 0.79], [0.6, 0.4], [0.9, 0.1]])
    result = agreement(rows_a, rows_b, atol=0.05, confidence=0.9)
    assert result.agreed == 2 and result.n == 3
    ci = stats.binomtest(2, 3).proportion_ci(0.9, method="wilson")
    assert result.ci == pytest.approx((ci.low, ci.high))
    mixed = agreement(np.array([1, "x", None], dtype=object), np.array([1, "x", 2], dtype=object))
    assert mixed.agreed == 2


def test_agreement_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="one pair per request"):
        agreement([1, 2], [1])
    with pytest.raises(ConfigError, match="atol needs numeric"):
        agreement(["a"], ["a"], atol=0.1)
    with pytest.raises(ConfigError, match="empty"):
        agreement([], [])
    with pytest.raises(ConfigError, match="one-dimensional"):
        agreement([[1, 2]], [[1, 2]])


# -- lift and sample ratio mismatch -------------------------------------------------
def test_rate_lift_matches_explicit_formulas() -> None:
    xc, nc, xt, nt = 400, 10_000, 470, 10_200
    result = rate_lift(xc, nc, xt, nt)
    assert isinstance(result, LiftResult)
    pc, pt = xc / nc, xt / nt
    se = math.sqrt((1 - pt) / xt + (1 - pc) / xc)
    ratio = pt / pc
    assert result.lift == pytest.approx(ratio - 1)
    assert result.lift_ci == pytest.approx(
        (ratio * math.exp(-Z95 * se) - 1, ratio * math.exp(Z95 * se) - 1), rel=1e-10
    )
    assert result.difference == pytest.approx(pt - pc)
    diff = compare_rates(xc, nc, xt, nt)
    assert result.difference_ci == pytest.approx(diff.effect_ci)
    table = np.array([[xt, nt - xt], [xc, nc - xc]])
    assert result.p_value == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)
    assert "lift +15" in result.detail
    _roundtrip(result)


def test_rate_lift_intervals_cover_at_their_level() -> None:
    rng = np.random.default_rng(31)
    pc, pt, n, reps = 0.08, 0.09, 4000, 3000
    xc, xt = rng.binomial(n, pc, reps), rng.binomial(n, pt, reps)
    lift_hits = diff_hits = 0
    for a, b in zip(xc.tolist(), xt.tolist(), strict=True):
        r = rate_lift(a, n, b, n)
        assert r.lift_ci is not None
        lift_hits += r.lift_ci[0] <= pt / pc - 1 <= r.lift_ci[1]
        diff_hits += r.difference_ci[0] <= pt - pc <= r.difference_ci[1]
    slack = 3 * math.sqrt(0.05 * 0.95 / reps)
    assert abs(lift_hits / reps - 0.95) <= slack
    assert abs(diff_hits / reps - 0.95) <= slack


def test_rate_lift_without_events() -> None:
    none = rate_lift(0, 100, 5, 100)
    assert none.lift is None and none.lift_ci is None
    assert "lift undefined" in none.detail
    drop = rate_lift(5, 100, 0, 100)
    assert drop.lift == -1.0 and drop.lift_ci is None
    flat = rate_lift(0, 100, 0, 100)
    assert flat.p_value == 1.0 and flat.statistic == 0.0
    _roundtrip(none)
    with pytest.raises(ConfigError, match="'control_n' parameter"):
        rate_lift(0, 0, 1, 10)
    with pytest.raises(ConfigError, match="'confidence' parameter"):
        rate_lift(1, 10, 1, 10, confidence=1.0)


def test_sample_ratio_mismatch_matches_scipy() -> None:
    observed = [50_912, 49_088]
    result = sample_ratio_mismatch(observed, [0.5, 0.5])
    ref = stats.chisquare(observed, [50_000, 50_000])
    assert isinstance(result, TestResult)
    assert result.statistic == pytest.approx(ref.statistic)
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert result.mismatch and result.significant
    assert result.alpha == 0.001
    assert "do not trust" in result.detail
    d = _roundtrip(result)
    assert d["data"]["expected"] == [50_000.0, 50_000.0]
    fine = sample_ratio_mismatch([5050, 4950], [1, 1])
    assert not fine.mismatch
    assert fine.p_value == pytest.approx(stats.chisquare([5050, 4950]).pvalue)


def test_sample_ratio_mismatch_uneven_shares() -> None:
    observed = np.array([8_100, 1_000, 900])
    result = sample_ratio_mismatch(observed, [80, 10, 10])
    ref = stats.chisquare(observed, np.array([0.8, 0.1, 0.1]) * observed.sum())
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert not result.mismatch
    assert sample_ratio_mismatch(observed, [80, 10, 10], alpha=0.05).mismatch == (ref.pvalue < 0.05)


@pytest.mark.parametrize(
    ("observed", "shares", "match"),
    [
        ([10, -1], [1, 1], "non-negative whole"),
        ([10.5, 3], [1, 1], "non-negative whole"),
        ([10], [1], "at least 2 groups"),
        ([10, 10], [1, 1, 1], "one expected share per group"),
        ([10, 10], [1, 0], "positive"),
        ([0, 0], [1, 1], "no units"),
        (["a", "b"], [1, 1], "finite counts"),
    ],
)
def test_sample_ratio_mismatch_rejects_bad_input(observed: Any, shares: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        sample_ratio_mismatch(observed, shares)


# -- verdict ------------------------------------------------------------------------
def _j(name: str, status: str, critical: bool = False) -> MetricJudgement:
    return MetricJudgement(name, status, critical, detail=f"{name} detail")


def test_verdict_pass_when_all_same_or_better() -> None:
    result = verdict([_j("error_rate", "same", True), _j("latency", "better")])
    assert isinstance(result, RolloutVerdict)
    assert result.decision == "pass"
    assert result.score == 100.0
    assert any("all 2 metrics" in r for r in result.reasons)
    d = _roundtrip(result)
    assert d["judgements"][0]["name"] == "error_rate"


def test_verdict_fails_on_a_critical_metric() -> None:
    result = verdict([_j("error_rate", "worse", True), _j("a", "same"), _j("b", "same")])
    assert result.decision == "fail"
    assert result.score == pytest.approx(200 / 3)
    assert result.reasons[0] == "critical metric 'error_rate' is worse: error_rate detail"
    assert verdict([_j("predictions", "different", True)]).decision == "fail"


def test_verdict_half_of_non_critical_metrics() -> None:
    two_of_four = [_j("a", "worse"), _j("b", "different"), _j("c", "same"), _j("d", "same")]
    result = verdict(two_of_four)
    assert result.decision == "fail"
    assert any("2 of 4 non-critical" in r for r in result.reasons)
    one_of_three = [_j("a", "worse"), _j("b", "same"), _j("c", "better")]
    marginal = verdict(one_of_three)
    assert marginal.decision == "marginal"
    assert any("'a' is worse" in r for r in marginal.reasons)
    # Critical metrics do not count towards the half.
    assert verdict([*one_of_three, _j("crit", "same", True)]).decision == "marginal"


def test_verdict_marginal_on_insufficient_data_or_flagged_status() -> None:
    result = verdict([_j("a", "same"), _j("b", "insufficient", True)])
    assert result.decision == "marginal"
    assert result.score == 100.0  # insufficient metrics are left out of the score
    assert any("'b' has insufficient data" in r for r in result.reasons)
    flagged = verdict([_j("a", "same"), _j("b", "same_underpowered")])
    assert flagged.decision == "marginal"
    assert flagged.score == 100.0
    assert verdict([_j("b", "insufficient")]).score is None


def test_verdict_rejects_unknown_statuses_and_empty_input() -> None:
    with pytest.raises(ConfigError, match="status 'meh'"):
        verdict([_j("a", "meh")])
    with pytest.raises(ConfigError, match="same_underpowered"):
        verdict([_j("a", "same_underpowered")], marginal_if_any=())
    with pytest.raises(ConfigError, match="no judgements"):
        verdict([])
    with pytest.raises(ConfigError, match="MetricJudgement"):
        verdict([{"name": "a", "status": "same"}])  # type: ignore[list-item]


def test_verdict_end_to_end_bad_canary() -> None:
    rng = np.random.default_rng(40)
    judgements = [
        compare_rates(20, 5000, 90, 5000, critical=True),
        compare_latency(rng.normal(40, 4, 500), rng.normal(41, 4, 500), critical=True),
        compare_rates(30, 5000, 31, 5000, name="fallback_rate"),
        compare_distributions(rng.choice(["a", "b"], 500), rng.choice(["a", "b"], 500)),
    ]
    result = verdict(judgements)
    assert [j.status for j in judgements] == ["worse", "same", "same", "same"]
    assert result.decision == "fail"
    assert result.score == 75.0
    assert "error_rate 1.80% (90/5000)" in result.reasons[0]
    d = _roundtrip(result)
    assert d["decision"] == "fail" and len(d["judgements"]) == 4


def test_results_are_frozen() -> None:
    result = compare_rates(1, 100, 2, 100)
    with pytest.raises(AttributeError):
        result.status = "worse"  # type: ignore[misc]
    seq = msprt_rates(1, 100, 2, 100)
    assert isinstance(seq, SequentialResult)
    with pytest.raises(AttributeError):
        seq.reject = True  # type: ignore[misc]
