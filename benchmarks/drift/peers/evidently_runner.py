"""Evidently ``DataDriftPreset`` (Evidently 0.7 API) on the reference and current tables.

Configuration: ``Report([DataDriftPreset()], include_tests=True)``, all defaults: the
drift method per column is Evidently's automatic choice (over 1,000 rows: normed
Wasserstein distance for numeric columns, Jensen-Shannon distance for categorical ones
and for numeric columns it treats as categorical, threshold 0.1 for both). A column is
flagged when its "Value Drift for column ..." test fails. Timed: ``report.run`` and
reading the verdicts from the snapshot. Data: pandas DataFrames made from the Arrow
tables before the clock starts.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from _harness import main, measured, on_pandas


def compute(ref: Any, cur: Any) -> tuple[list[str], dict[str, str]]:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    report = Report([DataDriftPreset()], include_tests=True)
    snapshot = report.run(current_data=cur, reference_data=ref)
    result = snapshot.dict()
    flagged, methods = [], {}
    for metric in result["metrics"]:
        cfg = metric.get("config", {})
        if "column" in cfg:
            methods[cfg["column"]] = f"{cfg.get('method')} >= {cfg.get('threshold')}"
    for test in result["tests"]:
        params = test.get("metric_config", {}).get("params", {})
        status = getattr(test.get("status"), "value", test.get("status"))
        if "column" in params and str(status).upper() == "FAIL":
            flagged.append(params["column"])
    return flagged, methods


def body(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    t0 = time.perf_counter()
    import evidently
    import evidently.presets

    import_s = time.perf_counter() - t0

    def flag(ref: Any, cur: Any) -> tuple[list[str], dict[str, Any]]:
        flagged, methods = compute(ref, cur)
        return flagged, {"methods": methods}

    meter, base, data_bytes, flagged, extra = on_pandas(args, flag)
    return measured(
        meter, base, data_bytes, flagged,
        version=evidently.__version__, import_seconds=import_s,
        config="Report([DataDriftPreset()], include_tests=True), defaults",
        **extra,
    )

if __name__ == "__main__":
    raise SystemExit(main(body))
