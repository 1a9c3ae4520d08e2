"""Metric logging throughput: hindsight vs MLflow's log_batch, both on a fresh SQLite store.

hindsight: ``with hindsight.experiment(...)`` and one ``exp.log_metric(key, value, step)``
call per point in a Python loop, the final flush at the end of the block included.
MLflow: ``MlflowClient().log_batch`` of pre-built ``mlflow.entities.Metric`` objects in
batches of 1000 (MLflow's per-call limit) into a fresh run of a local SQLite tracking
store. Both read their points back afterwards to check nothing was lost.

Target: hindsight >= 30x MLflow's points/s.

Run: .venv/bin/python benchmarks/bench_metric_logging.py [--json] [--quick]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import Target, median, parse_args, quiet_mlflow, report

KEYS = ("train_loss", "val_loss", "accuracy", "learning_rate")
MLFLOW_BATCH = 1000
TARGET_RATIO = 30.0


def make_points(n: int, seed: int = 0) -> list[tuple[str, float, int]]:
    """``n`` (key, value, step) points: the keys take turns, one step per round."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=n).tolist()
    return [(KEYS[i % len(KEYS)], values[i], i // len(KEYS)) for i in range(n)]


def expected_series(points: list[tuple[str, float, int]]) -> dict[str, tuple[list[int], list[float]]]:
    out: dict[str, tuple[list[int], list[float]]] = {k: ([], []) for k in KEYS}
    for key, value, step in points:
        out[key][0].append(step)
        out[key][1].append(value)
    return out


def run_hindsight(workdir: Path, points: list[tuple[str, float, int]], rep: int) -> tuple[float, bool]:
    from hindsight.ledger import Ledger, experiment

    url = f"sqlite:///{workdir / f'hindsight-{rep}.db'}"
    ledger = Ledger.at(url)
    store = ledger.store  # opened and migrated before the clock starts
    t0 = time.perf_counter()
    with experiment("bench-metrics", ledger=ledger, mlflow=False, quiet=True) as exp:
        log = exp.log_metric
        for key, value, step in points:
            log(key, value, step)
    elapsed = time.perf_counter() - t0
    got = store.metric_series(exp.id)
    ok = _same(got, expected_series(points))
    ledger.close()
    return elapsed, ok


def run_mlflow(client: Any, experiment_id: str, points: list[tuple[str, float, int]]) -> tuple[float, bool]:
    from mlflow.entities import Metric

    ts = int(time.time() * 1000)
    metrics = [Metric(key, value, ts, step) for key, value, step in points]
    batches = [metrics[i : i + MLFLOW_BATCH] for i in range(0, len(metrics), MLFLOW_BATCH)]
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    t0 = time.perf_counter()
    for batch in batches:
        client.log_batch(run_id, metrics=batch)
    elapsed = time.perf_counter() - t0
    client.set_terminated(run_id)
    got = {}
    for key in KEYS:
        hist = client.get_metric_history(run_id, key)
        hist = sorted(hist, key=lambda m: m.step)
        got[key] = (
            np.asarray([m.step for m in hist], dtype=np.int64),
            np.asarray([m.value for m in hist], dtype=np.float64),
            np.zeros(len(hist)),
        )
    return elapsed, _same(got, expected_series(points))


def _same(got: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
          want: dict[str, tuple[list[int], list[float]]]) -> bool:
    if set(got) != set(want):
        return False
    return all(
        np.array_equal(got[k][0], np.asarray(s, dtype=np.int64))
        and np.array_equal(got[k][1], np.asarray(v, dtype=np.float64))
        for k, (s, v) in want.items()
    )


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    quiet_mlflow()
    n = 10_000 if args.quick else 100_000
    repeat = args.repeat or (1 if args.quick else 3)
    points = make_points(n)
    hs_times: list[float] = []
    ml_times: list[float] = []
    correct = True
    with tempfile.TemporaryDirectory(prefix="hs-bench-metrics-") as tmp:
        workdir = Path(tmp)
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
        mlflow_exp = client.create_experiment("bench-metrics")
        for rep in range(repeat):
            elapsed, ok = run_hindsight(workdir, points, rep)
            hs_times.append(elapsed)
            correct &= ok
            elapsed, ok = run_mlflow(client, mlflow_exp, points)
            ml_times.append(elapsed)
            correct &= ok
    hs_rate = n / median(hs_times)
    ml_rate = n / median(ml_times)
    ratio = hs_rate / ml_rate
    targets = [
        Target(
            name=f"log {n:,} metric points (hindsight vs MLflow log_batch)",
            value=hs_rate, peer=ml_rate, ratio=ratio, unit="points/s",
            goal=f">= {TARGET_RATIO:g}x MLflow", met=ratio >= TARGET_RATIO,
        )
    ]
    info = {
        "points": n,
        "repeats": repeat,
        "hindsight_seconds": [round(x, 4) for x in hs_times],
        "mlflow_seconds": [round(x, 4) for x in ml_times],
        "read_back_ok": correct,
    }
    report("metric logging", targets, info, args.json)
    if not correct:
        print("ERROR: the points read back differ from the points logged")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
