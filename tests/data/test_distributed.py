"""Dask and Spark frames profiled where they live agree with the in-memory profile.

A real local ``dask.distributed`` cluster and a real local Spark session profile the
same seeded rows as :func:`hindsight.profile` does in memory; counts, nulls, min/max and
categories must match exactly, moments to rounding, and quantiles within the merged
summary's own stated rank error (checked against the true ranks of the data).
"""

from __future__ import annotations

import importlib
import math
import os
import shutil
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from hindsight import profile
from hindsight.data import (
    CategoricalColumnProfile,
    DatasetProfile,
    NumericColumnProfile,
    ProfileOptions,
)
from hindsight.data.columns import numeric_values
from hindsight.data.frames import column_kind, to_arrow

# PySpark warns that it "does not yet fully support pandas >= 3.0.0" whenever a pandas
# UDF (mapInArrow included) is defined; profiling passes no pandas data through Spark.
SPARK_PANDAS_WARNING = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)

# pyarrow's Table.from_pandas reads Series.values of tz-aware columns, which pandas >= 3.1
# deprecates (Pandas4Warning, a DeprecationWarning); the conversion itself is unaffected.
PANDAS_TZ_WARNING = pytest.mark.filterwarnings(
    "ignore:Series.values returning an ndarray that drops timezone:DeprecationWarning"
)

DEFAULT = ProfileOptions()
# Few knots, categories and sketch slots: partition summaries are themselves inexact,
# categories spill into "other", and the distinct count is an estimate.
SMALL = ProfileOptions(quantile_knots=64, max_categories=8, distinct_k=64)
OPTIONS = [pytest.param(DEFAULT, id="default"), pytest.param(SMALL, id="small")]

N_ROWS = 6000


