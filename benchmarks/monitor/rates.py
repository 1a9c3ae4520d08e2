"""Streaming rate detectors of the monitor against River: updates/s, detection delay, false alarms.

:class:`hindsight.monitor.decisions.RateWatch` watches one action's rate (a block rate,
say) with hindsight's streaming detectors; ``watch_requests`` feeds each request's 0/1
indicator of the action, by default to the Bernoulli CUSUM (a log-likelihood-ratio
CUSUM for a proportion, Reynolds and Stoumbos 1999). This benchmark feeds the same
seeded 0/1 request streams, one request at a time, to it, to the normal CUSUM and
Page-Hinkley, and to River's
``PageHinkley``, ``ADWIN`` and ``DDM`` (River runs in its own virtualenv,
``benchmarks/drift/.venvs/river``, made on first use by ``benchmarks/drift/streaming.py``;
both libraries are timed and scored by the same loop, ``benchmarks/drift/_river_runner``:
``update(x)`` then read ``drift_detected``).

Parameters, chosen once before any River number was seen: the documented defaults.
Bernoulli CUSUM ``ratio=2, arl0=500,000, warmup=1000`` (p0 estimated from the first
1,000 requests, ``h`` set from ``arl0`` by Wald's approximation; a first version with a
fixed ``h=7`` gave 1.25 false alarms per 100,000 here and alarmed far more at higher
base rates, which is why ``h`` now follows the rate); CUSUM ``k=0.5, h=10, warmup=200`` (target and sigma estimated from
the first 200 requests); Page-Hinkley ``min_instances=30, delta=0.005, threshold=50,
alpha=1-0.0001, mode="both"``, given to River's ``PageHinkley`` too (they are River's
defaults as well). River's ``ADWIN`` and ``DDM`` run with their defaults (DDM reads the
0/1 indicator as its error stream). Values go to hindsight as floats, as
``watch_requests`` makes them; to River's DDM as ints.

Streams (seeded, written to a temporary folder both processes read):

* stationary: 200,000 requests, each 1 with probability 0.02;
* abrupt: 30 episodes of 20,000 requests, rate 0.02 stepping to 0.04 half way;
* gradual: 30 episodes of 20,000 requests, rate 0.02 climbing linearly to 0.04 over the
  2,000 requests from half way.

``--quick``: 50,000 stationary requests and 8 episodes of each kind.

Each episode goes to a fresh detector (as each ``watch_requests`` call starts one). Its
*delay* is the distance from the change (the half-way request) to the first detection at
or after it; with none, the rest of the episode (10,000 requests) counts as its delay and
the episode as *missed*. Every other detection is a *false alarm*: those in the
stationary stream, those before the change in an episode, and any after an episode's
first detection past the change.

Measured per detector: ``update()`` updates/s (best of three runs over the stationary
stream) and, for hindsight, ``update_many`` updates/s (best of three, same stream) with
a check that ``update_many`` and ``RateWatch.watch_requests`` find the same first
detections as ``update()``; mean delay (abrupt and gradual episodes together) with its
standard error, and misses; false alarms, also as a rate per 100,000 in-control
requests (the stationary stream plus the pre-change halves of the episodes).

Targets:

* hindsight's Page-Hinkley ``update()`` updates/s >= River's ``PageHinkley``;
* its mean delay <= River's PageHinkley's + two standard errors of River's mean, and its
  false alarms <= River's + two Poisson standard deviations (2 * sqrt(River's count));
* Bernoulli CUSUM: at most one false alarm per 100,000 in-control requests, and a mean
  delay <= River's best detector's + two of its standard errors. River has no CUSUM, so
  it is compared with River's best detector: the River detector with the shortest mean
  delay among those that also keep to one false alarm per 100,000 in-control requests
  (the shortest of all when none does).
* The normal CUSUM on per-request 0/1 values is reported (INFO) for contrast: its sigma
  is tiny on a 2 % rate, so two events close together raise an alarm (about 80 per
  100,000 in-control requests). RateWatch uses it for per-window rates instead.

A missed target is reported as MISS; the streams and parameters were not tuned to pass.
Targets on ``update_many`` and the CUSUMs' throughput are reported as INFO.

Run: .venv/bin/python benchmarks/monitor/rates.py [--json] [--quick] [--repeat N]
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DRIFT = HERE.parent / "drift"
sys.path[:0] = [str(HERE.parent), str(DRIFT)]

from _river_runner import run_tasks  # noqa: E402
from streaming import run_in_river  # noqa: E402

from _common import Target, parse_args, report  # noqa: E402
from hindsight.drift.streaming import get_detector  # noqa: E402
from hindsight.monitor.decisions import RateWatch  # noqa: E402

RATE, RATE_AFTER = 0.02, 0.04
RAMP = 2_000
LENGTH = 20_000
WINDOW = 1_000  # requests per window given to RateWatch.watch_requests (labels only)

PH_PARAMS: dict[str, Any] = {
    "min_instances": 30, "delta": 0.005, "threshold": 50.0, "alpha": 1 - 0.0001, "mode": "both",
}
CUSUM_PARAMS: dict[str, Any] = {"k": 0.5, "h": 10.0, "warmup": 200}
BERNOULLI_PARAMS: dict[str, Any] = {
    "ratio": 2.0, "arl0": 500_000.0, "warmup": 1000, "warmup_events": 100,
}

#: hindsight's detectors, as RateWatch names them, with their parameters.
OURS: dict[str, dict[str, Any]] = {
    "page_hinkley": PH_PARAMS, "cusum": CUSUM_PARAMS, "bernoulli_cusum": BERNOULLI_PARAMS,
}
#: River's detectors: parameters and whether they read ints (a binary error stream).
RIVER: dict[str, tuple[dict[str, Any], bool]] = {
    "PageHinkley": (PH_PARAMS, False),
    "ADWIN": ({}, False),
    "DDM": ({}, True),
}


# ----------------------------------------------------------------------------- streams


def make_streams(folder: Path, n: int, episodes: int) -> dict[str, Path]:
    """The seeded 0/1 request streams, as float ``.npy`` files both processes read."""
    half = LENGTH // 2

    def episode_stream(gradual: bool, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        rate = np.full(LENGTH, RATE)
        step = np.minimum(np.arange(LENGTH - half) / RAMP, 1.0) if gradual else 1.0
        rate[half:] = RATE + (RATE_AFTER - RATE) * step
        return np.concatenate([rng.random(LENGTH) < rate for _ in range(episodes)])

    streams = {
        "stationary": np.random.default_rng(11).random(n) < RATE,
        "abrupt": episode_stream(False, 12),
        "gradual": episode_stream(True, 13),
    }
    paths = {}
    for name, values in streams.items():
        paths[name] = folder / f"{name}.npy"
        np.save(paths[name], values.astype(np.float64))
    return paths


def plan(name: str, params: dict[str, Any], binary: bool, streams: dict[str, Path],
         episodes: int, repeat: int) -> list[dict[str, Any]]:
    """One detector's tasks for ``run_tasks``: throughput, abrupt and gradual episodes."""
    common = {"detector": name, "params": params, "binary": binary}
    return [
        {**common, "kind": "throughput", "stream": str(streams["stationary"]), "repeat": repeat},
        *({**common, "kind": "episodes", "stream": str(streams[kind]), "episodes": episodes,
           "length": LENGTH} for kind in ("abrupt", "gradual")),
    ]


