"""Per-column profiles: numeric (and datetime) and categorical (and boolean).

A profile is built from one Arrow column in a few vectorised passes, merges with the
profile of another partition of the same column, and round-trips through a plain dict
(arrays as base64 little-endian bytes) so the same data always gives the same bytes.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hindsight.data.buckets import Buckets, Grid, grid_for
from hindsight.data.sketch import DistinctSketch, QuantileSummary, hash_floats, hash_strings
from hindsight.errors import DataError

__all__ = [
    "CategoricalColumnProfile",
    "ColumnProfile",
    "NumericColumnProfile",
    "categorical_profile",
    "column_from_dict",
    "merge_columns",
    "numeric_profile",
    "numeric_values",
]

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def _b64(arr: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(arr, dtype=dtype).tobytes()).decode("ascii")


def _unb64(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).copy()


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


@dataclass(frozen=True)
class NumericColumnProfile:
    """Summary of a numeric or datetime column (datetimes as seconds since the epoch)."""

    name: str
    kind: str  # "numeric" or "datetime"
    arrow_type: str
    count: int  # rows, nulls included
    null_count: int
    nan_count: int
    inf_count: int
    min: float
    max: float
    mean: float
    m2: float  # sum of squared deviations from the mean
    integer_valued: bool
    summary: QuantileSummary
    distinct: DistinctSketch

    @property
    def n(self) -> int:
        """Finite values counted in the statistics."""
        return self.summary.n

    @property
    def missing(self) -> int:
        """Nulls and NaNs: the values a model would see as missing."""
        return self.null_count + self.nan_count

    @property
    def null_rate(self) -> float:
        return self.missing / self.count if self.count else 0.0

    @property
    def variance(self) -> float:
        return self.m2 / (self.n - 1) if self.n > 1 else 0.0

    @property
    def std(self) -> float:
        return float(np.sqrt(self.variance))

    @property
    def n_distinct(self) -> float:
        return self.distinct.estimate()

    def quantiles(self, qs: Sequence[float] = QUANTILES) -> dict[str, float | None]:
        vals = self.summary.quantiles(qs)
        return {f"p{round(q * 100):02d}": _num(v) for q, v in zip(qs, vals, strict=True)}

    def histogram(self, bins: int = 30) -> dict[str, list[float]]:
        """Equal-width histogram from the quantile summary (counts within ``rank_error``)."""
        if self.n == 0:
            return {"edges": [], "counts": []}
        lo, hi = self.min, self.max
        if hi <= lo:
            return {"edges": [lo, hi], "counts": [float(self.n)]}
        edges = np.linspace(lo, hi, bins + 1)
        counts, _ = self.summary.bin_counts(edges[1:-1])
        return {"edges": edges.tolist(), "counts": counts.tolist()}

    def to_dict(self) -> dict[str, Any]:
        s = self.summary
        return {
            "name": self.name,
            "kind": self.kind,
            "arrow_type": self.arrow_type,
            "count": self.count,
            "null_count": self.null_count,
            "nan_count": self.nan_count,
            "inf_count": self.inf_count,
            "min": _num(self.min),
            "max": _num(self.max),
            "mean": _num(self.mean),
            "m2": _num(self.m2),
            "integer_valued": self.integer_valued,
            "summary": {
                "n": s.n,
                "values": _b64(s.values, "<f8"),
                "lt_lo": _b64(s.lt_lo, "<i8"),
                "lt_hi": _b64(s.lt_hi, "<i8"),
                "le_lo": _b64(s.le_lo, "<i8"),
                "le_hi": _b64(s.le_hi, "<i8"),
            },
            "distinct": {"k": self.distinct.k, "hashes": _b64(self.distinct.hashes, "<u8")},
        }

    def describe(self) -> dict[str, Any]:
        """Human-facing statistics (no arrays), for reports and ``--json`` output."""
        return {
            "name": self.name,
            "kind": self.kind,
            "type": self.arrow_type,
            "count": self.count,
            "missing": self.missing,
            "null_rate": self.null_rate,
            "inf_count": self.inf_count,
            "distinct": round(self.n_distinct) if np.isfinite(self.n_distinct) else None,
            "distinct_exact": self.distinct.exact,
            "min": _num(self.min),
            "max": _num(self.max),
            "mean": _num(self.mean),
            "std": _num(self.std),
            "quantiles": self.quantiles(),
            "quantile_rank_error": self.summary.rank_error,
        }


@dataclass(frozen=True)
class CategoricalColumnProfile:
    """Exact counts of the most frequent categories, the rest in ``other_count``."""

    name: str
    kind: str  # "categorical" or "boolean"
    arrow_type: str
    count: int
    null_count: int
    labels: tuple[str, ...]  # by count, descending, then by label
    counts: np.ndarray  # int64, aligned with labels
    other_count: int
    distinct: DistinctSketch

    @property
    def n(self) -> int:
        return self.count - self.null_count

    @property
    def missing(self) -> int:
        return self.null_count

    @property
    def null_rate(self) -> float:
        return self.null_count / self.count if self.count else 0.0

    @property
    def n_distinct(self) -> float:
        return self.distinct.estimate()

    @property
    def exact(self) -> bool:
        """True when every category is counted by name (none folded into "other")."""
        return self.other_count == 0

    def frequencies(self) -> dict[str, int]:
        return dict(zip(self.labels, (int(c) for c in self.counts), strict=True))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "arrow_type": self.arrow_type,
            "count": self.count,
            "null_count": self.null_count,
            "labels": list(self.labels),
            "counts": _b64(self.counts, "<i8"),
            "other_count": self.other_count,
            "distinct": {"k": self.distinct.k, "hashes": _b64(self.distinct.hashes, "<u8")},
        }

    def describe(self, top: int = 10) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "type": self.arrow_type,
            "count": self.count,
            "missing": self.missing,
            "null_rate": self.null_rate,
            "distinct": round(self.n_distinct),
            "distinct_exact": self.distinct.exact,
            "top": [
                {"value": lab, "count": int(c)}
                for lab, c in zip(self.labels[:top], self.counts[:top], strict=True)
            ],
            "other_count": self.other_count,
        }


ColumnProfile = NumericColumnProfile | CategoricalColumnProfile


# -- building -------------------------------------------------------------------------
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def numeric_values(column: pa.ChunkedArray | pa.Array, kind: str) -> tuple[np.ndarray, int]:
    """The column as float64 (datetimes as epoch seconds) without nulls, and its null count."""
    nulls = int(column.null_count)
    col = pc.drop_null(column) if nulls else column
    dtype = col.type
    if kind == "datetime":
        if pa.types.is_date32(dtype):
            scale = 86400.0
        elif pa.types.is_date64(dtype):
            scale = 1e-3
        else:
            scale = _TIME_UNITS[getattr(dtype, "unit", "s")]
        if pa.types.is_date32(dtype):
            col = pc.cast(col, pa.int32())  # Arrow casts date32 only to its own width
        ints = pc.cast(col, pa.int64()) if not pa.types.is_integer(col.type) else col
        arr = _to_numpy(ints).astype(np.float64) * scale
    elif pa.types.is_null(dtype):
        arr = np.zeros(0)
    else:
        arr = _to_numpy(col)
        if arr.dtype != np.float64:
            arr = arr.astype(np.float64)
    return arr, nulls


def _to_numpy(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray):
        if col.num_chunks == 1:
            return col.chunk(0).to_numpy(zero_copy_only=False)
        return col.to_numpy()
    return col.to_numpy(zero_copy_only=False)


def _sum_sq_dev(x: np.ndarray, mean: float, chunk: int = 1 << 16) -> float:
    """Sum of squared deviations from ``mean``, in chunks (no copy of the column).

    Plain ufuncs, not ``np.dot``: BLAS called from several threads at once can stall.
    """
    total = 0.0
    for i in range(0, x.size, chunk):
        d = x[i : i + chunk] - mean
        np.square(d, out=d)
        total += float(d.sum())
    return total


def numeric_profile(
    name: str,
    column: pa.ChunkedArray | pa.Array,
    kind: str,
    *,
    k: int,
    distinct_k: int,
    values: tuple[np.ndarray, int] | None = None,
    grid: Grid | None = None,
    sketch_distinct: bool = True,
    exact_quantiles: bool = True,
) -> tuple[NumericColumnProfile, Buckets]:
    """The profile of a numeric/datetime column and its finite values, bucketed.

    ``values`` (from :func:`numeric_values`) and ``grid`` let a caller that compares two
    columns read them once and bucket both on one grid. ``sketch_distinct=False`` skips
    hashing a continuous column for its distinct count (``n_distinct`` is then NaN);
    ``exact_quantiles=False`` reads the quantile summary off the bucket counts (bounded,
    no pass over the values) unless the column has few distinct values.
    """
    raw, nulls = values if values is not None else numeric_values(column, kind)
    finite = np.isfinite(raw)
    n_finite = int(np.count_nonzero(finite))
    n_nan = int(np.count_nonzero(np.isnan(raw))) if n_finite < raw.size else 0
    n_inf = int(raw.size - n_finite - n_nan)
    x = raw[finite] if n_finite < raw.size else raw
    if x.size:
        lo, hi = float(x.min()), float(x.max())
    else:
        lo, hi = float("nan"), float("nan")
    buckets = Buckets.build(x, grid if grid is not None else grid_for([x], bounds=(lo, hi)))
    hashes: np.ndarray | None
    if x.size:
        distinct_values = buckets.distinct_values()
        mean = float(x.mean())
        m2 = _sum_sq_dev(x, mean)
        if distinct_values is not None:
            uniq = distinct_values[0]
            integer_valued = bool(np.all(uniq == np.round(uniq)))
            hashes = hash_floats(uniq)
        else:
            step = max(1, x.size // 4096)
            integer_valued = bool(np.all(x[::step] == np.round(x[::step]))) and bool(
                np.all(x == np.round(x))
            )
            hashes = hash_floats(x) if sketch_distinct else None
    else:
        distinct_values = None
        mean, m2 = float("nan"), 0.0
        integer_valued = False
        hashes = np.zeros(0, dtype=np.uint64)
    profile = NumericColumnProfile(
        name=name,
        kind=kind,
        arrow_type=str(column.type),
        count=len(column),
        null_count=nulls,
        nan_count=n_nan,
        inf_count=n_inf,
        min=lo,
        max=hi,
        mean=mean,
        m2=m2,
        integer_valued=integer_valued,
        summary=(
            QuantileSummary.from_buckets(buckets, k, distinct_values)
            if exact_quantiles or x.size == 0
            else QuantileSummary.from_bucket_counts(buckets, k, lo, hi, distinct_values)
        ),
        distinct=(
            DistinctSketch.from_hashes(hashes, distinct_k)
            if hashes is not None
            else DistinctSketch(0, np.zeros(0, dtype=np.uint64))
        ),
    )
    return profile, buckets


def categorical_profile(
    name: str,
    column: pa.ChunkedArray | pa.Array,
    kind: str,
    *,
    max_categories: int,
    distinct_k: int,
) -> CategoricalColumnProfile:
    """The profile of a string, dictionary or boolean column."""
    nulls = int(column.null_count)
    col = column
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, col.type.value_type)
    if kind == "boolean" or not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = pc.cast(col, pa.string())
    if nulls:
        col = pc.drop_null(col)
    vc = pc.value_counts(col)
    values = vc.field("values")
    counts = vc.field("counts").to_numpy(zero_copy_only=False).astype(np.int64)
    distinct = DistinctSketch.from_hashes(hash_strings(values), distinct_k)
    labels, kept, other = _top_categories(values, counts, max_categories)
    return CategoricalColumnProfile(
        name=name,
        kind=kind,
        arrow_type=str(column.type),
        count=len(column),
        null_count=nulls,
        labels=labels,
        counts=kept,
        other_count=other,
        distinct=distinct,
    )


def _top_categories(
    values: pa.Array | np.ndarray, counts: np.ndarray, limit: int
) -> tuple[tuple[str, ...], np.ndarray, int]:
    """The ``limit`` most frequent categories (ties by label) and the count of the rest."""
    if counts.size > limit:
        # Take a superset by count first so only a few labels become Python strings.
        cut = np.partition(counts, counts.size - limit)[counts.size - limit]
        cand = np.flatnonzero(counts >= cut)
    else:
        cand = np.arange(counts.size)
    if isinstance(values, np.ndarray):
        cand_labels = values[cand].astype(str)
    else:
        cand_labels = np.asarray(values.take(pa.array(cand)).to_pylist(), dtype=object).astype(str)
    order = np.lexsort((cand_labels, -counts[cand]))[:limit]
    kept_counts = counts[cand][order]
    labels = tuple(str(x) for x in cand_labels[order])
    other = int(counts.sum() - kept_counts.sum())
    return labels, kept_counts.astype(np.int64), other


# -- merging and loading ------------------------------------------------------------
def merge_columns(
    parts: Sequence[ColumnProfile], *, k: int, max_categories: int
) -> ColumnProfile:
    """One profile of a column from the profiles of its partitions."""
    # A partition where the column is all null or empty can have Arrow type "null" (e.g. a
    # pandas object column): no values, no type of its own, so it adds only its rows (all
    # null) to the typed partitions instead of clashing with their kind.
    typed = [p for p in parts if p.arrow_type != "null"]
    if typed and len(typed) < len(parts):
        merged = merge_columns(typed, k=k, max_categories=max_categories)
        extra = sum(p.count for p in parts if p.arrow_type == "null")
        return replace(merged, count=merged.count + extra, null_count=merged.null_count + extra)
    first = parts[0]
    kinds = {p.kind for p in parts}
    if len(kinds) > 1:
        raise DataError(
            f"Column {first.name!r} has different kinds in different partitions "
            f"({', '.join(sorted(kinds))}); cast it to one type before profiling."
        )
    distinct = DistinctSketch.merge([p.distinct for p in parts])
    if isinstance(first, NumericColumnProfile):
        nums = [p for p in parts if isinstance(p, NumericColumnProfile)]
        return _merge_numeric(nums, k, distinct)
    cats = [p for p in parts if isinstance(p, CategoricalColumnProfile)]
    all_labels = np.concatenate([np.asarray(p.labels, dtype=object) for p in cats]).astype(str)
    all_counts = np.concatenate([p.counts for p in cats])
    uniq, inverse = np.unique(all_labels, return_inverse=True)
    summed = np.bincount(inverse, weights=all_counts, minlength=uniq.size).astype(np.int64)
    labels, kept, other = _top_categories(uniq, summed, max_categories)
    return replace(
        cats[0],
        count=sum(p.count for p in cats),
        null_count=sum(p.null_count for p in cats),
        labels=labels,
        counts=kept,
        other_count=other + sum(p.other_count for p in cats),
        distinct=distinct,
    )


def _merge_numeric(
    parts: Sequence[NumericColumnProfile], k: int, distinct: DistinctSketch
) -> NumericColumnProfile:
    live = [p for p in parts if p.n > 0]
    n = sum(p.n for p in live)
    if live:
        # Chan et al.'s parallel update of the mean and the sum of squared deviations.
        ns = np.array([p.n for p in live], dtype=np.float64)
        means = np.array([p.mean for p in live])
        mean = float((ns * means).sum() / n)
        m2 = float(sum(p.m2 for p in live) + (ns * np.square(means - mean)).sum())
        lo, hi = min(p.min for p in live), max(p.max for p in live)
    else:
        mean, m2, lo, hi = float("nan"), 0.0, float("nan"), float("nan")
    return replace(
        parts[0],
        count=sum(p.count for p in parts),
        null_count=sum(p.null_count for p in parts),
        nan_count=sum(p.nan_count for p in parts),
        inf_count=sum(p.inf_count for p in parts),
        min=lo,
        max=hi,
        mean=mean,
        m2=m2,
        integer_valued=all(p.integer_valued for p in live) if live else False,
        summary=QuantileSummary.merge([p.summary for p in parts], k),
        distinct=distinct,
    )


def column_from_dict(d: dict[str, Any]) -> ColumnProfile:
    """The inverse of ``to_dict``."""
    distinct = DistinctSketch(int(d["distinct"]["k"]), _unb64(d["distinct"]["hashes"], "<u8"))
    if d["kind"] in ("numeric", "datetime"):
        s = d["summary"]
        summary = QuantileSummary(
            int(s["n"]),
            _unb64(s["values"], "<f8"),
            _unb64(s["lt_lo"], "<i8"),
            _unb64(s["lt_hi"], "<i8"),
            _unb64(s["le_lo"], "<i8"),
            _unb64(s["le_hi"], "<i8"),
        )

        def _f(key: str) -> float:
            v = d[key]
            return float("nan") if v is None else float(v)

        return NumericColumnProfile(
            name=d["name"],
            kind=d["kind"],
            arrow_type=d["arrow_type"],
            count=int(d["count"]),
            null_count=int(d["null_count"]),
            nan_count=int(d["nan_count"]),
            inf_count=int(d["inf_count"]),
            min=_f("min"),
            max=_f("max"),
            mean=_f("mean"),
            m2=_f("m2") if d["m2"] is not None else 0.0,
            integer_valued=bool(d["integer_valued"]),
            summary=summary,
            distinct=distinct,
        )
    return CategoricalColumnProfile(
        name=d["name"],
        kind=d["kind"],
        arrow_type=d["arrow_type"],
        count=int(d["count"]),
        null_count=int(d["null_count"]),
        labels=tuple(d["labels"]),
        counts=_unb64(d["counts"], "<i8"),
        other_count=int(d["other_count"]),
        distinct=distinct,
    )
