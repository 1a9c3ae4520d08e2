"""The measuring half of benchmarks/drift/streaming.py, shared by both libraries.

``streaming.py`` imports :func:`run_tasks` and runs hindsight's detectors through it;
the same file runs as a script inside River's own virtualenv (it imports neither
hindsight nor anything of this repository) with River's detectors. So both libraries
are timed and scored by the very same loop. Reads a JSON spec on stdin, writes JSON
results on stdout.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

Factory = Callable[[str, dict[str, Any]], Any]


def feed(detector: Any, xs: list[Any]) -> tuple[float, list[int]]:
    """Seconds to feed ``xs`` one value at a time, and the positions where drift fired."""
    hits = []
    update = detector.update
    t0 = time.perf_counter()
    for i, x in enumerate(xs):
        update(x)
        if detector.drift_detected:
            hits.append(i)
    return time.perf_counter() - t0, hits


def run_tasks(tasks: list[dict[str, Any]], make: Factory) -> list[dict[str, Any]]:
    """Run each task: ``throughput`` (one stream, best of ``repeat``) or ``episodes``.

    An episode task cuts its stream into ``episodes`` pieces of ``length`` values and
    feeds each to a fresh detector, returning the drift positions in each piece.
    """
    out: list[dict[str, Any]] = []
    for task in tasks:
        data = np.load(task["stream"])
        values = data.astype(np.int64) if task.get("binary") else data
        name, params = task["detector"], task["params"]
        if task["kind"] == "throughput":
            xs = values.tolist()
            best, hits = float("inf"), []
            for _ in range(int(task.get("repeat", 1))):
                seconds, hits = feed(make(name, params), xs)
                best = min(best, seconds)
            out.append({"seconds": best, "n": len(xs), "hits": hits})
        else:
            length = int(task["length"])
            episodes = []
            for e in range(int(task["episodes"])):
                piece = values[e * length : (e + 1) * length].tolist()
                episodes.append(feed(make(name, params), piece)[1])
            out.append({"episodes": episodes})
    return out


def _river_factory(name: str, params: dict[str, Any]) -> Any:
    from river import drift
    from river.drift import binary

    classes = {
        "ADWIN": drift.ADWIN,
        "PageHinkley": drift.PageHinkley,
        "KSWIN": drift.KSWIN,
        "DDM": binary.DDM,
        "EDDM": binary.EDDM,
    }
    return classes[name](**params)


def main() -> None:
    import river

    spec = json.load(sys.stdin)
    results = run_tasks(spec["tasks"], _river_factory)
    json.dump({"version": river.__version__, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
