"""Profiles: every input kind, exact statistics, determinism, round trips, the store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

import hindsight
from hindsight.data import DatasetProfile, ProfileOptions, profile
from hindsight.data.columns import CategoricalColumnProfile, NumericColumnProfile
from hindsight.data.reference import load_profile, resolve_reference, save_profile
from hindsight.errors import ConfigError, DataError
from hindsight.ledger import Ledger


def _frame(n: int = 5000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 1, n)
    income[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "income": income,
            "age": rng.integers(18, 90, n),
            "plan": pd.array(rng.choice(["free", "pro", "team", None], n), dtype="string"),
            "active": rng.random(n) < 0.3,
            "seen": pd.to_datetime("2026-01-01") + pd.to_timedelta(rng.integers(0, 10**6, n), "s"),
        }
    )


def test_numeric_statistics_are_exact() -> None:
    df = _frame()
    prof = profile(df)
    inc = prof["income"]
    assert isinstance(inc, NumericColumnProfile)
    x = df["income"].dropna().to_numpy()
    assert inc.count == len(df) and inc.nan_count + inc.null_count == df["income"].isna().sum()
    assert inc.n == x.size
    assert inc.min == x.min() and inc.max == x.max()
    assert inc.mean == pytest.approx(x.mean(), rel=1e-12)
    assert inc.variance == pytest.approx(np.var(x, ddof=1), rel=1e-10)
    age = prof["age"]
    assert isinstance(age, NumericColumnProfile) and age.integer_valued
    assert age.summary.exact and age.n_distinct == df["age"].nunique()
    q = age.quantiles((0.5,))["p50"]
    assert q is not None and abs(stats.percentileofscore(df["age"], q, kind="weak") - 50) <= 100 / 72 + 1
    seen = prof["seen"]
    assert seen.kind == "datetime"
    assert seen.min == pytest.approx(df["seen"].min().timestamp())


def test_categorical_counts_are_exact_with_other_bucket() -> None:
    df = _frame()
    plan = profile(df)["plan"]
    assert isinstance(plan, CategoricalColumnProfile)
    assert plan.null_count == df["plan"].isna().sum()
    assert plan.frequencies() == df["plan"].value_counts().to_dict()
    active = profile(df)["active"]
    assert active.kind == "boolean" and set(active.frequencies()) == {"true", "false"}
    ids = pa.table({"id": pa.array([f"u{i % 300}" for i in range(3000)])})
    top = profile(ids, max_categories=10)["id"]
    assert isinstance(top, CategoricalColumnProfile)
    assert len(top.labels) == 10 and top.other_count == 3000 - 100
    assert top.labels == tuple(sorted(top.labels))  # ties broken by label
    assert round(top.n_distinct) == 300


def test_every_input_kind_gives_the_same_profile(tmp_path: Path) -> None:
    df = _frame().drop(columns=["seen", "plan"])  # CSV round trips lose these types
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, tmp_path / "d.parquet")
    df.to_csv(tmp_path / "d.csv", index=False)
    expected = profile(table).to_bytes()
    assert profile(df).to_bytes() == expected
    assert profile(pl.from_pandas(df)).to_bytes() == expected
    assert profile(tmp_path / "d.parquet").to_bytes() == expected
    assert profile(str(tmp_path / "d.csv"))["income"].mean == pytest.approx(df["income"].mean())


def test_deterministic_and_round_trips(tmp_path: Path) -> None:
    df = _frame()
    a, b = profile(df), profile(df.copy())
    assert a.to_bytes() == b.to_bytes() and a.digest == b.digest
    back = DatasetProfile.from_bytes(a.to_bytes())
    assert back.to_bytes() == a.to_bytes()
    path = a.save(tmp_path / "ref.hsprof")
    assert DatasetProfile.load(path).digest == a.digest
    assert resolve_reference(str(path)).digest == a.digest


def test_merge_agrees_with_whole() -> None:
    df = _frame(20_000, seed=3)
    table = pa.Table.from_pandas(df, preserve_index=False)
    whole = profile(table)
    parts = [profile(table.slice(i, 3000)) for i in range(0, 20_000, 3000)]
    merged = DatasetProfile.merge(parts)
    assert merged.n_rows == whole.n_rows
    for name in whole:
        w, m = whole[name], merged[name]
        assert (w.count, w.null_count) == (m.count, m.null_count)
        if isinstance(w, NumericColumnProfile):
            assert isinstance(m, NumericColumnProfile)
            assert (w.min, w.max) == (m.min, m.max)
            assert m.mean == pytest.approx(w.mean, rel=1e-12)
            assert m.variance == pytest.approx(w.variance, rel=1e-9)
        else:
            assert isinstance(m, CategoricalColumnProfile)
            assert m.frequencies() == w.frequencies()


def test_bad_input_is_named() -> None:
    with pytest.raises(DataError, match="mixes types"):
        profile(pd.DataFrame({"x": [1, "a", 2.5]}))
    with pytest.raises(DataError, match="no columns"):
        profile(pa.table({}))
    with pytest.raises(DataError, match="Cannot read"):
        profile(42)
    with pytest.raises(DataError, match="does not exist"):
        profile("missing.parquet")
    with pytest.raises(ConfigError, match="'quantile_knots' parameter of ProfileOptions"):
        ProfileOptions(quantile_knots=2)
    with pytest.raises(DataError, match="no column 'nope'"):
        profile(_frame())["nope"]
    with pytest.raises(DataError, match="damaged"):
        DatasetProfile.from_bytes(b"not a profile")


def test_newer_format_is_refused() -> None:
    d = profile(_frame(100)).to_dict()
    d["version"] = 99
    with pytest.raises(DataError, match="Upgrade hindsight"):
        DatasetProfile.from_dict(d)


def test_empty_and_all_null_columns() -> None:
    prof = profile(pa.table({"x": pa.array([None, None], pa.float64()), "y": [1.0, 2.0]}))
    assert prof["x"].n == 0 and prof["x"].null_rate == 1.0
    assert prof["y"].n == 2


def test_stored_by_name(any_ledger: Ledger) -> None:
    prof = profile(_frame(2000))
    rid = save_profile(prof, "train-v1", ledger=any_ledger)
    assert rid.startswith("prf_")
    newer = profile(_frame(1000, seed=9))
    save_profile(newer, "train-v1", ledger=any_ledger)
    assert load_profile("train-v1", ledger=any_ledger).digest == newer.digest
    assert [r["name"] for r in any_ledger.store.list_profiles()] == ["train-v1", "train-v1"]
    with pytest.raises(DataError, match="Stored profiles: train-v1"):
        load_profile("nope", ledger=any_ledger)


def test_top_level_names_are_lazy() -> None:
    assert hindsight.profile is profile
    assert hindsight.DatasetProfile is DatasetProfile
