"""Slice finding against SliceLine: recall of planted weak segments, false discoveries, seconds.

Seeded data sets of ten columns (an integer age with a long right tail, country with ten
levels, channel, device, plan, a boolean is_new, a log-normal amount, tenure in months,
a normal score with 5% missing values, sessions per week) and a 0/1 error per row at a
base rate of 10%, with three planted weak segments:

* ``country == 'BR'`` at 30% (about 6% of the rows);
* ``age < 25 and channel == 'web'`` at 35% (about 7%);
* ``plan == 'free' and is_new == True`` at 30% (about 7%);

and null data sets with no segment (every row at 10%). Full: 5 planted and 5 null data
sets of 100,000 rows; ``--quick``: 2 and 2 of 20,000.

hindsight: ``find_slices(table, error)`` with its defaults (5 quantile bins, order 2,
min_size 1%, BH at alpha 0.05), timed from the Arrow table (binning included).
SliceLine (``sliceline[optimized]==0.3.0``, Sagadeeva and Boehm 2021, in its own
virtualenv ``benchmarks/evaluate/.venvs/sliceline``, made with pip on first use; see
``_sliceline_runner.py``) gets the same columns binned the way a user would: numeric
columns in 5 quantile bins, missing values as a category of their own; parameters fixed
before any result was seen: ``alpha=0.95`` (the SliceLine paper's and README's value),
``max_l=2`` (order 2, like hindsight's), ``min_sup=0.01`` (hindsight's min_size) and
``k=10``. SliceLine ranks slices by a score and returns the top ``k`` with a positive
score; it tests no significance, so its false discoveries follow from ``k``. The same
run with ``k=3`` (the number of planted segments, which a user would not know) is
reported as INFO. Its ``fit`` is timed after a warm-up fit that compiles Numba's kernels.

Scoring, the same for both: a planted segment is *recovered* when a reported slice has a
Jaccard index >= 0.7 with it; a reported slice is a *false discovery* when it overlaps
no planted segment: for each segment, less than half of the smaller of the two lies in
the other (the overlap coefficient < 0.5). Every ratio is hindsight / SliceLine.

Targets: recall of planted segments >= 0.9; false discoveries <= 1 per planted data set
on average. Reported as INFO: the reported slices that are no planted segment (Jaccard
< 0.7 with each: parents, parts or mixtures of segments, which the overlap rule does not
count as false), seconds per data set, and how many null data sets got any slice.

Run: .venv/bin/python benchmarks/evaluate/slices.py [--json] [--quick] [--no-peer]
(``--no-peer`` runs hindsight alone, without SliceLine's virtualenv.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

from _common import Target, median, parse_args, report  # noqa: E402
from hindsight.evaluate.slices import find_slices  # noqa: E402

PEER_SPEC = "sliceline[optimized]==0.3.0"
VENV = HERE / ".venvs" / "sliceline"
BINS = 5
SLICELINE = {"alpha": 0.95, "max_l": 2, "min_sup": 0.01, "k": 10}
ORACLE_K = 3
RECOVERED = 0.7  # Jaccard index
OVERLAP = 0.5  # overlap coefficient


# ----------------------------------------------------------------------------- data


def make_dataset(n: int, seed: int, planted: bool = True) -> tuple[pa.Table, np.ndarray,
                                                                    dict[str, np.ndarray]]:
    """A seeded table, its 0/1 errors and the planted segments' masks (none if null)."""
    rng = np.random.default_rng(seed)
    age = (18 + rng.gamma(2.0, 9.0, n)).astype(np.int64)
    country = rng.choice(["US", "FR", "DE", "BR", "IN", "GB", "ES", "IT", "MX", "JP"], n,
                         p=[0.3, 0.12, 0.12, 0.06, 0.1, 0.08, 0.06, 0.06, 0.05, 0.05])
    channel = rng.choice(["web", "app", "store"], n, p=[0.4, 0.4, 0.2])
    device = rng.choice(["ios", "android", "desktop"], n, p=[0.35, 0.4, 0.25])
    plan = rng.choice(["free", "basic", "pro"], n, p=[0.3, 0.5, 0.2])
    is_new = rng.random(n) < 0.25
    amount = np.round(rng.lognormal(4, 1, n), 2)
    tenure = rng.integers(0, 120, n)
    score = rng.normal(0, 1, n)
    score[rng.random(n) < 0.05] = np.nan
    sessions = rng.poisson(3.0, n)
    segments = {
        "country == 'BR'": (country == "BR", 0.30),
        "age < 25 and channel == 'web'": ((age < 25) & (channel == "web"), 0.35),
        "plan == 'free' and is_new == True": ((plan == "free") & is_new, 0.30),
    }
    rate = np.full(n, 0.10)
    if planted:
        for mask, r in segments.values():
            rate[mask] = np.maximum(rate[mask], r)
    error = (rng.random(n) < rate).astype(np.int8)
    table = pa.table({
        "age": age, "country": country, "channel": channel, "device": device, "plan": plan,
        "is_new": is_new, "amount": amount, "tenure": tenure,
        "score": pa.array(score, from_pandas=True), "sessions": sessions,
    })
    return table, error, ({k: m for k, (m, _) in segments.items()} if planted else {})


