"""Labels that arrive after the predictions, kept as mergeable per-window count tables.

A window keeps no rows, so a late label cannot be matched to its row. Instead each
labelled prediction is counted into the window its prediction belongs to:

* ``label|prediction`` — the confusion matrix (label by predicted value);
* ``label|score_bin`` — the positive-class score of labelled rows, in
  :data:`SCORE_BINS` equal bins per label (AUC and the calibration CBPE needs);
* ``score_bin`` — every prediction's score, labelled or not (``"*"`` segment), counted
  when the batch is logged; CBPE estimates a window's performance from it alone.

All are sums, so windows and references merge by addition, like the profiles. The
join by request id happens before: ``hindsight serve``'s prediction log is joined to
its outcomes in the store (:class:`~hindsight.monitor.sources.PredictionLogSource`);
other stacks either log their request ids with the predictions (``Monitor.log(...,
ids=...)``, kept per window as compact Arrow chunks) and send labels by id later
(:meth:`Monitor.log_outcomes`), or join in their warehouse and call
:meth:`Monitor.log_labels` with the prediction's time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hindsight.errors import DataError

__all__ = ["SCORE_BINS", "decode_keys", "encode_keys", "group_counts", "score_bins"]

#: Equal-width bins of a score in [0, 1].
SCORE_BINS = 100


def score_bins(scores: pa.Array | pa.ChunkedArray | np.ndarray, what: str) -> pa.Array:
    """Each score's bin (``"0"`` to ``"99"``) as strings; null stays null."""
    arr = pa.array(scores) if isinstance(scores, np.ndarray) else scores
    values = pc.cast(arr, pa.float64())
    lo, hi = pc.min(values).as_py(), pc.max(values).as_py()
    if lo is not None and (lo < 0.0 or hi > 1.0 or np.isnan(lo) or np.isnan(hi)):
        raise DataError(
            f"{what} must be probabilities in [0, 1] to be binned; got values from {lo} to {hi}."
        )
    idx = pc.min_element_wise(
        pc.cast(pc.floor(pc.multiply(values, SCORE_BINS)), pa.int64()), SCORE_BINS - 1
    )
    return pc.cast(idx, pa.string())


def group_counts(segments: Any, values: Any) -> dict[str, dict[str, int]]:
    """``{segment: {value: rows}}`` counted with Arrow's group-by (nulls as "(missing)")."""
    grouped = (
        pa.table({"s": pc.cast(segments, pa.string()), "a": pc.cast(values, pa.string())})
        .group_by(["s", "a"])
        .aggregate([([], "count_all")])
    )
    table: dict[str, dict[str, int]] = {}
    for seg, act, n in zip(
        grouped.column("s").to_pylist(),
        grouped.column("a").to_pylist(),
        grouped.column("count_all").to_pylist(),
        strict=True,
    ):
        row = table.setdefault("(missing)" if seg is None else seg, {})
        label = "(missing)" if act is None else act
        row[label] = row.get(label, 0) + int(n)
    return table


def encode_keys(ids: pa.Array, predictions: pa.Array | None, scores: pa.Array | None) -> bytes:
    """One window's request ids with their prediction and score, as Arrow IPC bytes."""
    n = len(ids)
    table = pa.table(
        {
            "id": pc.cast(ids, pa.string()),
            "prediction": pc.cast(predictions, pa.string())
            if predictions is not None
            else pa.nulls(n, pa.string()),
            "score": pc.cast(scores, pa.float64())
            if scores is not None
            else pa.nulls(n, pa.float64()),
        }
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def decode_keys(data: bytes) -> pa.Table:
    """The table :func:`encode_keys` wrote."""
    with pa.ipc.open_stream(pa.py_buffer(data)) as reader:
        return reader.read_all()
