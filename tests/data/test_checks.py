"""Dataset checks: each check finds what it should, with its numbers, and nothing else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hindsight
from hindsight.data import profile
from hindsight.data.checks import check_dataset
from hindsight.errors import DataError, DataQualityError


def _ref(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3, 0.5, n),
            "age": rng.integers(18, 80, n).astype(float),
            "country": rng.choice(["de", "fr", "nl"], n),
        }
    )


def _by(report: hindsight.DatasetCheckReport, check: str, column: str | None) -> dict:
    [r] = [r for r in report.results if r.check == check and r.column == column]
    return r.to_dict()


def test_clean_data_passes_every_check() -> None:
    report = check_dataset(_ref(seed=1), reference=_ref())
    assert report.passed, [r.message for r in report.failed]
    assert {r.check for r in report.results} == {
        "schema", "nulls", "duplicates", "range", "categories", "outliers", "distribution"
    }


def test_schema_changes_are_named() -> None:
    cur = _ref(seed=1).drop(columns=["age"]).assign(country=lambda d: d["country"].map(len), extra=1.0)
    report = check_dataset(cur, reference=_ref(), checks=["schema"])
    msgs = {r.column: (r.status, r.message) for r in report.results}
    assert msgs["age"][0] == "fail" and "missing" in msgs["age"][1]
    assert msgs["country"][0] == "fail" and "numeric" in msgs["country"][1]
    assert msgs["extra"][0] == "warn"


def test_nulls_duplicates_ranges_categories_outliers() -> None:
    ref = _ref()
    cur = _ref(seed=2)
    cur.loc[:399, "amount"] = np.nan  # 10 % nulls
    cur.loc[400:459, "age"] = 200.0  # 1.5 % out of range and outliers
    cur.loc[440:639, "country"] = "xx"  # 5 % unseen
    cur = pd.concat([cur, cur.iloc[1000:1100]], ignore_index=True)  # 100 duplicates
    report = check_dataset(cur, reference=ref)
    nulls = _by(report, "nulls", "amount")
    assert nulls["status"] == "fail"
    assert nulls["metrics"]["null_rate"] == pytest.approx(cur["amount"].isna().mean())
    dup = _by(report, "duplicates", None)
    assert dup["metrics"]["duplicate_rows"] == cur.duplicated().sum() >= 100
    rng_ = _by(report, "range", "age")
    assert rng_["metrics"]["above"] == (cur["age"] > ref["age"].max()).sum()
    cats = _by(report, "categories", "country")
    assert cats["status"] == "fail" and cats["metrics"]["unseen"] == ["xx"]
    assert cats["metrics"]["unseen_rows"] == (cur["country"] == "xx").sum()
    out = _by(report, "outliers", "age")
    q1, q3 = np.quantile(ref["age"], [0.25, 0.75])
    beyond = ((cur["age"] < q1 - 3 * (q3 - q1)) | (cur["age"] > q3 + 3 * (q3 - q1))).mean()
    assert out["metrics"]["share"] == pytest.approx(beyond, abs=2 / 4000)
    with pytest.raises(DataQualityError) as info:
        check_dataset(cur, reference=ref, raise_on="error")
    text = str(info.value)
    for needle in ("nulls [amount]", "categories [country]", "duplicates", "range [age]"):
        assert needle in text
    assert info.value.report is not None and not info.value.report.passed


def test_robust_zscore_uses_reference_median_and_mad() -> None:
    ref = _ref()
    cur = _ref(seed=3)
    cur.loc[:99, "amount"] = 10_000.0
    report = check_dataset(cur, reference=profile(ref), checks=["outliers"], outlier_method="zscore")
    res = _by(report, "outliers", "amount")
    med = np.median(ref["amount"])
    mad = stats.median_abs_deviation(ref["amount"])
    assert res["metrics"]["median"] == pytest.approx(med, rel=1e-3)
    assert res["metrics"]["mad"] == pytest.approx(mad, rel=2e-3)
    assert res["status"] == "fail"


def test_distribution_and_normality() -> None:
    ref = _ref()
    cur = _ref(seed=4).assign(amount=lambda d: d["amount"] * 1.5)
    report = check_dataset(cur, reference=ref, checks=["distribution"], normality=["age"])
    assert _by(report, "distribution", "amount")["status"] == "fail"
    assert _by(report, "distribution", "age")["status"] == "pass"
    norm = _by(report, "normality", "age")
    assert norm["metrics"]["p_value"] == pytest.approx(stats.normaltest(cur["age"]).pvalue)


def test_without_reference_runs_what_needs_none() -> None:
    report = check_dataset(_ref())
    assert {r.check for r in report.results} == {"nulls", "duplicates"}


def test_bad_input() -> None:
    with pytest.raises(DataError, match="no rows"):
        check_dataset(pd.DataFrame({"x": pd.Series([], dtype=float)}))
    with pytest.raises(DataError, match="Unknown column"):
        check_dataset(_ref(), columns=["nope"])
    with pytest.raises(DataError, match="Unknown check"):
        check_dataset(_ref(), checks=["vibes"])
    with pytest.raises(DataError, match="mixes types"):
        check_dataset(pd.DataFrame({"x": [1, "b"]}))