def binned(table: pa.Table) -> np.ndarray:
    """The columns as SliceLine reads them: integer codes from 1, quantile bins for numbers."""
    out = np.zeros((table.num_rows, table.num_columns), dtype=np.int64)
    for j, name in enumerate(table.column_names):
        col = table.column(name)
        if pa.types.is_string(col.type) or pa.types.is_boolean(col.type):
            _, codes = np.unique(np.asarray(col.to_pylist(), dtype=str), return_inverse=True)
            out[:, j] = codes + 1
            continue
        x = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
        missing = np.isnan(x)
        edges = np.unique(np.quantile(x[~missing], np.arange(1, BINS) / BINS))
        codes = np.searchsorted(edges, np.where(missing, 0.0, x), side="right") + 1
        out[:, j] = np.where(missing, edges.size + 2, codes)
    return out


# ----------------------------------------------------------------------------- scoring


def score(masks: Sequence[np.ndarray], segments: dict[str, np.ndarray]) -> dict[str, Any]:
    """Recovered planted segments and false discoveries among the reported slices."""
    def jaccard(m: np.ndarray, p: np.ndarray) -> float:
        return float(np.count_nonzero(m & p) / max(int(np.count_nonzero(m | p)), 1))

    recovered = sum(max((jaccard(m, p) for m in masks), default=0.0) >= RECOVERED
                    for p in segments.values())
    # Reported slices that are none of the planted segments (parents, parts, mixtures).
    other = sum(all(jaccard(m, p) < RECOVERED for p in segments.values()) for m in masks)

    def overlaps(m: np.ndarray, p: np.ndarray) -> bool:
        small = min(np.count_nonzero(m), np.count_nonzero(p))
        return bool(np.count_nonzero(m & p) >= OVERLAP * small)

    false = sum(not any(overlaps(m, p) for p in segments.values()) for m in masks)
    return {"recall": recovered / len(segments) if segments else None, "false": int(false),
            "other": int(other), "reported": len(masks)}


def run_hindsight(datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """hindsight's slices, seconds and scores on each data set."""
    rows = []
    for d in datasets:
        t0 = time.perf_counter()
        found = find_slices(d["table"], d["error"])
        seconds = time.perf_counter() - t0
        masks = [s.mask(d["table"]) for s in found.slices]
        rows.append({"seconds": seconds, "slices": [s.expr for s in found.slices],
                     "tested": found.tested, **score(masks, d["segments"])})
    return rows


def peer_python() -> Path:
    """SliceLine's interpreter, after making its virtualenv if it is not there yet."""
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"installing {PEER_SPEC} into {VENV} ...", file=sys.stderr, flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", PEER_SPEC],
                       check=True, stdout=sys.stderr)
    return python


