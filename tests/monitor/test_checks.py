"""Window checks from profiles and counts: statistics against SciPy, flags on seeded windows."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from hindsight.data.profile import ProfileOptions, profile_table
from hindsight.drift import drift_report
from hindsight.errors import ConfigError, DataError
from hindsight.monitor.alerting import Finding
from hindsight.monitor.checks import (
    Check,
    ConfidenceCheck,
    DecisionCheck,
    DriftCheck,
    HealthCheck,
    RateCheck,
    WindowData,
    check_from_dict,
)
from hindsight.monitor.online_fdr import LordPlusPlus

OPTS = ProfileOptions(threads=1)
Counts = Mapping[str, Mapping[str, Mapping[str, int]]]


def _window(
    columns: Mapping[str, Any], counts: Counts | None = None, description: str = ""
) -> WindowData:
    return WindowData(profile_table(pa.table(dict(columns)), OPTS), counts or {}, description)


def _counts_only(counts: Counts) -> WindowData:
    return _window({"x": np.zeros(1)}, counts)


def _pooled_z_p(x_ref: int, n_ref: int, x_new: int, n_new: int) -> tuple[float, float]:
    """The pooled two-proportion z-test written out with scipy.stats.norm."""
    pool = (x_ref + x_new) / (n_ref + n_new)
    se = math.sqrt(pool * (1 - pool) * (1 / n_ref + 1 / n_new))
    z = (x_new / n_new - x_ref / n_ref) / se
    return z, float(2 * stats.norm.sf(abs(z)))


def _two_proportion_p(x_ref: int, n_ref: int, x_new: int, n_new: int) -> float:
    """Fisher's exact test for a cell below 5, else the pooled z-test."""
    if min(x_ref, n_ref - x_ref, x_new, n_new - x_new) < 5:
        res = stats.fisher_exact([[x_new, n_new - x_new], [x_ref, n_ref - x_ref]])
        return float(res.pvalue)
    return _pooled_z_p(x_ref, n_ref, x_new, n_new)[1]


def _one(findings: list[Finding]) -> Finding:
    assert len(findings) == 1
    return findings[0]


