"""drift_report: statistics equal SciPy's, bounds hold against profiles, decisions follow the rule."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

import hindsight
from hindsight.data import DatasetProfile, profile
from hindsight.drift import SCHEMA, drift_report
from hindsight.errors import DataError, DriftError


def _pair(n: int, m: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame(
        {
            "x": rng.normal(0, 1, n),
            "y": rng.exponential(1, n),
            "k": rng.integers(0, 4, n).astype(float),  # discrete: compared as counts
            "c": rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    cur = pd.DataFrame(
        {
            "x": rng.normal(0.3, 1, m),
            "y": rng.exponential(1, m),
            "k": rng.integers(0, 4, m).astype(float),
            "c": rng.choice(["a", "b", "c", "d"], m, p=[0.3, 0.3, 0.2, 0.2]),
        }
    )
    return ref, cur


@pytest.mark.parametrize(("n", "m"), [(300, 200), (30_000, 20_000)])
def test_statistics_match_scipy(n: int, m: int) -> None:
    ref, cur = _pair(n, m)
    report = drift_report(ref, cur)
    for col in ("x", "y"):
        f = report[col]
        method = "exact" if max(n, m) <= 10_000 else "asymp"
        expected = stats.ks_2samp(ref[col], cur[col], method=method)
        assert f.test == "ks"
        assert f.statistic == pytest.approx(expected.statistic, abs=1e-12)
        en = n * m / (n + m)
        if en <= 10_000:
            assert f.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
        else:  # Kolmogorov's limit: within 1 % of SciPy's kstwo-based p-value where it matters
            limit = special.kolmogorov(f.statistic * np.sqrt(en))
            assert f.p_value == pytest.approx(limit, rel=1e-12, abs=1e-300)
            if expected.pvalue > 1e-6:
                assert f.p_value == pytest.approx(expected.pvalue, rel=0.01)
            else:  # far beyond any decision: both vanishingly small
                assert f.p_value < 1e-5
    for col in ("c", "k"):
        f = report[col]
        r = ref[col].value_counts()
        c = cur[col].value_counts().reindex(r.index, fill_value=0)
        table = np.vstack([r.to_numpy(), c.to_numpy()])
        expected = stats.chi2_contingency(table, correction=False)
        assert f.test == "chi_square"
        assert f.statistic == pytest.approx(expected.statistic, rel=1e-9)
        assert f.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
        js = jensenshannon(table[0] / table[0].sum(), table[1] / table[1].sum(), base=2)
        assert f.effect_size == pytest.approx(js, rel=1e-9)
    ps = [report[c].p_value for c in ("x", "y", "k", "c")]
    adjusted = stats.false_discovery_control(ps, method="bh")
    assert [report[c].p_adjusted for c in ("x", "y", "k", "c")] == pytest.approx(adjusted)
    assert set(report.drifted_columns) == {"x", "c"}
    assert report.drift_detected


def test_profile_reference_brackets_the_exact_statistic(tmp_path) -> None:
    ref, cur = _pair(50_000, 40_000, seed=1)
    exact = drift_report(ref, cur)
    path = profile(ref, quantile_knots=256).save(tmp_path / "ref.hsprof")
    for reference in (DatasetProfile.load(path), str(path)):
        approx = drift_report(reference, cur)
        for col in ("x", "y"):
            low, high = approx[col].details["statistic_bounds"]
            assert low <= exact[col].statistic + 1e-12 <= high + 2e-12
            assert high - low <= 2 / 256
        assert approx.drifted_columns == exact.drifted_columns
    both = drift_report(profile(ref), profile(cur))
    for col in ("x", "y"):
        low, high = both[col].details["statistic_bounds"]
        assert low <= exact[col].statistic + 1e-12 <= high + 2e-12


def test_large_identical_samples_raise_no_alarm() -> None:
    rng = np.random.default_rng(7)
    n = 400_000
    make = lambda: pa.table(  # noqa: E731
        {
            **{f"n{i}": rng.standard_t(5, n) for i in range(6)},
            "ints": rng.poisson(30, n).astype(np.int64),
            "cat": rng.choice([f"v{i}" for i in range(150)], n),
        }
    )
    report = drift_report(make(), make())
    assert report.drifted_columns == []
    for f in report.columns:
        assert f.effect_threshold is not None and f.effect_size < f.effect_threshold
        assert f.details["null_level"] < f.effect_threshold


def test_small_real_shift_is_found_at_scale_and_ignored_when_tiny() -> None:
    rng = np.random.default_rng(8)
    n = 200_000
    ref = {"a": rng.normal(0, 1, n), "b": rng.normal(0, 1, n)}
    cur = {"a": rng.normal(0.1, 1, n), "b": rng.normal(0.01, 1, n)}
    report = drift_report(ref, cur)
    assert report["a"].drifted and report["a"].decided_by == "p_value and effect_size"
    # 0.01 sd is significant at this size but below the practical minimum (KS 0.02).
    assert report["b"].p_adjusted < 0.05 and not report["b"].drifted


def test_schema_changes_overrides_and_json() -> None:
    ref, cur = _pair(2000, 2000, seed=2)
    cur = cur.drop(columns=["y"]).assign(extra=1.0, k=cur["k"].astype(str))
    report = drift_report(ref, cur, tests={"x": "wasserstein"})
    changes = {(c.column, c.change) for c in report.schema_changes}
    assert changes == {("y", "missing"), ("extra", "extra"), ("k", "retyped")}
    assert report["x"].test == "wasserstein" and report["x"].decided_by == "effect_size"
    data = json.loads(report.to_json())
    assert data["schema"] == SCHEMA
    assert data["columns"][0]["plot"]["type"] == "histogram"
    assert set(data) >= {"drift_detected", "rule", "drifted_columns", "columns", "settings"}
    assert "Benjamini-Hochberg" in data["rule"]


def test_multivariate_on_request() -> None:
    rng = np.random.default_rng(3)
    cov = [[1, 0.9], [0.9, 1]]
    ref = pd.DataFrame(rng.multivariate_normal([0, 0], cov, 1500), columns=["u", "v"])
    cur = pd.DataFrame(rng.multivariate_normal([0, 0], [[1, -0.9], [-0.9, 1]], 1500), columns=["u", "v"])
    report = drift_report(ref, cur, multivariate=["pca_reconstruction"])
    assert report.drifted_columns == []  # same marginals
    assert report.multivariate[0]["drifted"] and report.drift_detected


def test_bad_input() -> None:
    ref, cur = _pair(100, 100)
    with pytest.raises(DriftError, match="Unknown column"):
        drift_report(ref, cur, columns=["nope"])
    with pytest.raises(DriftError, match="No drift test named 'nope'"):
        drift_report(ref, cur, tests={"x": "nope"})
    with pytest.raises(DataError, match="no rows"):
        drift_report(ref, cur.iloc[:0])
    with pytest.raises(DriftError, match="no usable values"):
        drift_report(ref, cur.assign(x=np.nan))
    with pytest.raises(DataError, match="neither an existing file nor a stored profile"):
        drift_report("missing/ref.parquet", cur)
    assert hindsight.drift_report is drift_report


def test_tied_columns_calibrate_their_null_by_resampling() -> None:
    from hindsight.drift.compare import DriftSettings, _ks_resampled_level

    rng = np.random.default_rng(11)
    values = np.arange(30.0)
    p = rng.dirichlet(np.ones(30))
    atoms = p * 1e6
    n, m = 20_000, 15_000
    level = _ks_resampled_level(atoms, n, m, DriftSettings(calibration_draws=200))
    # The same null by brute force: KS distances of seeded samples drawn from the atoms.
    brute = [
        stats.ks_2samp(rng.choice(values, n, p=p), rng.choice(values, m, p=p), method="asymp").statistic
        for _ in range(200)
    ]
    assert np.quantile(brute, 0.95) < level <= max(brute) * 1.5
    # Ties make the null smaller than Kolmogorov's distribution-free one.
    assert level < special.kolmogi(0.001) / np.sqrt(n * m / (n + m))
    ref = {"k": rng.choice(values, 50_000, p=p)}
    cur = {"k": rng.choice(values, 50_000, p=p) + 0.0}
    report = drift_report(ref, cur, tests=None, min_effect={"ks_distance": 0.0}, large_sample=1000)
    assert report["k"].details["null_method"].startswith("multinomial")


def test_sparse_cells_are_pooled_before_the_chi_square() -> None:
    """Small windows of a count column: rare tail values would make the raw chi-square
    fire far above its level; pooled (Cochran's rule) it stays near it."""
    from hindsight.data.profile import ProfileOptions, profile_table
    from hindsight.drift.compare import _pool_sparse

    rng = np.random.default_rng(3)
    opts = ProfileOptions(threads=1)
    ref = profile_table(pa.table({"f": rng.poisson(3.6, 3600).astype(float)}), opts)
    ps = np.array(
        [
            drift_report(
                ref, profile_table(pa.table({"f": rng.poisson(3.6, 150).astype(float)}), opts)
            )["f"].p_value
            for _ in range(300)
        ]
    )
    # Unpooled, this stream gave 7 % below 0.01 and 3 % below 0.001.
    assert (ps < 0.01).mean() <= 0.03 and (ps < 0.001).mean() <= 0.005

    ref_c = np.array([500.0, 300.0, 150.0, 40.0, 8.0, 2.0])
    cur_c = np.array([50.0, 30.0, 14.0, 4.0, 1.0, 1.0])
    pr, pc, k = _pool_sparse(ref_c, cur_c)
    expected_min = (ref_c + cur_c) * cur_c.sum() / (ref_c.sum() + cur_c.sum())
    assert k == 3 and expected_min[-3:].sum() >= 5 > expected_min[-2:].sum()
    assert pr.tolist() == [500.0, 300.0, 150.0, 50.0] and pc.tolist() == [50.0, 30.0, 14.0, 6.0]
    got = _pool_sparse(np.array([10.0, 20.0]), np.array([10.0, 20.0]))
    assert got[2] == 0  # nothing sparse: the table as it was