def run_sliceline(datasets: list[dict[str, Any]], params: dict[str, Any],
                  folder: Path) -> tuple[str, list[dict[str, Any]]]:
    """SliceLine's slices, seconds and scores on each data set, from its virtualenv."""
    tasks = []
    for i, d in enumerate(datasets):
        x_path, e_path = folder / f"x{i}.npy", folder / f"e{i}.npy"
        if not x_path.exists():
            np.save(x_path, d["codes"])
            np.save(e_path, d["error"].astype(np.float64))
        tasks.append({"x": str(x_path), "errors": str(e_path), "params": params})
    proc = subprocess.run([str(peer_python()), str(HERE / "_sliceline_runner.py")],
                          input=json.dumps({"tasks": tasks}), capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"SliceLine's run failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout)
    rows = []
    for d, res in zip(datasets, out["results"], strict=True):
        masks = []
        for found in res["slices"]:
            m = np.ones(d["codes"].shape[0], dtype=bool)
            for j, code in found.items():
                m &= d["codes"][:, int(j)] == code
            masks.append(m)
        names = d["table"].column_names
        text = [" and ".join(f"{names[int(j)]}#{c}" for j, c in f.items()) for f in res["slices"]]
        rows.append({"seconds": res["seconds"], "slices": text, **score(masks, d["segments"])})
    return out["version"], rows


# ----------------------------------------------------------------------------- main


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return float(np.mean([r[key] for r in rows]))


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    with_peer = "--no-peer" not in raw
    args = parse_args(__doc__.splitlines()[0], [a for a in raw if a != "--no-peer"])
    n, seeds = (20_000, 2) if args.quick else (100_000, 5)
    started = time.perf_counter()
    datasets = []
    for planted in (True, False):
        for seed in range(seeds):
            table, error, segments = make_dataset(n, seed + (0 if planted else 1000), planted)
            datasets.append({"table": table, "error": error, "segments": segments,
                             "planted": planted, "seed": seed,
                             "codes": binned(table) if with_peer else None})
    planted_sets = [d for d in datasets if d["planted"]]

    ours = run_hindsight(datasets)
    ours_p, ours_null = ours[:seeds], ours[seeds:]
    peer_p: list[dict[str, Any]] = []
    peer_null: list[dict[str, Any]] = []
    oracle: list[dict[str, Any]] = []
    version = None
    if with_peer:
        with tempfile.TemporaryDirectory(prefix="hindsight-slices-") as tmp:
            version, peer = run_sliceline(datasets, SLICELINE, Path(tmp))
            _, oracle = run_sliceline(planted_sets, {**SLICELINE, "k": ORACLE_K}, Path(tmp))
        peer_p, peer_null = peer[:seeds], peer[seeds:]

    recall, false = _mean(ours_p, "recall"), _mean(ours_p, "false")
    seconds = median([r["seconds"] for r in ours])
    p_recall = _mean(peer_p, "recall") if peer_p else None
    p_false = _mean(peer_p, "false") if peer_p else None
    p_seconds = median([r["seconds"] for r in peer_p + peer_null]) if peer_p else None

    def ratio(a: float, b: float | None) -> float | None:
        return None if b is None or b == 0 else a / b

    null_hits = sum(bool(r["reported"]) for r in ours_null)
    targets = [
        Target("recall of planted segments", recall, "", ">= 0.9", recall >= 0.9,
               peer=p_recall, ratio=ratio(recall, p_recall)),
        Target("false discoveries per planted data set", false, "", "<= 1", false <= 1,
               peer=p_false, ratio=ratio(false, p_false)),
        Target("reported slices that are no planted segment, per planted data set",
               _mean(ours_p, "other"), "", "report", True,
               peer=_mean(peer_p, "other") if peer_p else None, info=True),
        Target(f"seconds per data set ({n:,} rows x 10 columns)", seconds, "s", "report",
               True, peer=p_seconds, ratio=ratio(seconds, p_seconds), info=True),
        Target("null data sets with any slice reported", float(null_hits), f"of {seeds}",
               "report", True,
               peer=float(sum(bool(r["reported"]) for r in peer_null)) if peer_null else None,
               info=True),
    ]
    if oracle:
        for key, what in (("recall", "recall"), ("false", "false discoveries"),
                          ("other", "slices that are no planted segment")):
            targets.append(Target(f"SliceLine with k={ORACLE_K}: {what}", _mean(oracle, key),
                                  "", "report", True, info=True))
    table_rows = []
    for i, d in enumerate(datasets):
        row: dict[str, Any] = {"data": f"{'planted' if d['planted'] else 'null'} seed {d['seed']}",
               "hindsight": ours[i]}
        if with_peer:
            row["sliceline"] = (peer_p + peer_null)[i]
            if d["planted"] and oracle:
                row["sliceline_k3"] = oracle[i]
        table_rows.append(row)
    info = {"rows": n, "data sets": f"{seeds} planted + {seeds} null",
            "sliceline": version or "not run (--no-peer)", "sliceline params": SLICELINE,
            "seconds": round(time.perf_counter() - started, 1)}
    if args.json:
        report("evaluate: slice finding", targets, {**info, "datasets": table_rows}, True)
        return 0
    print("per data set: recall / false discoveries / other slices / reported / seconds")
    print(f"{'data':18s} {'hindsight':>28s} {'sliceline k=10':>28s}")
    for row in table_rows:
        h, p = row["hindsight"], row.get("sliceline")

        def cell(r: dict[str, Any]) -> str:
            rec = "-" if r["recall"] is None else f"{r['recall']:.2f}"
            return f"{rec} / {r['false']} / {r['other']} / {r['reported']} / {r['seconds']:.3f}"

        print(f"{row['data']:18s} {cell(h):>28s} {cell(p) if p else '-':>28s}")
    report("evaluate: slice finding", targets, info, False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
