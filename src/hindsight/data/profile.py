"""Dataset profiles: computed once, merged across partitions, stored, and reused as a reference.

>>> import numpy as np, pyarrow as pa
>>> rng = np.random.default_rng(0)
>>> table = pa.table({"age": rng.normal(40, 10, 1000), "plan": rng.choice(["a", "b"], 1000)})
>>> prof = profile(table)
>>> prof.n_rows, prof["plan"].frequencies()["a"] + prof["plan"].frequencies()["b"]
(1000, 1000)
>>> prof.to_bytes() == profile(table).to_bytes()
True
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from hindsight._validation import Interval, validate_params
from hindsight.data.buckets import Buckets, Grid
from hindsight.data.columns import (
    ColumnProfile,
    categorical_profile,
    column_from_dict,
    merge_columns,
    numeric_profile,
)
from hindsight.data.frames import column_kind, is_distributed, to_arrow
from hindsight.errors import DataError

__all__ = [
    "FORMAT_VERSION",
    "DatasetProfile",
    "ProfileOptions",
    "profile",
    "profile_column",
    "profile_table",
]

#: Version of the serialised profile; bumped when its shape changes.
FORMAT_VERSION = 1
_MAGIC = "hindsight.profile"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ProfileOptions:
    """How much a profile keeps. Larger ``quantile_knots`` means smaller rank error."""

    #: Knots of each numeric column's quantile summary; exact up to this many + 1 distinct
    #: values, otherwise rank error 1/knots (one partition) or about 2/knots (merged).
    quantile_knots: int = 2048
    #: Categories counted by name per column; the rest go to an "other" bucket.
    max_categories: int = 1000
    #: Size of the distinct-count sketch (exact below it; ~3 % error at 1024).
    distinct_k: int = 1024
    #: Threads profiling columns side by side (0: one per CPU, at most 8).
    threads: int = 0

    def __post_init__(self) -> None:
        validate_params(
            "ProfileOptions",
            asdict(self),
            {
                "quantile_knots": Interval(int, 16, 1 << 20),
                "max_categories": Interval(int, 1, 1 << 24),
                "distinct_k": Interval(int, 16, 1 << 20),
                "threads": Interval(int, 0, 256),
            },
        )

    def workers(self, n_columns: int) -> int:
        want = self.threads or min(os.cpu_count() or 1, 8)
        return max(1, min(want, n_columns))


@dataclass(frozen=True)
class DatasetProfile:
    """Per-column summaries of a dataset; deterministic, mergeable, serialisable."""

    n_rows: int
    columns: Mapping[str, ColumnProfile]
    options: ProfileOptions
    skipped: Mapping[str, str]  # unsupported columns and their Arrow types
    version: int = FORMAT_VERSION

    def __getitem__(self, name: str) -> ColumnProfile:
        try:
            return self.columns[name]
        except KeyError:
            raise DataError(
                f"The profile has no column {name!r}. Columns: {', '.join(self.columns)}."
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def schema(self) -> dict[str, str]:
        """Column name -> kind (numeric, datetime, categorical, boolean)."""
        return {name: col.kind for name, col in self.columns.items()}

    # -- serialisation ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _MAGIC,
            "version": self.version,
            "n_rows": self.n_rows,
            "options": asdict(self.options),
            "skipped": dict(self.skipped),
            "columns": [col.to_dict() for col in self.columns.values()],
        }

    def _canonical(self) -> str:
        return _canonical_json(self.to_dict())

    def to_bytes(self) -> bytes:
        """Compressed, canonical bytes: the same data always gives the same bytes."""
        return zlib.compress(self._canonical().encode("utf-8"), 6)

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON form, for telling references apart."""
        return hashlib.sha256(self._canonical().encode("utf-8")).hexdigest()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DatasetProfile:
        if d.get("format") != _MAGIC:
            raise DataError("This is not a hindsight profile (its 'format' field is missing).")
        version = int(d.get("version", 0))
        if version > FORMAT_VERSION:
            raise DataError(
                f"This profile has format version {version}, newer than this hindsight "
                f"understands ({FORMAT_VERSION}). Upgrade hindsight to read it."
            )
        columns = {c["name"]: column_from_dict(c) for c in d["columns"]}
        return cls(
            n_rows=int(d["n_rows"]),
            columns=columns,
            options=ProfileOptions(**d["options"]),
            skipped=dict(d.get("skipped", {})),
            version=FORMAT_VERSION,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> DatasetProfile:
        try:
            text = zlib.decompress(data).decode("utf-8")
            payload = json.loads(text)
        except (zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"Could not read the profile: the bytes are damaged ({exc}).") from exc
        prof = cls.from_dict(payload)
        if _canonical_json(payload) == text:  # written canonically: the digest is known
            prof.__dict__["digest"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return prof

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the profile to a file (conventionally ``*.hsprof``); returns the path."""
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(target)  # atomic: a crash never leaves half a profile
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DatasetProfile:
        p = Path(path)
        if not p.is_file():
            raise DataError(f"No profile file at {str(p)!r}.")
        return cls.from_bytes(p.read_bytes())

    # -- merging ------------------------------------------------------------------
    @classmethod
    def merge(cls, profiles: Sequence[DatasetProfile]) -> DatasetProfile:
        """The profile of the union of the rows behind ``profiles`` (e.g. partitions)."""
        if not profiles:
            raise DataError("merge() needs at least one profile.")
        first = profiles[0]
        for other in profiles[1:]:
            if list(other.columns) != list(first.columns):
                raise DataError(
                    "Profiles to merge must have the same columns in the same order; got "
                    f"{list(first.columns)} and {list(other.columns)}."
                )
            if other.options != first.options:
                raise DataError("Profiles to merge must be built with the same ProfileOptions.")
        opts = first.options
        columns = {
            name: merge_columns(
                [p.columns[name] for p in profiles],
                k=opts.quantile_knots,
                max_categories=opts.max_categories,
            )
            for name in first.columns
        }
        return cls(
            n_rows=sum(p.n_rows for p in profiles),
            columns=columns,
            options=opts,
            skipped=dict(first.skipped),
        )

    def describe(self) -> dict[str, Any]:
        """Human-facing statistics of every column (no arrays)."""
        return {
            "n_rows": self.n_rows,
            "columns": {name: col.describe() for name, col in self.columns.items()},
            "skipped": dict(self.skipped),
        }


def _canonical_json(d: Mapping[str, Any]) -> str:
    return json.dumps(d, sort_keys=True, separators=(",", ":"), allow_nan=False)


def profile_column(
    name: str,
    column: pa.ChunkedArray | pa.Array,
    options: ProfileOptions,
    *,
    values: tuple[np.ndarray, int] | None = None,
    grid: Grid | None = None,
    sketch_distinct: bool = True,
    exact_quantiles: bool = True,
) -> tuple[ColumnProfile | None, Buckets | None]:
    """One column's profile (``None`` if its type is unsupported) and, if numeric, its
    finite values bucketed (on ``grid`` when given)."""
    kind = column_kind(column.type)
    if kind is None:
        return None, None
    if kind in ("numeric", "datetime"):
        return numeric_profile(
            name,
            column,
            kind,
            k=options.quantile_knots,
            distinct_k=options.distinct_k,
            values=values,
            grid=grid,
            sketch_distinct=sketch_distinct,
            exact_quantiles=exact_quantiles,
        )
    cat = categorical_profile(
        name,
        column,
        kind,
        max_categories=options.max_categories,
        distinct_k=options.distinct_k,
    )
    return cat, None


def profile_table(
    table: pa.Table,
    options: ProfileOptions | None = None,
    *,
    progress: Progress | None = None,
) -> DatasetProfile:
    """Profile an Arrow table in memory, several columns at a time."""
    opts = options or ProfileOptions()
    names = table.column_names

    def one(name: str) -> ColumnProfile | None:
        prof, _ = profile_column(name, table.column(name), opts)
        if progress is not None:
            progress(name)
        return prof

    with ThreadPoolExecutor(opts.workers(len(names))) as pool:
        results = list(pool.map(one, names))
    columns: dict[str, ColumnProfile] = {}
    skipped: dict[str, str] = {}
    for name, prof in zip(names, results, strict=True):
        if prof is None:
            skipped[name] = str(table.schema.field(name).type)
        else:
            columns[name] = prof
    return DatasetProfile(n_rows=table.num_rows, columns=columns, options=opts, skipped=skipped)


def profile(
    data: Any,
    options: ProfileOptions | None = None,
    *,
    progress: Progress | None = None,
    **option_overrides: Any,
) -> DatasetProfile:
    """Profile a pandas/polars/Arrow frame, a Parquet/CSV path, or a Dask/Spark DataFrame.

    Keyword options (``quantile_knots=``, ``max_categories=``...) override ``options``.
    Dask and Spark frames are profiled partition by partition where they live, then merged.
    """
    opts = options or ProfileOptions()
    if option_overrides:
        opts = ProfileOptions(**{**asdict(opts), **option_overrides})
    engine = is_distributed(data)
    if engine is not None:
        from hindsight.data import distributed

        if engine == "dask":
            return distributed.profile_dask(data, opts)
        return distributed.profile_spark(data, opts)
    table = to_arrow(data)
    return profile_table(table, opts, progress=progress)