# ----------------------------------------------------------------------------- running


def run_river(tasks: dict[str, list[dict[str, Any]]]) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """River's results for each of its detectors, from its own virtualenv."""
    return run_in_river([(name, t) for name, ts in tasks.items() for t in ts])


def _hindsight(name: str, params: dict[str, Any]) -> Any:
    return get_detector(name, **params)


def run_many(name: str, params: dict[str, Any], stream: Path, repeat: int) -> tuple[float, list[int]]:
    """Best seconds of ``update_many`` over the stream, and its detections."""
    data = np.load(stream)
    best, hits = math.inf, []
    for _ in range(repeat):
        detector = get_detector(name, **params)
        t0 = time.perf_counter()
        hits = detector.update_many(data).tolist()
        best = min(best, time.perf_counter() - t0)
    return best, hits


def rate_watch_agrees(name: str, params: dict[str, Any], results: list[dict[str, Any]],
                      streams: dict[str, Path], episodes: int) -> int:
    """How many streams (stationary, each episode) where ``RateWatch.watch_requests``
    reports another first detection than ``update()`` found."""
    watch = RateWatch(1.0, name, **params)
    pieces: list[tuple[np.ndarray, list[int]]] = [
        (np.load(streams["stationary"]), results[0]["hits"])
    ]
    for kind, run in zip(("abrupt", "gradual"), results[1:], strict=True):
        data = np.load(streams[kind])
        pieces += [(data[e * LENGTH:(e + 1) * LENGTH], run["episodes"][e]) for e in range(episodes)]
    wrong = 0
    for acts, hits in pieces:
        alarm = watch.watch_requests(acts, window=np.arange(acts.size) // WINDOW)
        wrong += int(alarm.position != (hits[0] if hits else None))
    return wrong


# ----------------------------------------------------------------------------- scoring


def score(results: list[dict[str, Any]], episodes: int) -> dict[str, Any]:
    """Delays, misses and false alarms from a throughput run and two episode runs."""
    half = LENGTH // 2
    stationary_fa = len(results[0]["hits"])
    n_stat = int(results[0]["n"])
    delays: dict[str, list[int]] = {"abrupt": [], "gradual": []}
    pre_fa = post_fa = missed = 0
    for kind, run in zip(delays, results[1:], strict=True):
        for hits in run["episodes"]:
            before = [h for h in hits if h < half]
            after = [h for h in hits if h >= half]
            pre_fa += len(before)
            if after:
                delays[kind].append(after[0] - half)
                post_fa += len(after) - 1
            else:
                delays[kind].append(LENGTH - half)
                missed += 1
    d = np.asarray(delays["abrupt"] + delays["gradual"], dtype=np.float64)
    in_control = n_stat + 2 * episodes * half
    return {
        "delay": float(d.mean()),
        "delay_se": float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else 0.0,
        "delay_abrupt": float(np.mean(delays["abrupt"])),
        "delay_gradual": float(np.mean(delays["gradual"])),
        "missed": missed,
        "episodes": int(d.size),
        "stationary_fa": stationary_fa,
        "pre_change_fa": pre_fa,
        "post_detection_fa": post_fa,
        "false_alarms": stationary_fa + pre_fa + post_fa,
        "fa_per_100k": (stationary_fa + pre_fa) / in_control * 100_000,
        "n_stationary": n_stat,
        "n_in_control": in_control,
        "update_per_s": n_stat / results[0]["seconds"],
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    repeat = args.repeat or 3
    n, episodes = (50_000, 8) if args.quick else (200_000, 30)
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="hindsight-rates-") as tmp:
        streams = make_streams(Path(tmp), n, episodes)
        river_tasks = {name: plan(name, params, binary, streams, episodes, repeat)
                       for name, (params, binary) in RIVER.items()}
        our_tasks = {name: plan(name, params, False, streams, episodes, repeat)
                     for name, params in OURS.items()}
        river_version, river_results = run_river(river_tasks)
        ours_results = {name: run_tasks(ts, _hindsight) for name, ts in our_tasks.items()}

        rows: dict[str, dict[str, Any]] = {}
        for name, params in OURS.items():
            row = {"library": "hindsight", "detector": name,
                   **score(ours_results[name], episodes)}
            many_s, many_hits = run_many(name, params, streams["stationary"], repeat)
            row["many_per_s"] = n / many_s
            row["many_same"] = many_hits == ours_results[name][0]["hits"]
            row["rate_watch_mismatches"] = rate_watch_agrees(
                name, params, ours_results[name], streams, episodes
            )
            rows[name] = row
        for name in RIVER:
            rows[f"river:{name}"] = {"library": "river", "detector": name,
                                     **score(river_results[name], episodes)}

    ph, cusum, river_ph = rows["page_hinkley"], rows["cusum"], rows["river:PageHinkley"]
    bern = rows["bernoulli_cusum"]
    river_rows = [r for key, r in rows.items() if key.startswith("river:")]
    quiet = [r for r in river_rows if r["fa_per_100k"] <= 1.0]
    best = min(quiet or river_rows, key=lambda r: r["delay"])

    def fa_ok(mine: dict[str, Any], peer: dict[str, Any]) -> bool:
        return mine["false_alarms"] <= peer["false_alarms"] + 2 * math.sqrt(
            max(peer["false_alarms"], 1)
        )

    peer_rate = river_ph["update_per_s"]
    targets = [
        Target("page_hinkley: update() updates/s vs River PageHinkley", ph["update_per_s"], "/s",
               ">= River's update()", ph["update_per_s"] >= peer_rate, peer_rate,
               ph["update_per_s"] / peer_rate),
        Target("page_hinkley: mean detection delay vs River PageHinkley", ph["delay"],
               "requests", "<= River's + 2 s.e.",
               ph["delay"] <= river_ph["delay"] + 2 * river_ph["delay_se"], river_ph["delay"],
               extra={"se": ph["delay_se"], "river_se": river_ph["delay_se"],
                      "missed": ph["missed"], "river_missed": river_ph["missed"]}),
        Target("page_hinkley: false alarms vs River PageHinkley", ph["false_alarms"], "alarms",
               "<= River's + 2 sqrt(River's)", fa_ok(ph, river_ph), river_ph["false_alarms"]),
        Target("bernoulli_cusum: false alarms per 100,000 in-control requests",
               bern["fa_per_100k"], "alarms", "<= 1", bern["fa_per_100k"] <= 1.0,
               extra={"alarms": bern["stationary_fa"] + bern["pre_change_fa"],
                      "in_control_requests": bern["n_in_control"]}),
        Target(f"bernoulli_cusum: mean detection delay vs River's best ({best['detector']})",
               bern["delay"], "requests", "<= best's + 2 s.e.",
               bern["delay"] <= best["delay"] + 2 * best["delay_se"], best["delay"],
               extra={"se": bern["delay_se"], "river_se": best["delay_se"],
                      "missed": bern["missed"], "river_missed": best["missed"]}),
        # The normal CUSUM is RateWatch's detector for per-window rates; on per-request
        # 0/1 values of a rare event it is shown for contrast (its sigma is tiny there).
        Target("cusum (normal, per-request 0/1): false alarms per 100,000 in-control",
               cusum["fa_per_100k"], "alarms", "reported", True, info=True,
               extra={"alarms": cusum["stationary_fa"] + cusum["pre_change_fa"],
                      "in_control_requests": cusum["n_in_control"]}),
        Target(f"cusum (normal, per-request 0/1): mean delay vs River's best ({best['detector']})",
               cusum["delay"], "requests", "reported", True, best["delay"], info=True,
               extra={"se": cusum["delay_se"], "river_se": best["delay_se"],
                      "missed": cusum["missed"], "river_missed": best["missed"],
                      "river_fa_per_100k": best["fa_per_100k"],
                      "river_best_keeps_fa_bound": bool(quiet)}),
    ]
    for name in OURS:
        row = rows[name]
        ratio = row["many_per_s"] / peer_rate
        targets.append(Target(f"{name}: update_many() updates/s vs River PageHinkley update()",
                              row["many_per_s"], "/s", "reported", True, peer_rate, ratio,
                              info=True))
        targets.append(Target(
            f"{name}: update_many() and RateWatch.watch_requests agree with update()",
            row["rate_watch_mismatches"] + (0 if row["many_same"] else 1), "mismatches", "0",
            row["many_same"] and row["rate_watch_mismatches"] == 0,
            extra={"update_many_same": row["many_same"],
                   "rate_watch_mismatches": row["rate_watch_mismatches"]}))
    targets.append(Target("cusum: update() updates/s (no River CUSUM)", cusum["update_per_s"],
                          "/s", "reported", True, peer_rate,
                          cusum["update_per_s"] / peer_rate, info=True))

    info: dict[str, Any] = {
        "river": river_version,
        "stationary requests": f"{n:,} at rate {RATE}",
        "episodes": f"{episodes} abrupt + {episodes} gradual x {LENGTH:,} requests, "
                    f"rate {RATE} -> {RATE_AFTER} at {LENGTH // 2:,} (gradual: over {RAMP:,})",
        "parameters": f"bernoulli_cusum {BERNOULLI_PARAMS}; cusum {CUSUM_PARAMS}; "
                      f"page_hinkley (both) {PH_PARAMS}; "
                      "River ADWIN, DDM defaults",
        "repeat": repeat,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.json:
        info["rows"] = list(rows.values())
    else:
        print_table(list(rows.values()))
    report("Monitor rate detectors vs River (per-request 0/1 streams)", targets, info, args.json)


def print_table(rows: list[dict[str, Any]]) -> None:
    def rate(x: float | None) -> str:
        return "-" if x is None else f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.0f}k"

    head = (f"{'detector':<24}{'update/s':>9}{'many/s':>9}{'abrupt':>8}{'gradual':>9}"
            f"{'delay':>8}{'s.e.':>6}{'missed':>7}{'FA stat':>8}{'FA pre':>7}{'FA post':>8}"
            f"{'FA/100k':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        label = f"{r['library']}:{r['detector']}"
        print(f"{label:<24}{rate(r['update_per_s']):>9}{rate(r.get('many_per_s')):>9}"
              f"{r['delay_abrupt']:>8.0f}{r['delay_gradual']:>9.0f}{r['delay']:>8.0f}"
              f"{r['delay_se']:>6.0f}{r['missed']:>4}/{r['episodes']:<2}{r['stationary_fa']:>8}"
              f"{r['pre_change_fa']:>7}{r['post_detection_fa']:>8}{r['fa_per_100k']:>8.2f}")
    print("delays in requests after the change (misses count the 10,000 left); FA stat: in "
          "the stationary stream, pre: before an episode's change, post: after its first "
          "detection past it; FA/100k: (stat + pre) per 100,000 in-control requests")
    print()


if __name__ == "__main__":
    main()
