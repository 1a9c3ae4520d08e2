"""Import time and the overhead of an empty experiment block: hindsight vs MLflow.

1. ``import hindsight`` in a fresh interpreter (median of 7 subprocesses, timed inside
   the subprocess so interpreter start-up is left out) vs ``import mlflow``.
   Target: < 0.3 s.
2. An empty ``with hindsight.experiment("x"): pass`` on a SQLite store that is already
   open (median over 200 blocks after one warm-up) vs MLflow's
   ``with mlflow.start_run(): pass`` on a local SQLite tracking store. Target: < 20 ms.

Run: .venv/bin/python benchmarks/bench_import_and_overhead.py [--json] [--quick]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Target, median, parse_args, percentile, quiet_mlflow, report

IMPORT_TARGET_S = 0.3
BLOCK_TARGET_MS = 20.0
_IMPORT_SNIPPET = (
    "import time; t0 = time.perf_counter(); import {mod}; print(time.perf_counter() - t0)"
)
# What the first ``hindsight.experiment`` costs on top (the lazy names load the ledger).
_FIRST_USE_SNIPPET = (
    "import time; t0 = time.perf_counter(); import {mod}; {mod}.experiment; "
    "print(time.perf_counter() - t0)"
)


def import_seconds(module: str, runs: int, snippet: str = _IMPORT_SNIPPET) -> list[float]:
    """Seconds to import ``module`` in each of ``runs`` fresh interpreters."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HINDSIGHT_", "MLFLOW_"))}
    out = []
    for _ in range(runs):
        res = subprocess.run(
            [sys.executable, "-c", snippet.format(mod=module)],
            capture_output=True, text=True, check=True, env=env,
        )
        out.append(float(res.stdout.strip().splitlines()[-1]))
    return out


def hindsight_blocks(workdir: Path, blocks: int) -> list[float]:
    import hindsight
    from hindsight.ledger import Ledger, set_ledger

    ledger = Ledger.at(f"sqlite:///{workdir / 'hindsight.db'}")
    ledger.store  # noqa: B018  (open and migrate before timing)
    previous = set_ledger(ledger)
    try:
        with hindsight.experiment("x"):
            pass  # warm-up
        times = []
        for _ in range(blocks):
            t0 = time.perf_counter()
            with hindsight.experiment("x"):
                pass
            times.append(time.perf_counter() - t0)
    finally:
        set_ledger(previous)
        ledger.close()
    return times


def mlflow_blocks(workdir: Path, blocks: int) -> list[float]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    mlflow.set_experiment("x")
    with mlflow.start_run():
        pass  # warm-up
    times = []
    for _ in range(blocks):
        t0 = time.perf_counter()
        with mlflow.start_run():
            pass
        times.append(time.perf_counter() - t0)
    return times


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    runs = args.repeat or (3 if args.quick else 7)
    blocks = 20 if args.quick else 200
    hs_import = import_seconds("hindsight", runs)
    ml_import = import_seconds("mlflow", runs)
    hs_first_use = import_seconds("hindsight", runs, _FIRST_USE_SNIPPET)
    quiet_mlflow()
    with tempfile.TemporaryDirectory(prefix="hs-bench-overhead-") as tmp:
        workdir = Path(tmp)
        hs_blocks = hindsight_blocks(workdir, blocks)
        ml_blocks = mlflow_blocks(workdir, blocks)
    hs_i, ml_i = median(hs_import), median(ml_import)
    hs_b, ml_b = median(hs_blocks) * 1e3, median(ml_blocks) * 1e3
    targets = [
        Target(
            name="import hindsight (vs import mlflow)", value=hs_i, peer=ml_i,
            ratio=ml_i / hs_i, unit="s", goal=f"< {IMPORT_TARGET_S:g} s",
            met=hs_i < IMPORT_TARGET_S,
        ),
        Target(
            name="empty experiment block on SQLite (vs mlflow.start_run)", value=hs_b,
            peer=ml_b, ratio=ml_b / hs_b, unit="ms", goal=f"< {BLOCK_TARGET_MS:g} ms",
            met=hs_b < BLOCK_TARGET_MS,
        ),
    ]
    info = {
        "import_runs": runs,
        "hindsight_import_s": [round(x, 4) for x in hs_import],
        "mlflow_import_s": [round(x, 4) for x in ml_import],
        "hindsight_import_and_first_experiment_access_s (median)": round(median(hs_first_use), 4),
        "blocks": blocks,
        "hindsight_block_ms_p95": round(percentile(hs_blocks, 95) * 1e3, 2),
        "mlflow_block_ms_p95": round(percentile(ml_blocks, 95) * 1e3, 2),
    }
    report("import time and experiment-block overhead", targets, info, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
