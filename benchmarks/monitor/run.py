"""Monitor benchmark: one day of 10,000,000 logged predictions, 25 features, hourly windows.

Data: the drift benchmark's 25 columns (``benchmarks/drift/data.py``: 20 numeric, 5
categorical, 7 of them with a documented drift). A reference of 1,000,000 rows stands
for the training data. The day is 24 hourly Parquet files of about 416,700 rows each
(10,000,284 in all), every hour drawn with its own seed: hours 00-11 from the
reference's distribution, hours 12-23 with the 7 drifts. So 84 (window, column) pairs
drift and 516 do not; any flag on those is a false alarm.

Contenders, each in its own process on the same files, timed end to end (reading each
hourly file included; the reference is prepared before the clock, as a monitor's would
be once at deploy time):

* hindsight: ``Monitor.log`` of each hour as it arrives (windows profiled and stored in
  SQLite, raw rows dropped), then one ``run_monitor`` pass judging the 24 windows with
  ``DriftCheck`` against the stored reference profile (Benjamini-Hochberg across
  columns, LORD++ across windows; the same pass with ``repeated="none"`` is reported
  too, untimed).
* SciPy, the fastest peer of the drift benchmark: per window and column,
  ``ks_2samp`` (numeric) or ``chi2_contingency`` (categorical) against the raw
  reference, flagged at p < 0.05 (as its drift-benchmark runner does).

Printed: seconds, peak RSS over the process's baseline after loading the reference,
flags found / missed / false over the 600 pairs, and SciPy's time over hindsight's.
Targets: hindsight finds every drifted pair with at most 1 % false flags; it is at least
3x faster than SciPy; its peak memory stays under 1.5x one hour of data (it never holds
more than a window), where SciPy's is reported beside it.

Run: .venv/bin/python benchmarks/monitor/run.py [--json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "drift"), str(HERE.parent / "drift" / "peers")]

import data  # noqa: E402  (the drift benchmark's generator)
from _common import Target, report  # noqa: E402

DATA_DIR = HERE / ".data"
HOURS = 24
DRIFT_FROM = 12
MARKER = "MONITOR_RESULT "


def hour_rows(total: int) -> list[int]:
    """Rows per hour; sizes differ by one so every hour has its own seed stream."""
    base = total // HOURS
    return [base + h for h in range(HOURS)]


def ensure_day(total: int) -> tuple[Path, list[Path]]:
    """The reference file and 24 hourly files (made once per size)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = DATA_DIR / f"day_{total}"
    folder.mkdir(parents=True, exist_ok=True)
    ref = folder / "reference.parquet"
    if not ref.exists():
        pq.write_table(data.make_table(max(total // 10, 10_000), current=False), ref)
    hours = []
    for h, n in enumerate(hour_rows(total)):
        p = folder / f"hour_{h:02d}.parquet"
        if not p.exists():
            table = data.make_table(n, current=h >= DRIFT_FROM)
            rng = np.random.default_rng([7, h])
            ts = h * 3600.0 + np.sort(rng.uniform(0, 3600.0, n))
            pq.write_table(table.append_column("ts", pa.array(ts)), p)
        hours.append(p)
    return ref, hours


# -- workers (run in their own process) ----------------------------------------------------


def _hindsight(ref_path: Path, hours: list[Path], store: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq
    from _harness import PeakMeter, rss_bytes

    from hindsight.config import Settings
    from hindsight.data.profile import profile_table
    from hindsight.ledger import Ledger
    from hindsight.monitor import Monitor
    from hindsight.monitor.checks import DriftCheck
    from hindsight.monitor.runner import MonitorPlan, run_monitor

    ledger = Ledger(Settings(home=store, store=f"sqlite:///{store / 'h.db'}"))
    reference = profile_table(pq.read_table(ref_path))  # the training profile, once
    # Warm-up on a tiny monitor, so lazy imports count for neither side.
    warm = Monitor("warm", ledger=ledger)
    warm.log(pq.read_table(hours[0]).slice(0, 2000), timestamps="ts")
    run_monitor(MonitorPlan(warm, reference, (DriftCheck(),)), now=10 * 86_400.0)
    mon = Monitor("day", ledger=ledger)
    base = rss_bytes()
    with PeakMeter() as meter:
        for p in hours:
            mon.log(pq.read_table(p), timestamps="ts")
        result = run_monitor(MonitorPlan(mon, reference, (DriftCheck(),)), now=HOURS * 3600.0)
    flags = {
        (int(w.window_start // 3600), f.key)
        for w in result.windows
        for f in w.findings
        if f.flagged
    }
    plain = Monitor("day", ledger=ledger)
    again = run_monitor(
        MonitorPlan(plain, reference, (DriftCheck(repeated="none"),)),
        now=HOURS * 3600.0,
        since=0.0,
    )
    plain_flags = {
        (int(w.window_start // 3600), f.key) for w in again.windows for f in w.findings if f.flagged
    }
    ledger.close()
    return {
        "seconds": meter.seconds,
        "peak_over_baseline": meter.peak - base,
        "flags": sorted(flags),
        "flags_without_lord": sorted(plain_flags),
        "windows": len(result.windows),
    }


def _scipy(ref_path: Path, hours: list[Path]) -> dict[str, Any]:
    import pyarrow.parquet as pq
    from _harness import PeakMeter, rss_bytes
    from scipy_runner import compute

    ref = pq.read_table(ref_path).to_pandas()
    compute(ref.head(2000), ref.head(2000))  # warm-up
    base = rss_bytes()
    flags = set()
    with PeakMeter() as meter:
        for h, p in enumerate(hours):
            cur = pq.read_table(p).drop_columns(["ts"]).to_pandas()
            for col, pv in compute(ref, cur).items():
                if pv < 0.05:
                    flags.add((h, col))
            del cur
    return {
        "seconds": meter.seconds,
        "peak_over_baseline": meter.peak - base,
        "flags": sorted(flags),
    }


def _worker(args: argparse.Namespace) -> None:
    folder = Path(args.dir)
    ref = folder / "reference.parquet"
    hours = sorted(folder.glob("hour_*.parquet"))
    if args.worker == "hindsight":
        with tempfile.TemporaryDirectory() as tmp:
            out = _hindsight(ref, hours, Path(tmp))
    else:
        out = _scipy(ref, hours)
    print(MARKER + json.dumps(out), flush=True)


# -- orchestration -------------------------------------------------------------------------


def _run(worker: str, folder: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", worker, "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(MARKER):
            return dict(json.loads(line[len(MARKER) :]))
    raise RuntimeError(f"{worker} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def _score(flags: list[list[Any]]) -> dict[str, int]:
    got = {(int(h), str(c)) for h, c in flags}
    truth = {(h, c) for h in range(DRIFT_FROM, HOURS) for c in data.DRIFTED}
    return {"found": len(got & truth), "missed": len(truth - got), "false": len(got - truth)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="1,000,000 rows instead of 10M")
    parser.add_argument("--worker", choices=["hindsight", "scipy"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    total = 1_000_000 if args.quick else 10_000_000
    t0 = time.perf_counter()
    ref, hours = ensure_day(total)
    made = time.perf_counter() - t0
    folder = ref.parent
    hour_bytes = max(p.stat().st_size for p in hours)
    import pyarrow.parquet as pq

    arrow_hour = pq.read_table(hours[-1]).nbytes
    hs = _run("hindsight", folder)
    sp = _run("scipy", folder)
    hs_score, sp_score = _score(hs["flags"]), _score(sp["flags"])
    plain_score = _score(hs["flags_without_lord"])
    negatives = (HOURS * len(data.COLUMNS)) - (HOURS - DRIFT_FROM) * len(data.DRIFTED)
    speed = sp["seconds"] / hs["seconds"]
    mem_ratio = hs["peak_over_baseline"] / arrow_hour
    targets = [
        Target(
            "every drifted (window, column) found, <= 1% false",
            hs_score["found"],
            "pairs",
            f"{(HOURS - DRIFT_FROM) * len(data.DRIFTED)} found, <= {negatives // 100} false",
            hs_score["missed"] == 0 and hs_score["false"] <= negatives // 100,
            extra={"hindsight": hs_score, "scipy": sp_score, "hindsight_without_lord": plain_score},
        ),
        Target(
            "end to end, SciPy / hindsight",
            hs["seconds"],
            "s",
            ">= 3x",
            speed >= 3.0,
            peer=sp["seconds"],
            ratio=speed,
        ),
        Target(
            "peak memory over one hour of data",
            mem_ratio,
            "x",
            "<= 1.5x",
            mem_ratio <= 1.5,
            peer=sp["peak_over_baseline"] / arrow_hour,
        ),
    ]
    info = {
        "rows": sum(hour_rows(total)),
        "windows": HOURS,
        "hindsight": {
            **hs_score,
            "seconds": round(hs["seconds"], 2),
            "peak_MiB": round(hs["peak_over_baseline"] / 2**20),
        },
        "hindsight, no LORD++": plain_score,
        "scipy": {
            **sp_score,
            "seconds": round(sp["seconds"], 2),
            "peak_MiB": round(sp["peak_over_baseline"] / 2**20),
        },
        "one hour": f"{arrow_hour / 2**20:.0f} MiB in Arrow, {hour_bytes / 2**20:.0f} MiB Parquet",
        "data generation (first run only)": f"{made:.1f} s",
    }
    report("monitor: one day of logged predictions", targets, info, args.json)


if __name__ == "__main__":
    main()
