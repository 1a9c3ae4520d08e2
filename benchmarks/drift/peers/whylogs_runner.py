"""whylogs: profile both data sets, then its drift scores between the two profiles.

Configuration: ``why.log(pandas=df).view()`` for the reference and the current data
(default profiling: KLL sketches for numbers, frequent-item sketches for strings), then
``whylogs.viz.drift.column_drift_algorithms.calculate_drift_scores(target_view=current,
reference_view=reference, with_thresholds=True)`` with its default algorithm per column
(K-S test on the sketches for numeric columns, chi-squared on frequent items for
categorical ones) and default thresholds (p < 0.05 is ``DRIFT``, 0.05 <= p < 0.15 is
``POSSIBLE_DRIFT``). A column is flagged when its category is ``DRIFT``; the
``POSSIBLE_DRIFT`` columns are reported beside. Timed: profiling both data sets and the
scores. Data: pandas DataFrames made before the clock starts.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from _harness import main, measured, on_pandas


def compute(ref: Any, cur: Any) -> tuple[list[str], dict[str, Any]]:
    import whylogs as why
    from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores

    t0 = time.perf_counter()
    ref_view = why.log(pandas=ref).view()
    cur_view = why.log(pandas=cur).view()
    profile_s = time.perf_counter() - t0
    scores = calculate_drift_scores(target_view=cur_view, reference_view=ref_view,
                                    with_thresholds=True)
    flagged = [c for c, s in scores.items() if s and s.get("drift_category") == "DRIFT"]
    return flagged, {
        "profile_seconds": profile_s,
        "possible_drift": sorted(c for c, s in scores.items()
                                 if s and s.get("drift_category") == "POSSIBLE_DRIFT"),
        "algorithms": {c: s.get("algorithm") for c, s in scores.items() if s},
        "p_values": {c: s.get("pvalue") for c, s in scores.items() if s},
        "unscored": sorted(c for c, s in scores.items() if not s),
    }


def body(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")
    t0 = time.perf_counter()
    import whylogs
    import whylogs.viz.drift.column_drift_algorithms

    import_s = time.perf_counter() - t0
    meter, base, data_bytes, flagged, extra = on_pandas(args, compute)
    return measured(
        meter, base, data_bytes, flagged,
        version=whylogs.__version__, import_seconds=import_s,
        config="why.log(pandas=...) x2 + calculate_drift_scores(with_thresholds=True), "
               "defaults; flagged if DRIFT",
        **extra,
    )

if __name__ == "__main__":
    raise SystemExit(main(body))
