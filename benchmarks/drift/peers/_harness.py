"""What every drift runner shares: arguments, RSS peaks, the one JSON line it prints.

Standard library only (psutil is used when present): the runners run in the peers' own
virtualenvs. A runner imports its library first (not timed), runs the same computation
once on the first 2,000 rows of each file (``warm_up``: modules a library imports lazily
on its first call count as imports too, for every contender alike), records the RSS
then (the baseline), loads the Parquet files (not timed), then times only the drift
computation inside ``PeakMeter``, and prints one line ``DRIFT_RESULT {json}``.

Peak RSS during the computation comes from the kernel's high-water mark (``VmHWM``),
reset just before the computation by writing ``5`` to ``/proc/self/clear_refs``, and
from a thread that samples RSS every 5 ms (the larger of the two is kept; where the
reset is not available only the sampled peak is used). ``peak_over_baseline_bytes`` is
that peak minus the post-import baseline, so it holds the loaded data itself plus what
the computation allocates on top of it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

MARKER = "DRIFT_RESULT "
START_MARKER = "DRIFT_TIMING_START "
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="one drift benchmark run")
    parser.add_argument("--ref", help="reference Parquet file")
    parser.add_argument("--cur", help="current Parquet file")
    parser.add_argument("--mode", default="raw", help="runner-specific mode")
    parser.add_argument("--profile", help="stored reference profile (hindsight runner)")
    return parser.parse_args(argv)


def rss_bytes() -> int:
    """Resident set size of this process now."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _hwm_bytes() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class PeakMeter:
    """Context manager: wall seconds and peak RSS of the block it wraps."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.seconds = 0.0
        self.peak = 0
        self.method = ""
        self._stop = threading.Event()
        self._sampled = 0
        self._hwm_reset = False

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._sampled = max(self._sampled, rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMeter:
        gc.collect()
        self._sampled = rss_bytes()
        self._hwm_reset = _reset_hwm()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        # Lets the orchestrator bound the computation's time if it has to kill the process.
        print(f"{START_MARKER}{time.time()!r}", flush=True)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        self._stop.set()
        self._thread.join()
        self._sampled = max(self._sampled, rss_bytes())
        hwm = _hwm_bytes() if self._hwm_reset else None
        self.peak = max(self._sampled, hwm or 0)
        self.method = "VmHWM reset + 5 ms sampling" if hwm is not None else "5 ms sampling"


def head(path: str, rows: int = 2_000) -> Any:
    """The first ``rows`` rows of a Parquet file, as a pyarrow Table (for the warm-up)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    batch = next(pq.ParquetFile(path).iter_batches(batch_size=rows))
    return pa.Table.from_batches([batch])


def warm_up(fn: Callable[[], object]) -> float:
    """Run ``fn`` once, untimed for the benchmark: the seconds it took.

    Called on a 2,000-row slice before the baseline is taken, so that modules a library
    imports lazily on its first call are imports (excluded), as the eager ones are.
    """
    t0 = time.perf_counter()
    fn()
    gc.collect()
    return time.perf_counter() - t0


def baseline() -> int:
    """RSS after the imports (collect garbage first)."""
    gc.collect()
    return rss_bytes()


def emit(result: dict[str, Any]) -> None:
    sys.stdout.flush()
    print(MARKER + json.dumps(result, default=str), flush=True)


def measured(meter: PeakMeter, base: int, data_bytes: int, flagged: list[str],
             **extra: Any) -> dict[str, Any]:
    """The standard result fields of one timed computation."""
    return {
        "seconds": meter.seconds,
        "peak_rss_bytes": meter.peak,
        "baseline_rss_bytes": base,
        "peak_over_baseline_bytes": meter.peak - base,
        "data_bytes": data_bytes,
        "memory_method": meter.method,
        "flagged": sorted(flagged),
        **extra,
    }


def on_pandas(
    args: argparse.Namespace,
    compute: Callable[[Any, Any], tuple[list[str], dict[str, Any]]],
) -> tuple[PeakMeter, int, int, list[str], dict[str, Any]]:
    """Run a pandas-based peer the same way for all: warm up on the first rows, load both
    tables and convert them to pandas (untimed), then time ``compute(ref, cur)`` under
    :class:`PeakMeter`. Returns the meter, the baseline RSS, the Arrow data size, the
    flagged columns and extra fields (warm-up seconds, pandas size, what compute added)."""
    import pyarrow.parquet as pq

    warm_s = warm_up(lambda: compute(head(args.ref).to_pandas(), head(args.cur).to_pandas()))
    base = baseline()
    ref_t, cur_t = pq.read_table(args.ref), pq.read_table(args.cur)
    data_bytes = ref_t.nbytes + cur_t.nbytes
    ref, cur = ref_t.to_pandas(), cur_t.to_pandas()
    del ref_t, cur_t
    pandas_bytes = int(ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum())
    with PeakMeter() as meter:
        flagged, extra = compute(ref, cur)
    return meter, base, data_bytes, flagged, {
        "warm_up_seconds": warm_s, "pandas_bytes": pandas_bytes, **extra,
    }


def main(body: Callable[[argparse.Namespace], dict[str, Any]]) -> int:
    """Run ``body(args)``, print its result (or the error) as the one JSON line."""
    args = parse_args()
    try:
        result = body(args)
    except Exception as exc:  # reported, not raised: the orchestrator shows it
        traceback.print_exc(file=sys.stderr)
        emit({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    emit(result)
    return 0
