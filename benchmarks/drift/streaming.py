"""Streaming drift detectors against River: updates per second, detection delay, false alarms.

The same seeded streams go through River's ADWIN, PageHinkley, KSWIN, DDM and EDDM (in
River's own virtualenv, ``benchmarks/drift/.venvs/river``, made with ``pip install`` on
first use) and through hindsight's, with the same parameters on both sides and the same
measuring loop (``_river_runner.feed``: ``update(x)`` then read ``drift_detected``).
River has no CUSUM; hindsight's is reported alone.

Streams (``benchmarks/drift/.data``, written once per size):

* real values, noise N(0, 0.2^2): a stationary stream; episodes of 10,000 values whose
  mean steps up by one sigma half way (abrupt) or climbs two sigmas over 1,000 values
  from half way (gradual);
* 0/1 errors, rate 0.1: a stationary stream; episodes whose rate steps to 0.3 half way
  (abrupt) or climbs to 0.3 over 1,000 values (gradual);
* KSWIN, whose River version calls SciPy at every value (about 5,000 values a second),
  gets shorter streams: episodes of 2,000 values and a stationary stream of 20,000.

Each episode goes to a fresh detector. Its *delay* is the distance from the change to
the first detection at or after it (the rest of the episode if there is none); every
other detection, in episodes and in the stationary stream, is a *false alarm*.

Targets, per detector: ``update`` and ``update_many`` updates/s at least River's
``update`` (best of three runs on the stationary stream); mean delay and false alarms no
worse than River's beyond sampling noise (two standard errors of River's mean delay; two
Poisson standard deviations of River's count). For CUSUM: at most one false alarm per
10,000 stationary values.

Run: .venv/bin/python benchmarks/drift/streaming.py [--json] [--quick]
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from _river_runner import run_tasks  # noqa: E402

from _common import Target, parse_args, report  # noqa: E402
from hindsight.drift.streaming import get_detector  # noqa: E402

RIVER_SPEC = "river==0.26.1"
VENV = HERE / ".venvs" / "river"
DATA = HERE / ".data"
SIGMA = 0.2
RATE, RATE_AFTER = 0.1, 0.3
RAMP = 1_000

# hindsight name -> (River class or None, parameters given to both, binary stream?)
DETECTORS: dict[str, tuple[str | None, dict[str, Any], bool]] = {
    "adwin": ("ADWIN", {}, False),
    "page_hinkley": ("PageHinkley", {}, False),
    "kswin": ("KSWIN", {"alpha": 0.0001, "seed": 1}, False),
    "ddm": ("DDM", {}, True),
    "eddm": ("EDDM", {}, True),
    "cusum": (None, {}, False),
}


def river_python() -> Path:
    """River's interpreter, after making its virtualenv if it is not there yet."""
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"installing {RIVER_SPEC} into {VENV} ...", file=sys.stderr, flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", RIVER_SPEC],
            check=True,
            stdout=sys.stderr,
        )
    return python


def _stream(name: str, make: Any) -> Path:
    path = DATA / f"{name}.npy"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        np.save(path, make())
    return path


