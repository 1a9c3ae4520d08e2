"""NannyML ``UnivariateDriftCalculator`` with its default methods, chunking and thresholds.

Configuration: ``UnivariateDriftCalculator(column_names=<all 25 columns>)`` and nothing
else: the default methods are ``jensen_shannon`` for continuous and for categorical
columns (NannyML decides which is which), the default chunker splits each data set into
10 chunks, and the default threshold of each method is the reference chunks' mean +/- 3
standard deviations of the chunk-level statistic. A column is flagged when any of its 10
analysis chunks raises an alert (NannyML's alert count per column > 0; the counts are
reported). Timed: ``fit(reference)``, ``calculate(current)`` and reading the alerts.
Data: pandas DataFrames made before the clock starts.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from _harness import main, measured, on_pandas


def compute(ref: Any, cur: Any) -> tuple[list[str], dict[str, Any]]:
    import nannyml

    columns = list(ref.columns)
    calc = nannyml.UnivariateDriftCalculator(column_names=columns)
    calc.fit(ref)
    frame = calc.calculate(cur).filter(period="analysis").to_df()
    flagged, methods, alert_counts, chunks = [], {}, {}, 0
    for col in columns:
        for method in frame[col].columns.get_level_values(0).unique():
            methods[col] = method
            alerts = frame[(col, method, "alert")].astype(bool)
            chunks = len(alerts)
            alert_counts[col] = int(alerts.sum())
            if alert_counts[col]:
                flagged.append(col)
    return flagged, {
        "methods": methods, "analysis_chunks": chunks, "alerting_chunks": alert_counts,
        "categorical": sorted(getattr(calc, "categorical_column_names", []) or []),
    }


def body(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
    t0 = time.perf_counter()
    import nannyml

    import_s = time.perf_counter() - t0
    meter, base, data_bytes, flagged, extra = on_pandas(args, compute)
    return measured(
        meter, base, data_bytes, flagged,
        version=nannyml.__version__, import_seconds=import_s,
        config="UnivariateDriftCalculator(column_names=all), default methods/chunker/"
               "thresholds; flagged if any analysis chunk alerts",
        **extra,
    )

if __name__ == "__main__":
    raise SystemExit(main(body))
