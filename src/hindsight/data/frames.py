"""Read what users hand us (pandas, polars, Arrow, Parquet/CSV paths) as one Arrow table.

Arrow is the common format: pandas and polars are recognised by their type's module
and converted by their own ``to_arrow`` paths, so neither is required. Dask and Spark
frames are not read here; :mod:`hindsight.data.distributed` profiles them where they live.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from hindsight.errors import DataError

__all__ = ["column_kind", "is_distributed", "to_arrow"]


def _module_of(obj: Any) -> str:
    return type(obj).__module__.split(".", 1)[0]


def is_distributed(data: Any) -> str | None:
    """``"dask"`` or ``"spark"`` when ``data`` is such a frame, else ``None``."""
    module = _module_of(data)
    if module in ("dask", "dask_expr") and hasattr(data, "map_partitions"):
        return "dask"
    if module == "pyspark" and hasattr(data, "mapInArrow"):
        return "spark"
    return None


def to_arrow(data: Any, *, what: str = "data") -> pa.Table:
    """``data`` as a :class:`pyarrow.Table`, or a :class:`DataError` saying what to pass."""
    if isinstance(data, pa.Table):
        table = data
    elif isinstance(data, pa.RecordBatch):
        table = pa.Table.from_batches([data])
    elif isinstance(data, str | os.PathLike):
        table = _read_path(Path(data), what)
    elif _module_of(data) == "pandas" and hasattr(data, "columns"):
        table = _from_pandas(data, what)
    elif _module_of(data) == "polars" and hasattr(data, "to_arrow"):
        if hasattr(data, "collect"):  # a LazyFrame
            data = data.collect()
        table = data.to_arrow()
    elif hasattr(data, "__arrow_c_stream__"):
        table = pa.table(data)
    elif isinstance(data, dict):
        try:
            table = pa.table(data)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise DataError(f"The {what} dict could not be read as columns: {exc}.") from exc
    else:
        raise DataError(
            f"Cannot read {what} of type {type(data).__name__}. Pass a pandas or polars "
            "DataFrame, a pyarrow Table, a dict of columns, or a path to a .parquet or .csv file."
        )
    if table.num_columns == 0:
        raise DataError(f"The {what} has no columns.")
    names = table.column_names
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"The {what} has duplicate column names: {', '.join(dupes)}. Rename them.")
    return table


def _read_path(path: Path, what: str) -> pa.Table:
    if not path.exists():
        raise DataError(f"The {what} file {str(path)!r} does not exist.")
    suffix = "".join(path.suffixes[-2:]).lower() if path.is_file() else ""
    try:
        if path.is_dir() or suffix.endswith(".parquet") or suffix.endswith(".pq"):
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if suffix.endswith((".csv", ".csv.gz", ".tsv")):
            import pyarrow.csv as pcsv

            parse = pcsv.ParseOptions(delimiter="\t" if ".tsv" in suffix else ",")
            return pcsv.read_csv(path, parse_options=parse)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"Could not read the {what} file {str(path)!r}: {exc}") from exc
    raise DataError(
        f"Cannot read {str(path)!r}: hindsight reads .parquet (or a folder of them), .csv "
        "and .tsv files. Convert the file or load it yourself and pass the frame."
    )


def _from_pandas(frame: Any, what: str) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        # Name the column with mixed types instead of Arrow's generic message.
        for name in frame.columns:
            try:
                pa.array(frame[name], from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as col_exc:
                kinds = sorted({type(v).__name__ for v in frame[name].dropna().head(1000)})
                raise DataError(
                    f"Column {name!r} of the {what} mixes types ({', '.join(kinds)}); "
                    "cast it to one type (e.g. df[col].astype(str)) first."
                ) from col_exc
        raise DataError(f"The {what} could not be converted to Arrow: {exc}") from exc


def column_kind(dtype: pa.DataType) -> str | None:
    """``numeric``, ``datetime``, ``boolean`` or ``categorical``; ``None`` if unsupported."""
    if pa.types.is_dictionary(dtype):
        return "categorical"
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype) or pa.types.is_duration(dtype):
        return "datetime"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return "categorical"
    if pa.types.is_null(dtype):
        return "numeric"  # an all-null column: counted, nothing else to say
    return None