def _unavailable(what: str, install: str) -> NoReturn:
    """A skip locally; in CI a missing framework is a failure (like the other integrations)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI ({install})", pytrace=False)
    pytest.skip(f"{what} is not available")


def _import(name: str, install: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        _unavailable(name, install)


# -- seeded data ----------------------------------------------------------------------
def _draws(n: int = N_ROWS, seed: int = 20261122) -> dict[str, Any]:
    """Raw columns plus null masks, shared by the pandas and the Arrow versions."""
    rng = np.random.default_rng(seed)
    x = rng.normal(50.0, 12.0, n)
    x[rng.random(n) < 0.03] = np.nan
    x[rng.choice(n, 5, replace=False)] = np.inf
    x[rng.choice(n, 3, replace=False)] = -np.inf
    cats = np.array([f"c{i:02d}" for i in range(30)])
    weights = 1.0 / np.arange(1, 31)
    return {
        "x": x,
        "x_null": rng.random(n) < 0.07,
        "i": rng.integers(-(10**12), 10**12, n),
        "small": rng.integers(0, 10, n).astype(np.int32),
        "ii": rng.integers(0, 500, n),
        "ii_null": rng.random(n) < 0.1,
        "s": rng.choice(cats, n, p=weights / weights.sum()),
        "s_null": rng.random(n) < 0.08,
        "b": rng.random(n) < 0.3,
        "b_null": rng.random(n) < 0.05,
        "t": rng.integers(1_500_000_000_000_000, 1_800_000_000_000_000, n),  # epoch us
        "t_null": rng.random(n) < 0.04,
    }


def make_pandas(n: int = N_ROWS) -> pd.DataFrame:
    """A frame with floats (NaN, inf), ints, nullable ints, strings, booleans, timestamps."""
    d = _draws(n)
    x = d["x"].copy()
    x[d["x_null"]] = np.nan  # pandas has one missing marker for floats
    t = pd.to_datetime(d["t"], unit="us")
    return pd.DataFrame(
        {
            "x": x,
            "i": d["i"],
            "small": d["small"],
            "ii": pd.array(np.where(d["ii_null"], None, d["ii"]), dtype="Int64"),
            "s": pd.Series(np.where(d["s_null"], None, d["s"]), dtype="str"),
            "b": pd.array(np.where(d["b_null"], None, d["b"]), dtype="boolean"),
            "t": pd.Series(t).where(~d["t_null"]),
            "t_utc": pd.Series(t.tz_localize("UTC")).where(~d["t_null"]),
        }
    )


def make_arrow(n: int = N_ROWS) -> pa.Table:
    """The same draws as Arrow, with NaN and null kept apart and an all-null column."""
    d = _draws(n)
    return pa.table(
        {
            "x": pa.array(d["x"], mask=d["x_null"]),
            "i": pa.array(d["i"], pa.int64()),
            "small": pa.array(d["small"], pa.int32()),
            "ii": pa.array(d["ii"], pa.int64(), mask=d["ii_null"]),
            "s": pa.array(d["s"], pa.string(), mask=d["s_null"]),
            "b": pa.array(d["b"], pa.bool_(), mask=d["b_null"]),
            "t": pa.array(d["t"], pa.timestamp("us", tz="UTC"), mask=d["t_null"]),
            "t_naive": pa.array(d["t"], pa.timestamp("us"), mask=d["t_null"]),
            "nothing": pa.nulls(n),
        }
    )


# -- comparison with the truth ----------------------------------------------------------
def _sorted_values(table: pa.Table, name: str) -> np.ndarray:
    """The sorted finite values (datetimes as epoch seconds) a profile of ``name`` summarises."""
    column = table.column(name)
    kind = column_kind(column.type)
    assert kind in ("numeric", "datetime")
    values, _ = numeric_values(column, kind)
    return np.sort(values[np.isfinite(values)])


def _close(got: float, want: float, scale: float) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9 * scale)


def _check_numeric(
    got: NumericColumnProfile, want: NumericColumnProfile, x: np.ndarray, knots: int
) -> None:
    name = want.name
    for field in ("kind", "count", "null_count", "nan_count", "inf_count", "integer_valued"):
        assert getattr(got, field) == getattr(want, field), (name, field)
    assert got.n == want.n == x.size, name
    if x.size == 0:
        assert math.isnan(got.min) and math.isnan(got.max), name
        return
    assert (got.min, got.max) == (want.min, want.max) == (x[0], x[-1]), name
    scale = max(abs(x[0]), abs(x[-1]), 1.0)
    assert _close(got.mean, want.mean, scale), (name, got.mean, want.mean)
    assert _close(got.variance, want.variance, scale * scale), (name, got.variance, want.variance)
    _check_quantiles(got, x, knots)
    # KMV sketches merge losslessly: the k smallest hashes of the union are the same.
    np.testing.assert_array_equal(got.distinct.hashes, want.distinct.hashes, err_msg=name)
    _check_distinct(got.n_distinct, got.distinct.exact, got.distinct.k, np.unique(x).size, name)


def _check_quantiles(got: NumericColumnProfile, x: np.ndarray, knots: int) -> None:
    """Quantiles and rank bounds hold against the true ranks, within the stated error."""
    summary, n, name = got.summary, x.size, got.name
    # Merging partition summaries keeps the error "about 2 / knots" (sketch.py's promise;
    # 1.8-1.96 / knots seen here with 64 knots), so 2.5 / knots leaves a little room.
    assert summary.rank_error <= 2.5 / knots, (name, summary.rank_error)
    eps = summary.rank_error * n + 1e-9
    qs = np.linspace(0.0, 1.0, 201)
    for q, v in zip(qs, summary.quantiles(qs), strict=True):
        lt = np.searchsorted(x, v, side="left")  # true #{x < v}
        le = np.searchsorted(x, v, side="right")  # true #{x <= v}
        assert le > lt, (name, q, v)  # the answer is a value of the data
        target = q * n
        off = lt - target if target < lt else max(target - le, 0.0)
        assert off <= eps, (name, q, v, off, eps)
    rng = np.random.default_rng(1)
    points = np.concatenate(
        [
            summary.values,
            x[rng.integers(0, n, 300)],
            rng.uniform(x[0] - 1.0, x[-1] + 1.0, 300),
            [x[0] - 1.0, x[-1] + 1.0],
        ]
    )
    for strict in (False, True):
        lo, hi = summary.rank_bounds(points, strict=strict)
        true = np.searchsorted(x, points, side="left" if strict else "right")
        assert np.all(lo <= true) and np.all(true <= hi), (name, strict)
        assert np.all(hi - lo <= eps), (name, strict)


def _check_distinct(estimate: float, exact: bool, k: int, truth: int, name: str) -> None:
    if truth < k:
        assert exact and estimate == truth, (name, estimate, truth)
    else:
        # Four standard errors of the KMV estimate; the data are seeded, so this is fixed.
        assert abs(estimate - truth) <= 4.0 * truth / math.sqrt(k - 2), (name, estimate, truth)


def _check_categorical(
    got: CategoricalColumnProfile, want: CategoricalColumnProfile, table: pa.Table
) -> None:
    name = want.name
    for field in ("kind", "count", "null_count"):
        assert getattr(got, field) == getattr(want, field), (name, field)
    column = table.column(name)
    as_text = column.cast(pa.string()) if want.kind == "boolean" else column
    truth = {str(k): int(v) for k, v in pd.Series(as_text.to_pylist()).value_counts().items()}
    assert sum(got.frequencies().values()) + got.other_count == want.n, name
    if want.exact:  # every category named: the merge must be exact
        assert got.exact, name
        assert got.labels == want.labels, name
        np.testing.assert_array_equal(got.counts, want.counts, err_msg=name)
        assert got.frequencies() == truth, name
    else:  # a category folded into "other" in some partition is undercounted, never over
        assert len(got.labels) == len(want.labels), name
        for label, count in got.frequencies().items():
            assert count <= truth[label], (name, label)
    np.testing.assert_array_equal(got.distinct.hashes, want.distinct.hashes, err_msg=name)
    _check_distinct(got.n_distinct, got.distinct.exact, got.distinct.k, len(truth), name)


def assert_matches(
    got: DatasetProfile,
    want: DatasetProfile,
    table: pa.Table,
    *,
    arrow_types: dict[str, str] | None = None,
) -> None:
    """``got`` (distributed) agrees with ``want`` (in memory) on the rows of ``table``.

    ``arrow_types`` names the columns whose Arrow type legitimately differs and what it
    is in ``got``; every other column must keep the in-memory Arrow type.
    """
    assert list(got.columns) == list(want.columns)
    assert got.schema == want.schema
    assert got.n_rows == want.n_rows == table.num_rows
    assert got.options == want.options
    assert dict(got.skipped) == dict(want.skipped)
    expected_types = {n: c.arrow_type for n, c in want.columns.items()} | (arrow_types or {})
    assert {n: c.arrow_type for n, c in got.columns.items()} == expected_types
    for name, col in want.columns.items():
        other = got[name]
        if isinstance(col, NumericColumnProfile):
            assert isinstance(other, NumericColumnProfile)
            _check_numeric(other, col, _sorted_values(table, name), want.options.quantile_knots)
        else:
            assert isinstance(other, CategoricalColumnProfile)
            _check_categorical(other, col, table)


def assert_empty_like(got: DatasetProfile, want: DatasetProfile) -> None:
    """A profile of no rows: the in-memory columns and kinds, every count zero."""
    assert got.n_rows == 0
    assert got.schema == want.schema
    for col in got.columns.values():
        assert col.count == col.null_count == 0
        assert col.n_distinct == 0


# -- Dask -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    """A real two-worker local cluster (threads: quick to start), active for dask.compute."""
    _import("dask.dataframe", "pip install 'hindsight[dask]'")
    distributed = _import("distributed", "pip install 'hindsight[dask]'")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_pandas()


def _dask(df: pd.DataFrame, npartitions: int = 7) -> Any:
    import dask.dataframe as dd

    return dd.from_pandas(df, npartitions=npartitions, sort=False)


@PANDAS_TZ_WARNING
@pytest.mark.parametrize("options", OPTIONS)
def test_dask_matches_in_memory(
    dask_client: Any, frame: pd.DataFrame, options: ProfileOptions
) -> None:
    from distributed import get_task_stream

    ddf = _dask(frame)
    assert ddf.npartitions == 7
    with get_task_stream(dask_client) as tasks:
        got = profile(ddf, options)
    # Every partition was profiled by a task on the cluster's workers.
    ran = [t for t in tasks.data if "_profile_pandas_partition" in str(t["key"])]
    assert len(ran) == 7
    want = profile(frame, options)
    assert_matches(got, want, to_arrow(frame))
    # x has more distinct values than knots: its summary is approximate, so the rank
    # checks above tested the stated error rather than an exact summary.
    x = got["x"]
    assert isinstance(x, NumericColumnProfile) and x.summary.rank_error > 0.0


@PANDAS_TZ_WARNING
def test_dask_is_deterministic(dask_client: Any, frame: pd.DataFrame) -> None:
    ddf = _dask(frame)
    first = profile(ddf, SMALL).to_bytes()
    assert profile(ddf, SMALL).to_bytes() == first
    assert DatasetProfile.from_bytes(first).to_bytes() == first


@PANDAS_TZ_WARNING
def test_dask_keeps_the_callers_options(dask_client: Any, frame: pd.DataFrame) -> None:
    """Partitions are profiled on one thread each, but the result carries the options given."""
    opts = ProfileOptions(threads=3, quantile_knots=128)
    got = profile(_dask(frame.head(500), 3), opts)
    assert got.options == opts


@PANDAS_TZ_WARNING
def test_dask_with_empty_partitions(dask_client: Any, frame: pd.DataFrame) -> None:
    ordered = frame.sort_values("small", kind="stable").reset_index(drop=True)
    ddf = _dask(ordered)
    kept = ddf[ddf["small"] < 2]
    sizes = kept.map_partitions(len).compute().tolist()
    assert 0 in sizes and sum(sizes) > 0  # some partitions empty, some not
    want_frame = ordered[ordered["small"] < 2]
    assert_matches(profile(kept, DEFAULT), profile(want_frame, DEFAULT), to_arrow(want_frame))


@PANDAS_TZ_WARNING
def test_dask_with_every_partition_empty(dask_client: Any, frame: pd.DataFrame) -> None:
    ddf = _dask(frame)
    none = ddf[ddf["small"] < 0]
    got = profile(none, DEFAULT)
    assert_empty_like(got, profile(frame.iloc[:0], DEFAULT))
    assert list(got.columns) == list(frame.columns)


def test_dask_partition_where_an_object_column_is_all_null(dask_client: Any) -> None:
    """Untyped pandas columns read as Arrow "null" in a partition of only None values.

    Dask normally turns object columns into strings; with that off, a partition of None
    has no type of its own and must not clash with the typed partitions when merged.
    """
    import dask

    df = pd.DataFrame(
        {
            "flag": pd.Series([None] * 4 + [True, False, None, True], dtype=object),
            "tags": pd.Series([None] * 4 + [[1], [2], None, [3]], dtype=object),  # unsupported
            "x": np.arange(8.0),
        }
    )
    with dask.config.set({"dataframe.convert-string": False}):
        got = profile(_dask(df, 2))
    want = profile(df)
    assert got.to_bytes() == want.to_bytes()
    assert got.schema == {"flag": "boolean", "x": "numeric"}
    assert dict(got.skipped) == {"tags": "list<item: int64>"}


# -- Spark ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local two-core Spark session on loopback, without UI, stopped at the end."""
    _import("pyspark", "pip install 'hindsight[spark]'")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        _unavailable("Java (for Spark)", "install a JDK 17")
    from pyspark.sql import SparkSession

    # Spark's Python workers must be this interpreter, where hindsight is installed.
    saved = {k: os.environ.get(k) for k in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("hindsight-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def arrow_table() -> pa.Table:
    return make_arrow()


# Spark has one timestamp type, with a time zone: naive timestamps come back in the
# session's zone (UTC here), the same instants, so only the Arrow type's name differs.
SPARK_TYPES = {"t_naive": "timestamp[us, tz=UTC]"}


@SPARK_PANDAS_WARNING
@pytest.mark.parametrize("options", OPTIONS)
def test_spark_matches_in_memory(
    spark: Any, arrow_table: pa.Table, options: ProfileOptions
) -> None:
    sdf = spark.createDataFrame(arrow_table).repartition(5)
    got = profile(sdf, options)
    want = profile(arrow_table, options)
    assert_matches(got, want, arrow_table, arrow_types=SPARK_TYPES)
    # Spark keeps NaN apart from null, as Arrow does.
    x = got["x"]
    assert isinstance(x, NumericColumnProfile)
    assert x.nan_count > 0 and x.null_count > 0 and x.inf_count == 8
    assert got["nothing"].count == got["nothing"].null_count == arrow_table.num_rows
    if options == SMALL:
        assert profile(sdf, options).to_bytes() == got.to_bytes()  # same partitions, same bytes


@SPARK_PANDAS_WARNING
def test_spark_with_empty_partitions(spark: Any, arrow_table: pa.Table) -> None:
    few = arrow_table.slice(0, 3)
    sdf = spark.createDataFrame(few).repartition(6)  # at most three partitions hold rows
    assert_matches(profile(sdf, DEFAULT), profile(few, DEFAULT), few, arrow_types=SPARK_TYPES)


@SPARK_PANDAS_WARNING
def test_spark_with_every_partition_empty(spark: Any, arrow_table: pa.Table) -> None:
    sdf = spark.createDataFrame(arrow_table).repartition(3).filter("small < 0")
    got = profile(sdf, DEFAULT)
    assert_empty_like(got, profile(arrow_table.slice(0, 0), DEFAULT))
    assert list(got.columns) == arrow_table.column_names
    assert got.options == DEFAULT
