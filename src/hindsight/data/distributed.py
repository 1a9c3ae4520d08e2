"""Profile Dask and Spark DataFrames where they live: one profile per partition, then merge.

Each partition is turned into an Arrow table on the worker that holds it and profiled
there with :func:`~hindsight.data.profile.profile_table` (one thread: the cluster is the
parallelism); only the compact serialised profiles travel back to the driver, where they
are merged in partition order, so the same frame always gives the same bytes. The
result matches the in-memory profile of the same rows: counts, nulls, min/max and
categories exactly, mean/variance to rounding, quantiles within the merged summary's
stated ``rank_error``.

Neither dask nor pyspark is imported until a frame of theirs is profiled. Workers and
Spark executors need hindsight (and pyarrow) installed, as any Python UDF needs its code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from hindsight.data.frames import to_arrow
from hindsight.data.profile import DatasetProfile, ProfileOptions, profile_table
from hindsight.errors import DataError

__all__ = ["profile_dask", "profile_spark"]

_SPARK_RESULT_SCHEMA = "part long, profile binary"
SparkPartitionFn = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]


def _check_columns(names: Sequence[Any], what: str) -> None:
    """The same checks :func:`to_arrow` makes of an in-memory frame, made on the driver."""
    labels = [str(n) for n in names]
    if not labels:
        raise DataError(f"The {what} has no columns.")
    if len(set(labels)) != len(labels):
        dupes = sorted({n for n in labels if labels.count(n) > 1})
        raise DataError(f"The {what} has duplicate column names: {', '.join(dupes)}. Rename them.")


def _partition_options(options: ProfileOptions) -> ProfileOptions:
    return dataclasses.replace(options, threads=1)


def _merge_partitions(parts: Sequence[DatasetProfile], options: ProfileOptions) -> DatasetProfile:
    """Merge partition profiles (in the order given) into one with the caller's options.

    A column of an unsupported type is skipped in the partitions that hold values, but a
    partition where it is all null (or that is empty) reads it as Arrow type "null", which
    is profiled; such columns are dropped from those partitions so the column lists agree.
    """
    skipped: dict[str, str] = {}
    for p in parts:
        for name, arrow_type in p.skipped.items():
            skipped.setdefault(name, arrow_type)
    aligned = []
    for p in parts:
        drop = [n for n, col in p.columns.items() if n in skipped and col.arrow_type == "null"]
        if drop or p.skipped.keys() != skipped.keys():
            columns = {n: col for n, col in p.columns.items() if n not in drop}
            p = dataclasses.replace(p, columns=columns, skipped=dict(skipped))
        aligned.append(p)
    merged = DatasetProfile.merge(aligned)
    return dataclasses.replace(merged, options=options)


# -- Dask ---------------------------------------------------------------------------------
def _profile_pandas_partition(part: Any, options: ProfileOptions) -> bytes:
    """Runs on a Dask worker: one pandas partition -> its serialised profile."""
    if not hasattr(part, "columns") and hasattr(part, "to_frame"):  # a dask Series
        part = part.to_frame()
    return profile_table(to_arrow(part, what="partition"), options).to_bytes()


def profile_dask(ddf: Any, options: ProfileOptions) -> DatasetProfile:
    """Profile a Dask DataFrame partition by partition on its workers, then merge.

    Runs through whatever scheduler is active (a ``distributed.Client`` if one is set up,
    else Dask's default), one task per partition.
    """
    try:
        import dask
    except ImportError as exc:  # pragma: no cover - a dask frame implies dask is installed
        raise DataError(
            f"Profiling a Dask DataFrame needs dask ({exc}). Install it with "
            "pip install 'hindsight[dask]'."
        ) from exc
    if hasattr(ddf, "columns"):
        _check_columns(list(ddf.columns), "Dask DataFrame")
    part_opts = _partition_options(options)
    profile_part = dask.delayed(_profile_pandas_partition)
    tasks = [profile_part(part, part_opts) for part in ddf.to_delayed()]
    blobs = dask.compute(*tasks)
    return _merge_partitions([DatasetProfile.from_bytes(b) for b in blobs], options)


# -- Spark --------------------------------------------------------------------------------
def _spark_partition_profiler(options: ProfileOptions) -> SparkPartitionFn:
    """The function ``mapInArrow`` runs on each partition: batches in, one profile out."""

    def profile_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        got = list(batches)
        if not got:  # Spark may hand an empty partition no batches (or skip it)
            return
        table = pa.Table.from_batches(got)
        blob = profile_table(table, options).to_bytes()
        context = TaskContext.get()
        part = context.partitionId() if context is not None else 0
        yield pa.RecordBatch.from_arrays(
            [pa.array([part], pa.int64()), pa.array([blob], pa.binary())],
            names=["part", "profile"],
        )

    return profile_batches


def _spark_empty_table(sdf: Any) -> pa.Table:
    """A zero-row Arrow table with the Arrow types Spark would send for ``sdf``."""
    from pyspark.sql.pandas.types import to_arrow_schema

    conf = sdf.sparkSession.conf
    settings = {
        "timezone": conf.get("spark.sql.session.timeZone", "UTC"),
        "prefers_large_types": conf.get("spark.sql.execution.arrow.useLargeVarTypes", "false")
        == "true",
    }
    try:
        try:
            schema = to_arrow_schema(sdf.schema, **settings)
        except TypeError:  # pyspark 3.5 takes neither keyword (and needs no time zone)
            schema = to_arrow_schema(sdf.schema)
    except Exception as exc:  # pyspark raises its own error classes for unsupported types
        raise DataError(f"The Spark DataFrame's schema has no Arrow equivalent: {exc}") from exc
    return schema.empty_table()


def profile_spark(sdf: Any, options: ProfileOptions) -> DatasetProfile:
    """Profile a Spark DataFrame partition by partition on its executors, then merge.

    Uses ``DataFrame.mapInArrow``: each partition reaches Python as Arrow batches, is
    profiled there, and sends back one row (partition id, profile bytes).
    """
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:  # pragma: no cover - a Spark frame implies pyspark
        raise DataError(
            f"Profiling a Spark DataFrame needs pyspark ({exc}). Install it with "
            "pip install 'hindsight[spark]'."
        ) from exc
    _check_columns(list(sdf.columns), "Spark DataFrame")
    part_opts = _partition_options(options)
    rows = sdf.mapInArrow(_spark_partition_profiler(part_opts), _SPARK_RESULT_SCHEMA).collect()
    ordered = sorted((int(r["part"]), bytes(r["profile"])) for r in rows)
    profiles = [DatasetProfile.from_bytes(blob) for _, blob in ordered]
    if not profiles:  # every partition empty: the profile of no rows, with the columns
        profiles = [profile_table(_spark_empty_table(sdf), part_opts)]
    return _merge_partitions(profiles, options)