def make_streams(n: int, episodes: int, length: int, n_ks: int, ks_episodes: int) -> dict[str, Path]:
    """The seeded streams, as ``.npy`` files both processes read."""
    half = length // 2
    ks_len = 2_000

    def real_episodes(count: int, size: int, gradual: bool, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        mid = size // 2
        mean = np.zeros(size)
        if gradual:
            mean[mid:] = 2 * SIGMA * np.minimum(np.arange(size - mid) / RAMP, 1.0)
        else:
            mean[mid:] = SIGMA
        return np.concatenate([rng.normal(mean, SIGMA) for _ in range(count)])

    def error_episodes(count: int, gradual: bool, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        rate = np.full(length, RATE)
        step = np.minimum(np.arange(length - half) / RAMP, 1.0) if gradual else 1.0
        rate[half:] = RATE + (RATE_AFTER - RATE) * step
        return np.concatenate([rng.random(length) < rate for _ in range(count)]).astype(np.int8)

    return {
        "real_stationary": _stream(
            f"real-stationary-{n}", lambda: np.random.default_rng(1).normal(0, SIGMA, n)
        ),
        "real_abrupt": _stream(
            f"real-abrupt-{episodes}x{length}",
            lambda: real_episodes(episodes, length, False, 2),
        ),
        "real_gradual": _stream(
            f"real-gradual-{episodes}x{length}",
            lambda: real_episodes(episodes, length, True, 3),
        ),
        "ks_stationary": _stream(
            f"ks-stationary-{n_ks}", lambda: np.random.default_rng(4).normal(0, SIGMA, n_ks)
        ),
        "ks_abrupt": _stream(
            f"ks-abrupt-{ks_episodes}x{ks_len}",
            lambda: real_episodes(ks_episodes, ks_len, False, 5),
        ),
        "ks_gradual": _stream(
            f"ks-gradual-{ks_episodes}x{ks_len}",
            lambda: real_episodes(ks_episodes, ks_len, True, 6),
        ),
        "err_stationary": _stream(
            f"err-stationary-{n}",
            lambda: (np.random.default_rng(7).random(n) < RATE).astype(np.int8),
        ),
        "err_abrupt": _stream(
            f"err-abrupt-{episodes}x{length}", lambda: error_episodes(episodes, False, 8)
        ),
        "err_gradual": _stream(
            f"err-gradual-{episodes}x{length}", lambda: error_episodes(episodes, True, 9)
        ),
    }


def plan(streams: dict[str, Path], episodes: int, length: int, ks_episodes: int, repeat: int
         ) -> dict[str, list[dict[str, Any]]]:
    """Per detector: its tasks (throughput, abrupt episodes, gradual episodes)."""
    tasks: dict[str, list[dict[str, Any]]] = {}
    for name, (river_name, params, binary) in DETECTORS.items():
        prefix = "err" if binary else ("ks" if name == "kswin" else "real")
        count, size = (ks_episodes, 2_000) if name == "kswin" else (episodes, length)
        common = {"detector": river_name or name, "params": params, "binary": binary}
        tasks[name] = [
            {**common, "kind": "throughput", "stream": str(streams[f"{prefix}_stationary"]),
             "repeat": repeat},
            {**common, "kind": "episodes", "stream": str(streams[f"{prefix}_abrupt"]),
             "episodes": count, "length": size},
            {**common, "kind": "episodes", "stream": str(streams[f"{prefix}_gradual"]),
             "episodes": count, "length": size},
        ]
    return tasks


def run_river(tasks: dict[str, list[dict[str, Any]]]) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """River's results for every detector it has."""
    return run_in_river([(name, t) for name, ts in tasks.items() if DETECTORS[name][0] for t in ts])


def run_in_river(
    flat: list[tuple[str, dict[str, Any]]],
) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """Run ``(name, task)`` pairs in River's virtualenv; its version and results by name."""
    proc = subprocess.run(
        [str(river_python()), str(HERE / "_river_runner.py")],
        input=json.dumps({"tasks": [t for _, t in flat]}),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"River's run failed:\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout)
    out: dict[str, list[dict[str, Any]]] = {}
    for (name, _), result in zip(flat, data["results"], strict=True):
        out.setdefault(name, []).append(result)
    return data["version"], out


def _hindsight_factory(name: str, params: dict[str, Any]) -> Any:
    return get_detector(_BY_RIVER_NAME.get(name, name), **params)


_BY_RIVER_NAME = {river: ours for ours, (river, _, _) in DETECTORS.items() if river}


def run_many(task: dict[str, Any], repeat: int) -> tuple[float, list[int]]:
    """Best seconds of ``update_many`` on the task's stream, and its detections."""
    data = np.load(task["stream"])
    best, hits = math.inf, []
    for _ in range(repeat):
        detector = _hindsight_factory(task["detector"], task["params"])
        t0 = time.perf_counter()
        hits = detector.update_many(data).tolist()
        best = min(best, time.perf_counter() - t0)
    return best, hits


def score(results: list[dict[str, Any]], size: int) -> dict[str, Any]:
    """Delays and false alarms from a throughput run and two episode runs."""
    stationary_fa = len(results[0]["hits"])
    delays, episode_fa, missed = [], 0, 0
    for run in results[1:]:
        for hits in run["episodes"]:
            after = [h for h in hits if h >= size // 2]
            if after:
                delays.append(after[0] - size // 2)
                episode_fa += len(hits) - 1
            else:
                delays.append(size - size // 2)
                episode_fa += len(hits)
                missed += 1
    d = np.asarray(delays, dtype=np.float64)
    return {
        "delay": float(d.mean()),
        "delay_se": float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else 0.0,
        "missed": missed,
        "false_alarms": stationary_fa + episode_fa,
        "stationary_fa": stationary_fa,
        "n_stationary": results[0]["n"],
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    quick = args.quick
    repeat = args.repeat or 3
    n = 100_000 if quick else 1_000_000
    episodes, length = (20, 10_000) if quick else (100, 10_000)
    n_ks, ks_episodes = (5_000, 5) if quick else (20_000, 20)
    streams = make_streams(n, episodes, length, n_ks, ks_episodes)
    tasks = plan(streams, episodes, length, ks_episodes, repeat)

    river_version, river = run_river(tasks)
    ours = {name: run_tasks(ts, _hindsight_factory) for name, ts in tasks.items()}

    rows, targets = [], []
    for name, ts in tasks.items():
        size = ts[1]["length"]
        mine = score(ours[name], size)
        rate = ours[name][0]["n"] / ours[name][0]["seconds"]
        many_s, many_hits = run_many(ts[0], repeat)
        many_rate = ours[name][0]["n"] / many_s
        same = many_hits == ours[name][0]["hits"]
        row = {"detector": name, "update_per_s": rate, "many_per_s": many_rate,
               "many_same_detections": same, **mine}
        if name in river:
            peer = score(river[name], size)
            peer_rate = river[name][0]["n"] / river[name][0]["seconds"]
            row |= {"river_per_s": peer_rate, **{f"river_{k}": v for k, v in peer.items()}}
            delay_ok = mine["delay"] <= peer["delay"] + 2 * peer["delay_se"]
            fa_ok = mine["false_alarms"] <= peer["false_alarms"] + 2 * math.sqrt(
                max(peer["false_alarms"], 1)
            )
            targets += [
                Target(f"{name}: update() updates/s vs River", rate, "/s", ">= River's update()",
                       rate >= peer_rate, peer_rate, rate / peer_rate),
                Target(f"{name}: update_many() updates/s vs River", many_rate, "/s",
                       ">= River's update()", many_rate >= peer_rate and same, peer_rate,
                       many_rate / peer_rate, {"same_detections": same}),
                Target(f"{name}: mean detection delay vs River", mine["delay"], "values",
                       "<= River's + 2 s.e.", delay_ok, peer["delay"],
                       extra={"missed": mine["missed"], "river_missed": peer["missed"]}),
                Target(f"{name}: false alarms vs River", mine["false_alarms"], "alarms",
                       "<= River's + 2 sqrt(River's)", fa_ok, peer["false_alarms"]),
            ]
        else:
            per_10k = mine["stationary_fa"] / mine["n_stationary"] * 10_000
            targets += [
                Target(f"{name}: update() updates/s (no River peer)", rate, "/s", "reported",
                       True),
                Target(f"{name}: update_many() updates/s (no River peer)", many_rate, "/s",
                       "same detections as update()", same),
                Target(f"{name}: mean detection delay (no River peer)", mine["delay"], "values",
                       "reported", True, extra={"missed": mine["missed"]}),
                Target(f"{name}: false alarms per 10,000 stationary values", per_10k, "alarms",
                       "<= 1", per_10k <= 1.0),
            ]
        rows.append(row)

    info = {
        "river": river_version,
        "stationary values": f"{n:,} (KSWIN {n_ks:,})",
        "episodes": f"{episodes} x {length:,} (KSWIN {ks_episodes} x 2,000), abrupt and gradual",
        "repeat": repeat,
    }
    if not args.json:
        print_table(rows)
    report("Streaming drift detectors vs River", targets, info, args.json)


def print_table(rows: list[dict[str, Any]]) -> None:
    def rate(x: float | None) -> str:
        return "-" if x is None else f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k"

    head = (f"{'detector':<13}{'update/s':>10}{'many/s':>10}{'River/s':>10}{'ratio':>7}"
            f"{'many':>7}{'delay':>9}{'River':>9}{'missed':>8}{'FA':>6}{'River':>7}  same")
    print(head)
    print("-" * len(head))
    for r in rows:
        peer = r.get("river_per_s")
        ratio = "-" if peer is None else f"{r['update_per_s'] / peer:.2f}"
        ratio_many = "-" if peer is None else f"{r['many_per_s'] / peer:.1f}"
        rdelay = "-" if "river_delay" not in r else f"{r['river_delay']:.1f}"
        rfa = "-" if "river_false_alarms" not in r else str(r["river_false_alarms"])
        missed = f"{r['missed']}" + ("" if "river_missed" not in r else f"/{r['river_missed']}")
        print(f"{r['detector']:<13}{rate(r['update_per_s']):>10}{rate(r['many_per_s']):>10}"
              f"{rate(peer):>10}{ratio:>7}{ratio_many:>7}{r['delay']:>9.1f}{rdelay:>9}"
              f"{missed:>8}{r['false_alarms']:>6}{rfa:>7}  {'yes' if r['many_same_detections'] else 'NO'}")
    print()


if __name__ == "__main__":
    main()