def _exact_share(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """A shuffled boolean array with exactly round(n * share) true values."""
    out = np.zeros(n, dtype=bool)
    out[: round(n * share)] = True
    rng.shuffle(out)
    return out


# --------------------------------------------------------------------------- confidence


def _conf(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    # Two decimals: at most 101 distinct values, so the quantile summary is exact.
    return np.round(np.clip(rng.beta(8.0, 2.0, n) - shift, 0.0, 1.0), 2)


def test_confidence_welch_matches_scipy_on_raw_values() -> None:
    rng = np.random.default_rng(1)
    ref, cur = _conf(rng, 3000), _conf(rng, 1500, shift=0.1)
    f = _one(
        ConfidenceCheck().judge(
            10.0, _window({"confidence": cur}), _window({"confidence": ref}, description="ref")
        )
    )
    want = stats.ttest_ind(cur, ref, equal_var=False)
    ev = f.evidence
    assert ev["welch_t"] == pytest.approx(float(want.statistic), rel=1e-9)
    assert ev["p_value"] == pytest.approx(float(want.pvalue), rel=1e-9)
    assert ev["mean_change"] == pytest.approx(cur.mean() - ref.mean(), rel=1e-9)
    assert ev["current"]["n"] == 1500
    assert ev["reference"]["n"] == 3000
    assert ev["current"]["mean"] == pytest.approx(cur.mean(), rel=1e-12)
    assert ev["reference"]["std"] == pytest.approx(ref.std(ddof=1), rel=1e-9)
    assert f.value == pytest.approx(cur.mean(), rel=1e-12)
    assert f.key == "confidence"
    assert f.monitor == "confidence"
    assert f.window_start == 10.0
    assert f.flagged is True
    assert "shifted" in f.detail


def test_confidence_welch_on_continuous_values() -> None:
    rng = np.random.default_rng(2)
    ref, cur = rng.beta(8.0, 2.0, 2500), rng.beta(7.5, 2.0, 700)
    f = _one(
        ConfidenceCheck().judge(0.0, _window({"confidence": cur}), _window({"confidence": ref}))
    )
    want = stats.ttest_ind(cur, ref, equal_var=False)
    assert f.evidence["welch_t"] == pytest.approx(float(want.statistic), rel=1e-9)
    assert f.evidence["p_value"] == pytest.approx(float(want.pvalue), rel=1e-9)


def test_confidence_low_share_counts_and_p_value_match_scipy() -> None:
    rng = np.random.default_rng(3)
    ref, cur = _conf(rng, 4000), _conf(rng, 2000, shift=0.03)
    low = 0.6
    # Values exactly at the threshold exist: the share is strictly below it.
    assert (ref == low).any() and (cur == low).any()
    f = _one(
        ConfidenceCheck(low=low).judge(
            0.0, _window({"confidence": cur}), _window({"confidence": ref})
        )
    )
    share = f.evidence["low_share"]
    x_r, x_c = int((ref < low).sum()), int((cur < low).sum())
    assert share["baseline"]["events"] == x_r
    assert share["canary"]["events"] == x_c
    assert share["baseline"]["n"] == 4000
    assert share["canary"]["n"] == 2000
    assert min(x_r, 4000 - x_r, x_c, 2000 - x_c) >= 5  # the z-test's branch
    z, p = _pooled_z_p(x_r, 4000, x_c, 2000)
    assert share["test"] == "two-proportion z-test"
    assert share["statistic"] == pytest.approx(z, rel=1e-9)
    assert share["p_value"] == pytest.approx(p, rel=1e-9)
    assert share["effect"] == pytest.approx(x_c / 2000 - x_r / 4000, rel=1e-12)


@pytest.mark.parametrize("low", [0.5, 0.75, 0.9])
def test_confidence_low_share_counts_at_other_thresholds(low: float) -> None:
    rng = np.random.default_rng(4)
    ref, cur = _conf(rng, 3000), _conf(rng, 900)
    f = _one(
        ConfidenceCheck(low=low).judge(
            0.0, _window({"confidence": cur}), _window({"confidence": ref})
        )
    )
    assert f.evidence["low_share"]["baseline"]["events"] == int((ref < low).sum())
    assert f.evidence["low_share"]["canary"]["events"] == int((cur < low).sum())


def test_confidence_same_distribution_not_flagged() -> None:
    rng = np.random.default_rng(5)
    ref, cur = _conf(rng, 3000), _conf(rng, 1500)
    f = _one(
        ConfidenceCheck().judge(0.0, _window({"confidence": cur}), _window({"confidence": ref}))
    )
    assert f.flagged is False
    assert f.evidence["p_value"] > 0.01
    assert f.evidence["low_share"]["status"] != "worse"
    assert "shifted" not in f.detail


def test_confidence_mean_shift_alone_is_flagged() -> None:
    # Confidence moved up by 0.1: no more low values, but the mean moved.
    rng = np.random.default_rng(6)
    ref, cur = _conf(rng, 3000), _conf(rng, 1500, shift=-0.1)
    f = _one(
        ConfidenceCheck().judge(0.0, _window({"confidence": cur}), _window({"confidence": ref}))
    )
    assert f.evidence["low_share"]["status"] != "worse"
    assert f.evidence["mean_change"] == pytest.approx(0.1, abs=0.02)
    assert f.flagged is True


def test_confidence_significant_but_tiny_shift_not_flagged() -> None:
    rng = np.random.default_rng(7)
    ref = np.round(rng.normal(0.8, 0.01, 20_000), 3)
    cur = np.round(rng.normal(0.805, 0.01, 20_000), 3)
    f = _one(
        ConfidenceCheck().judge(0.0, _window({"confidence": cur}), _window({"confidence": ref}))
    )
    assert f.evidence["p_value"] < 1e-10
    assert abs(f.evidence["mean_change"]) < 0.02
    assert f.flagged is False


def test_confidence_too_few_samples_is_an_unflagged_finding() -> None:
    rng = np.random.default_rng(8)
    ref, cur = _conf(rng, 3000), _conf(rng, 12, shift=0.3)
    f = _one(
        ConfidenceCheck().judge(0.0, _window({"confidence": cur}), _window({"confidence": ref}))
    )
    assert f.flagged is False
    assert "12 confidence values" in f.detail
    assert "fewer than the 30 needed" in f.detail
    assert f.value == pytest.approx(cur.mean(), rel=1e-12)
    assert "p_value" not in f.evidence
    f2 = _one(
        ConfidenceCheck(min_samples=10).judge(
            0.0, _window({"confidence": cur}), _window({"confidence": ref})
        )
    )
    assert "p_value" in f2.evidence


def test_confidence_missing_column_and_non_numeric_column() -> None:
    rng = np.random.default_rng(9)
    ref = _window({"confidence": _conf(rng, 100)})
    assert ConfidenceCheck().judge(0.0, _window({"other": _conf(rng, 100)}), ref) == []
    with pytest.raises(ConfigError, match="not numeric"):
        ConfidenceCheck().judge(0.0, _window({"confidence": ["a", "b"]}), ref)


@pytest.mark.parametrize(
    "kwargs", [{"low": 0.0}, {"low": 1.0}, {"alpha": 1.5}, {"min_effect": -1.0}, {"min_samples": 1}]
)
def test_confidence_bad_parameters(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ConfidenceCheck(**kwargs)


# --------------------------------------------------------------------------- health


def test_health_nan_burst_flagged() -> None:
    rng = np.random.default_rng(10)
    ref = rng.normal(size=2000)
    cur = rng.normal(size=1000)
    cur[rng.choice(1000, 50, replace=False)] = np.nan
    f = _one(HealthCheck().judge(0.0, _window({"prediction": cur}), _window({"prediction": ref})))
    assert f.flagged is True
    assert f.value == pytest.approx(0.05)
    assert f.evidence["missing"] == 50
    assert f.evidence["rows"] == 1000
    assert "missing or NaN" in f.detail


def test_health_nulls_count_as_missing() -> None:
    rng = np.random.default_rng(11)
    vals: list[float | None] = [float(v) for v in rng.normal(size=500)]
    for i in range(0, 500, 25):
        vals[i] = None
    cur = pa.array(vals, type=pa.float64())
    ref = _window({"prediction": rng.normal(size=500)})
    f = _one(HealthCheck().judge(0.0, _window({"prediction": cur}), ref))
    assert f.evidence["missing"] == 20
    assert f.flagged is True


def test_health_constant_categorical_flagged() -> None:
    rng = np.random.default_rng(12)
    ref = rng.choice(["approve", "review", "block"], 2000, p=[0.7, 0.2, 0.1])
    cur = np.array(["approve"] * 990 + ["block"] * 10)
    rng.shuffle(cur)
    f = _one(HealthCheck().judge(0.0, _window({"prediction": cur}), _window({"prediction": ref})))
    assert f.flagged is True
    assert f.evidence["top_value"] == "approve"
    assert f.evidence["top_share"] == pytest.approx(0.99)
    assert "constant output" in f.detail


def test_health_near_constant_numeric_flagged() -> None:
    rng = np.random.default_rng(13)
    ref = rng.normal(0.5, 0.2, 2000)
    cur = rng.normal(0.5, 0.002, 500)
    f = _one(HealthCheck().judge(0.0, _window({"prediction": cur}), _window({"prediction": ref})))
    assert f.flagged is True
    assert f.evidence["std_ratio"] == pytest.approx(cur.std(ddof=1) / ref.std(ddof=1), rel=1e-9)
    assert f.evidence["std_ratio"] < 0.05
    assert "near-constant" in f.detail


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
def test_health_healthy_window_not_flagged(kind: str) -> None:
    rng = np.random.default_rng(14)
    if kind == "numeric":
        ref: np.ndarray = rng.normal(size=2000)
        cur: np.ndarray = rng.normal(size=800)
    else:
        ref = rng.choice(["approve", "review", "block"], 2000, p=[0.7, 0.2, 0.1])
        cur = rng.choice(["approve", "review", "block"], 800, p=[0.7, 0.2, 0.1])
    f = _one(HealthCheck().judge(0.0, _window({"prediction": cur}), _window({"prediction": ref})))
    assert f.flagged is False
    assert f.value == 0.0
    assert f.detail == "800 predictions, 0.0% missing"


def test_health_small_window_not_flagged_and_missing_column_skipped() -> None:
    rng = np.random.default_rng(15)
    ref = _window({"prediction": rng.normal(size=200)})
    cur = np.array([np.nan] * 5 + [1.0] * 5)  # half NaN, but only 10 rows
    assert _one(HealthCheck().judge(0.0, _window({"prediction": cur}), ref)).flagged is False
    assert HealthCheck().judge(0.0, _window({"score": rng.normal(size=50)}), ref) == []


# --------------------------------------------------------------------------- decisions


def _decisions(block: dict[str, int], n: int = 2000) -> Counts:
    return {
        "account": {seg: {"approve": n - b, "block": b} for seg, b in block.items()},
        "region": {"eu": {"approve": n}},
    }


def test_decision_block_rate_jump_flagged_and_bh_matches_scipy() -> None:
    ref = _counts_only(_decisions({"verified": 10, "new": 40, "trial": 2}))  # 0.5 %, 2 %
    cur = _counts_only(_decisions({"verified": 160, "new": 41, "trial": 3}))  # 8 %, 2 %
    findings = DecisionCheck(segment="account").judge(5.0, cur, ref)
    by_key = {f.key: f for f in findings}
    assert sorted(by_key) == [
        f"account={seg} / {act}"
        for seg in ("new", "trial", "verified")
        for act in ("approve", "block")
    ]
    # Each comparison's p-value is the two-proportion test SciPy gives.
    for f in findings:
        ev = f.evidence
        assert ev["segment"] in ("verified", "new", "trial")
        want = _two_proportion_p(ev["reference_events"], ev["reference_n"], ev["events"], ev["n"])
        assert ev["p_value"] == pytest.approx(want, rel=1e-9)
    # Benjamini-Hochberg across the window's comparisons.
    p = np.array([f.evidence["p_value"] for f in findings])
    q = stats.false_discovery_control(p, method="bh")
    assert [f.evidence["p_adjusted"] for f in findings] == pytest.approx(q.tolist(), rel=1e-12)
    flagged = {f.key for f in findings if f.flagged}
    assert flagged == {"account=verified / approve", "account=verified / block"}
    block = by_key["account=verified / block"]
    assert block.value == pytest.approx(0.08)
    assert block.evidence["events"] == 160
    assert block.evidence["reference_events"] == 10
    assert "0.50% -> 8.00%" in block.detail
    assert "shifted" in block.detail
    assert block.window_start == 5.0


def test_decision_unchanged_rates_not_flagged() -> None:
    ref = _counts_only(_decisions({"verified": 10, "new": 40}))
    cur = _counts_only(_decisions({"verified": 11, "new": 38}))
    findings = DecisionCheck(segment="account").judge(0.0, cur, ref)
    assert len(findings) == 4
    assert not any(f.flagged for f in findings)


def test_decision_actions_limit_and_missing_reference_segment() -> None:
    ref = _counts_only(_decisions({"verified": 10}))
    cur = _counts_only(_decisions({"verified": 160, "brand_new": 5}))
    findings = DecisionCheck(segment="account", actions=("block",)).judge(0.0, cur, ref)
    assert [f.key for f in findings] == ["account=brand_new / block", "account=verified / block"]
    fresh = findings[0]
    assert fresh.flagged is False
    assert fresh.evidence["p_value"] is None
    assert fresh.evidence["p_adjusted"] is None
    assert "no reference rows" in fresh.detail
    # The one testable comparison is its own BH adjustment.
    assert findings[1].evidence["p_adjusted"] == pytest.approx(findings[1].evidence["p_value"])
    assert findings[1].flagged is True


def test_decision_missing_segment_column_raises() -> None:
    ref = _counts_only(_decisions({"verified": 10}))
    cur = _counts_only(_decisions({"verified": 10}))
    with pytest.raises(ConfigError, match="'channel'"):
        DecisionCheck(segment="channel").judge(0.0, cur, ref)
    with pytest.raises(ConfigError, match="segment="):
        DecisionCheck(segment="")


def test_decisions_of_all_traffic_come_from_the_profile() -> None:
    def window(block: int, n: int) -> WindowData:
        acts = np.array(["block"] * block + ["approve"] * (n - block))
        return WindowData(profile_table(pa.table({"prediction": acts}), OPTS), {})

    ref, cur = window(10, 2000), window(160, 2000)  # 0.5 % -> 8 %
    found = {f.key: f for f in DecisionCheck().judge(0.0, cur, ref)}
    assert set(found) == {"all / block", "all / approve"}
    assert found["all / block"].flagged and found["all / block"].value == pytest.approx(0.08)
    same = {f.key: f.flagged for f in DecisionCheck().judge(0.0, window(11, 2000), ref)}
    assert same == {"all / block": False, "all / approve": False}
    numeric = WindowData(profile_table(pa.table({"prediction": np.arange(50.0)}), OPTS), {})
    with pytest.raises(ConfigError, match="numbers, not actions"):
        DecisionCheck().judge(0.0, numeric, numeric)


# --------------------------------------------------------------------------- rates


@pytest.mark.parametrize("dtype", ["bool", "int64", "float64"])
def test_rate_rise_flagged_for_boolean_and_zero_one(dtype: str) -> None:
    rng = np.random.default_rng(16)
    ref = _exact_share(rng, 5000, 0.01).astype(dtype)
    cur = _exact_share(rng, 2000, 0.10).astype(dtype)
    f = _one(RateCheck().judge(0.0, _window({"fell_back": cur}), _window({"fell_back": ref})))
    assert f.flagged is True
    assert f.value == pytest.approx(0.10)
    assert f.key == "fell_back"
    assert f.evidence["status"] == "worse"
    assert f.evidence["baseline"]["events"] == 50
    assert f.evidence["canary"]["events"] == 200
    z, p = _pooled_z_p(50, 5000, 200, 2000)
    assert f.evidence["statistic"] == pytest.approx(z, rel=1e-9)
    assert f.evidence["p_value"] == pytest.approx(p, rel=1e-9)


@pytest.mark.parametrize("dtype", ["bool", "int64"])
def test_rate_unchanged_not_flagged(dtype: str) -> None:
    rng = np.random.default_rng(17)
    ref = _exact_share(rng, 5000, 0.01).astype(dtype)
    cur = _exact_share(rng, 2000, 0.012).astype(dtype)
    f = _one(RateCheck().judge(0.0, _window({"fell_back": cur}), _window({"fell_back": ref})))
    assert f.flagged is False
    assert f.value == pytest.approx(0.012)


def test_rate_zero_one_counts_exact_when_the_mean_rounds_down() -> None:
    # For these k, (k / 3000) * 3000 is just below k in floating point.
    for k in (27, 49, 54, 61, 98):
        ref = np.zeros(3000, dtype=np.int64)
        ref[:k] = 1
        cur = np.zeros(1000, dtype=np.int64)
        f = _one(RateCheck().judge(0.0, _window({"fell_back": cur}), _window({"fell_back": ref})))
        assert f.evidence["baseline"]["events"] == k


def test_rate_lower_is_worse_and_missing_column() -> None:
    rng = np.random.default_rng(18)
    ref = _window({"served": _exact_share(rng, 5000, 0.9)})
    cur = _window({"served": _exact_share(rng, 2000, 0.8)})
    assert _one(RateCheck(column="served").judge(0.0, cur, ref)).flagged is False
    lower = RateCheck(column="served", higher_is_worse=False)
    assert _one(lower.judge(0.0, cur, ref)).flagged is True
    assert RateCheck().judge(0.0, cur, ref) == []


# --------------------------------------------------------------------------- drift


def test_drift_none_flags_a_shifted_column_like_drift_report() -> None:
    rng = np.random.default_rng(19)
    ref = _window(
        {"amount": rng.normal(0, 1, 3000), "age": rng.normal(40, 10, 3000)}, description="last week"
    )
    cur = _window({"amount": rng.normal(0.5, 1, 800), "age": rng.normal(40, 10, 800)})
    findings = DriftCheck(repeated="none").judge(0.0, cur, ref)
    report = drift_report(ref.profile, cur.profile)
    assert {f.key for f in findings} == {"amount", "age"}
    for f in findings:
        assert f.flagged == report[f.key].drifted
        assert f.evidence["window_level"] == 0.05
        assert f.value == pytest.approx(report[f.key].effect_size)
    by_key = {f.key: f for f in findings}
    assert by_key["amount"].flagged is True
    assert by_key["age"].flagged is False
    assert "drifted" in by_key["amount"].detail
    assert "against last week" in by_key["amount"].detail


def test_drift_columns_option_limits_the_findings() -> None:
    rng = np.random.default_rng(20)
    ref = _window({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    cur = _window({"a": rng.normal(size=500), "b": rng.normal(1.0, 1, 500)})
    findings = DriftCheck(columns=("a",), repeated="none").judge(0.0, cur, ref)
    assert [f.key for f in findings] == ["a"]


def test_drift_lord_keeps_null_windows_quiet() -> None:
    rng = np.random.default_rng(0)
    ref = _window({"a": rng.normal(size=2000)})
    memory: dict[str, Any] = {}
    lord_check, none_check = DriftCheck(repeated="lord"), DriftCheck(repeated="none")
    lord_alarms = none_alarms = 0
    levels = []
    n_windows = 200
    for i in range(n_windows):
        cur = _window({"a": rng.normal(size=200)})
        expected_level = (
            LordPlusPlus.from_dict(memory["lord"]) if "lord" in memory else LordPlusPlus(0.05)
        ).level()
        lord_found = lord_check.judge(float(i), cur, ref, memory)
        levels.append(lord_found[0].evidence["window_level"])
        assert levels[-1] == pytest.approx(expected_level, rel=1e-12)
        lord_alarms += any(f.flagged for f in lord_found)
        none_alarms += any(f.flagged for f in none_check.judge(float(i), cur, ref))
        assert memory["lord"]["t"] == i + 1
    assert lord_alarms <= 1
    assert none_alarms >= 5
    assert set(memory) == {"lord"}
    assert memory["lord"]["t"] == n_windows
    assert len(memory["lord"]["discoveries"]) == lord_alarms
    # LORD++'s levels sit well below alpha.
    assert max(levels) < 0.05 / 10


def test_drift_lord_counts_windows_with_no_candidate_column() -> None:
    # Large windows: the drift engine's effect thresholds apply and a null window has no
    # column big enough to count, so the window's test is p = 1; it still counts.
    rng = np.random.default_rng(22)
    ref = _window({"a": rng.normal(size=12_000)})
    memory: dict[str, Any] = {}
    for i in range(2):
        cur = _window({"a": rng.normal(size=12_000)})
        col = drift_report(ref.profile, cur.profile)["a"]
        assert col.effect_threshold is not None
        assert col.effect_size < col.effect_threshold
        findings = DriftCheck().judge(float(i), cur, ref, memory)
        assert not findings[0].flagged
    assert memory["lord"]["t"] == 2
    assert memory["lord"]["discoveries"] == []


def test_drift_lord_without_memory_starts_fresh_each_time() -> None:
    rng = np.random.default_rng(21)
    ref = _window({"a": rng.normal(size=1000)})
    cur = _window({"a": rng.normal(3.0, 1, 300)})
    first = DriftCheck().judge(0.0, cur, ref)
    again = DriftCheck().judge(1.0, cur, ref)
    level = LordPlusPlus(0.05).level()
    assert first[0].evidence["window_level"] == pytest.approx(level)
    assert again[0].evidence["window_level"] == pytest.approx(level)
    assert first[0].flagged is True  # a huge shift passes even the first LORD++ level


@pytest.mark.parametrize("kwargs", [{"alpha": 0.0}, {"repeated": "bonferroni"}])
def test_drift_bad_parameters(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        DriftCheck(**kwargs)


# --------------------------------------------------------------------------- from dict


ALL_CHECKS: list[Check] = [
    DriftCheck(),
    DriftCheck(columns=("a", "b"), alpha=0.01, repeated="none"),
    ConfidenceCheck(),
    ConfidenceCheck(column="score", low=0.5, alpha=0.05, min_effect=0.03, min_samples=10),
    HealthCheck(),
    HealthCheck(column="label", nan_share=0.1, top_share=0.9, min_std_ratio=0.2, min_samples=5),
    DecisionCheck(segment="account"),
    DecisionCheck(segment="region", actions=("block", "review"), alpha=0.01, min_effect=0.02),
    RateCheck(),
    RateCheck(column="abstained", alpha=0.05, min_effect=0.02, higher_is_worse=False),
]


@pytest.mark.parametrize(
    "check", ALL_CHECKS, ids=[f"{c.name}-{i}" for i, c in enumerate(ALL_CHECKS)]
)
def test_check_from_dict_round_trips(check: Check) -> None:
    spec = check.to_dict()
    assert spec["check"] == check.name
    assert check_from_dict(spec) == check
    # Through JSON too: tuples come back as lists.
    assert check_from_dict(json.loads(json.dumps(spec))) == check


def test_check_from_dict_rejects_unknown_checks_and_options() -> None:
    with pytest.raises(ConfigError, match="unknown check 'latency'"):
        check_from_dict({"check": "latency"})
    with pytest.raises(ConfigError, match=r"unknown: colum, zzz"):
        check_from_dict({"check": "rates", "colum": "x", "zzz": 1})
    with pytest.raises(ConfigError, match="monitors\\[2\\] must be a mapping"):
        check_from_dict({"column": "x"}, where="monitors[2]")
    with pytest.raises(ConfigError, match="must be a mapping"):
        check_from_dict(["rates"])  # type: ignore[arg-type]
    # A known option with a bad value fails in the check itself.
    with pytest.raises(ConfigError, match="alpha"):
        check_from_dict({"check": "rates", "alpha": 2.0})


def test_confidence_check_reads_entropy_from_logged_class_probabilities(ledger: Any) -> None:
    from scipy.stats import entropy as scipy_entropy

    from hindsight.monitor import Monitor

    rng = np.random.default_rng(21)

    def probs(n: int, sharp: float) -> np.ndarray:
        logits = rng.normal(0, sharp, (n, 4))
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    mon = Monitor("probs", ledger=ledger, options=ProfileOptions(threads=1))
    ref_p, cur_p = probs(3000, 3.0), probs(3000, 1.2)  # the current model is less sure
    mon.log({"x": rng.normal(size=3000)}, probabilities=ref_p, timestamps=np.full(3000, 1.0))
    mon.log({"x": rng.normal(size=3000)}, probabilities=cur_p, timestamps=np.full(3000, 3601.0))
    ref_prof, cur_prof = mon.window_profile(0), mon.window_profile(3600)
    want = scipy_entropy(cur_p, axis=1)
    assert cur_prof.columns["entropy"].mean == pytest.approx(want.mean(), rel=1e-9)
    assert cur_prof.columns["confidence"].mean == pytest.approx(cur_p.max(axis=1).mean())
    (f,) = ConfidenceCheck().judge(
        3600.0, WindowData(cur_prof, {}), WindowData(ref_prof, {})
    )
    ent = f.evidence["entropy"]
    ref_t = stats.ttest_ind(want, scipy_entropy(ref_p, axis=1), equal_var=False)
    assert ent["welch_t"] == pytest.approx(ref_t.statistic, rel=1e-6) and ent["rose"]
    assert f.flagged and "mean entropy" in f.detail
    (g,) = ConfidenceCheck(entropy_column=None).judge(
        3600.0, WindowData(cur_prof, {}), WindowData(ref_prof, {})
    )
    assert "entropy" not in g.evidence
    for bad, match in (
        (np.ones((3, 1)), "k >= 2"),
        (np.full((3, 2), 0.6), "do not sum to 1"),
        (np.array([[1.5, -0.5]] * 3), "in \\[0, 1\\]"),
    ):
        with pytest.raises(DataError, match=match):
            mon.log({"x": [1.0, 2.0, 3.0]}, probabilities=bad, timestamps=[1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="not both"):
        mon.log({"x": [1.0]}, probabilities=[[0.5, 0.5]], confidence=[0.5], timestamps=[1.0])
