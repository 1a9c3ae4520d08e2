"""alibi-detect ``TabularDrift``: K-S per numeric feature, chi-squared per categorical one.

Configuration: ``TabularDrift(x_ref, p_val=0.05, categories_per_feature={i: None for
each categorical column i})`` (the values of each categorical feature are inferred from
the reference; alibi-detect counts on the union of reference and current values), then
``predict(x, drift_type="feature")``, which flags each feature at its own p < 0.05 (the
same per-column rule as the SciPy baseline; the default Bonferroni correction only
applies to ``drift_type="batch"``). TabularDrift takes one numeric 2-D array: the string
columns are integer-coded with one shared vocabulary per column, and nulls stay NaN,
before the clock starts. Timed: the detector's construction (it preprocesses the
reference) and ``predict``.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from _harness import PeakMeter, baseline, head, main, measured, warm_up


def to_arrays(ref_t: Any, cur_t: Any) -> tuple[Any, Any, list[int]]:
    """Both tables as float64 arrays (strings integer-coded on a shared vocabulary)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = ref_t.column_names
    cat_idx = [i for i, f in enumerate(ref_t.schema) if pa.types.is_string(f.type)]
    x_ref = np.empty((ref_t.num_rows, len(columns)), dtype=np.float64)
    x_cur = np.empty((cur_t.num_rows, len(columns)), dtype=np.float64)
    for i, name in enumerate(columns):
        r, c = ref_t.column(name), cur_t.column(name)
        if i in cat_idx:
            vocab = pc.unique(pa.chunked_array(r.chunks + c.chunks))
            r, c = pc.index_in(r, value_set=vocab), pc.index_in(c, value_set=vocab)
        x_ref[:, i] = r.to_numpy(zero_copy_only=False).astype(np.float64)
        x_cur[:, i] = c.to_numpy(zero_copy_only=False).astype(np.float64)
    return x_ref, x_cur, cat_idx


def compute(x_ref: Any, x_cur: Any, cat_idx: list[int]) -> tuple[Any, Any]:
    import numpy as np
    from alibi_detect.cd import TabularDrift

    detector = TabularDrift(x_ref, p_val=0.05, categories_per_feature={i: None for i in cat_idx})
    pred = detector.predict(x_cur, drift_type="feature", return_p_val=True)
    return np.asarray(pred["data"]["is_drift"]).ravel(), np.asarray(pred["data"]["p_val"])


def body(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    t0 = time.perf_counter()
    import alibi_detect
    import alibi_detect.cd
    import numpy as np
    import pyarrow.parquet as pq

    import_s = time.perf_counter() - t0
    warm_s = warm_up(lambda: compute(*to_arrays(head(args.ref), head(args.cur))))
    base = baseline()
    ref_t, cur_t = pq.read_table(args.ref), pq.read_table(args.cur)
    data_bytes = ref_t.nbytes + cur_t.nbytes
    columns = ref_t.column_names
    x_ref, x_cur, cat_idx = to_arrays(ref_t, cur_t)
    del ref_t, cur_t

    with PeakMeter() as meter:
        is_drift, p_vals = compute(x_ref, x_cur, cat_idx)
        flagged = [columns[i] for i in range(len(columns)) if is_drift[i]]
    p_vals = p_vals.astype(float).ravel()
    return measured(
        meter, base, data_bytes, flagged,
        version=alibi_detect.__version__, import_seconds=import_s, warm_up_seconds=warm_s,
        array_bytes=int(x_ref.nbytes + x_cur.nbytes),
        config="TabularDrift(p_val=0.05, categories_per_feature={cat: None}), "
               "predict(drift_type='feature')",
        p_values={columns[i]: (None if np.isnan(p) else float(p)) for i, p in enumerate(p_vals)},
    )


if __name__ == "__main__":
    raise SystemExit(main(body))
