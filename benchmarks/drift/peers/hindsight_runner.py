"""hindsight's drift report, in the project's own virtualenv.

Modes (``--mode``):

- ``raw``: both Arrow tables loaded (not timed), then timed
  ``hindsight.drift_report(ref_table, cur_table)``.
- ``make-profile``: loads the reference only, ``hindsight.profile(ref_table).save(path)``
  (run by the orchestrator before ``profile``; its time is reported, never a target).
- ``profile``: only the current table is loaded (not timed); timed
  ``hindsight.drift_report(hindsight.DatasetProfile.load(path), cur_table)``.

Before the baseline, the same calls run once on the first 2,000 rows of each file (a
small profile of its own in ``profile`` mode), so that modules hindsight imports lazily
count as imports, as for every peer. Flagged columns: ``report.drifted_columns``. All
defaults. When the API is not there (yet) the runner reports ``hindsight API not
available: <error>``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

from _harness import PeakMeter, baseline, head, main, measured, warm_up


def body(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    import pyarrow.parquet as pq

    try:
        import hindsight

        drift_report = hindsight.drift_report
        make_profile = hindsight.profile
        load_profile = hindsight.DatasetProfile.load
    except Exception as exc:  # missing, half-written or broken: reported, not raised
        return {"error": f"hindsight API not available: {type(exc).__name__}: {exc}"}
    import_s = time.perf_counter() - t0
    version = getattr(hindsight, "__version__", "?")

    if args.mode == "make-profile":
        ref = pq.read_table(args.ref)
        t1 = time.perf_counter()
        make_profile(ref).save(args.profile)
        return {"seconds": time.perf_counter() - t1, "version": version, "flagged": [],
                "profile_bytes": os.path.getsize(args.profile)}

    if args.mode == "raw":
        warm_s = warm_up(lambda: drift_report(head(args.ref), head(args.cur)))
        base = baseline()
        ref, cur = pq.read_table(args.ref), pq.read_table(args.cur)
        data_bytes = ref.nbytes + cur.nbytes
        with PeakMeter() as meter:
            report = drift_report(ref, cur)
            flagged = list(report.drifted_columns)
        extra: dict[str, Any] = {"config": "drift_report(ref_table, cur_table), defaults"}
    elif args.mode == "profile":
        with tempfile.TemporaryDirectory() as tmp:
            small = os.path.join(tmp, "small.profile")

            def warm() -> None:
                make_profile(head(args.ref)).save(small)
                drift_report(load_profile(small), head(args.cur))

            warm_s = warm_up(warm)
        base = baseline()
        cur = pq.read_table(args.cur)
        data_bytes = cur.nbytes
        with PeakMeter() as meter:
            prof = load_profile(args.profile)
            report = drift_report(prof, cur)
            flagged = list(report.drifted_columns)
        extra = {"config": "drift_report(DatasetProfile.load(path), cur_table), defaults",
                 "profile_bytes": os.path.getsize(args.profile)}
    else:
        raise ValueError(f"unknown mode {args.mode!r}")
    return measured(meter, base, data_bytes, flagged, version=version,
                    import_seconds=import_s, warm_up_seconds=warm_s, **extra)


if __name__ == "__main__":
    raise SystemExit(main(body))
