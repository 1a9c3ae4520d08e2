"""Run every benchmark script and print one summary table (``make bench``).

Each script runs in its own interpreter with ``--json``; ``--quick`` is passed on.
Exits non-zero only if a script errored, never for a missed target.

Run: .venv/bin/python benchmarks/run_all.py [--quick] [--json]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "bench_import_and_overhead.py",
    "bench_metric_logging.py",
    "bench_similar_lookup.py",
    "diagnose_accuracy.py",
    "bench_guard_overhead.py",
    "training_faults/run.py",
    "drift/streaming.py",
    "drift/run.py",
    "serving/run.py",
    "monitor/run.py",
    "monitor/rates.py",
    "evaluate/slices.py",
    "web/list_pages.py",
)
DIAGNOSE_TARGET = 0.90


def run(script: str, quick: bool) -> tuple[list[dict[str, Any]], str | None, float]:
    """(target rows, error or None, seconds) of one script."""
    cmd = [sys.executable, str(HERE / script), "--json", *(["--quick"] if quick else [])]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        return [], f"exit code {res.returncode}: {(res.stderr or res.stdout).strip()[-2000:]}", elapsed
    start = res.stdout.find("{")
    try:
        data = json.loads(res.stdout[start:]) if start >= 0 else None
    except json.JSONDecodeError as exc:
        return [], f"unreadable JSON output ({exc}): {res.stdout[-500:]}", elapsed
    if not isinstance(data, dict):
        return [], f"no JSON output: {res.stdout[-500:]}", elapsed
    if "targets" in data:
        return list(data["targets"]), None, elapsed
    # diagnose_accuracy.py reports the corpus evaluation itself.
    acc = float(data["accuracy"])
    return [{
        "name": f"diagnose() category accuracy on {data['total']} labelled cases",
        "value": acc * 100, "unit": "%", "peer": None, "ratio": None,
        "goal": f">= {DIAGNOSE_TARGET:.0%}", "met": acc >= DIAGNOSE_TARGET,
        "verdict": "PASS" if acc >= DIAGNOSE_TARGET else "MISS",
    }], None, elapsed


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    return f"{x:,.4g}" if isinstance(x, float) else str(x)


def main() -> int:
    quick = "--quick" in sys.argv
    rows: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for script in SCRIPTS:
        print(f"running {script}{' --quick' if quick else ''} ...", file=sys.stderr, flush=True)
        targets, error, elapsed = run(script, quick)
        if error is not None:
            errors[script] = error
        rows.extend({**tg, "script": script, "seconds": round(elapsed, 1)} for tg in targets)
    if "--json" in sys.argv:
        print(json.dumps({"targets": rows, "errors": errors}, indent=2))
    else:
        header = f"{'verdict':<8}{'target':<66}{'hindsight':>20}{'peer':>12}{'ratio':>9}  goal"
        print(header)
        print("-" * len(header))
        for r in rows:
            ratio = "-" if r.get("ratio") is None else f"{r['ratio']:,.1f}x"
            print(f"{r['verdict']:<8}{r['name'][:65]:<66}"
                  f"{_fmt(r['value']) + ' ' + r['unit']:>20}{_fmt(r.get('peer')):>12}{ratio:>9}  {r['goal']}")
        judged = [r for r in rows if not r.get("info")]
        met = sum(1 for r in judged if r["met"])
        print(f"\n{met}/{len(judged)} targets met ({len(rows) - len(judged)} rows for information)"
              + (f"; {len(errors)} script(s) failed" if errors else ""))
        for script, error in errors.items():
            print(f"ERROR in {script}: {error}")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
