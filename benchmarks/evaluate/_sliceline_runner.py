"""The SliceLine half of benchmarks/evaluate/slices.py, run inside SliceLine's virtualenv.

It imports nothing of hindsight or of this repository. Reads a JSON spec on stdin (tasks
of pre-binned integer codes and a 0/1 error vector, as ``.npy`` files, and Slicefinder's
parameters) and writes JSON on stdout: per task the seconds ``fit`` took and each slice
found, as ``{column index: code}``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from importlib.metadata import version
from typing import Any

import numpy as np


def fit(x: np.ndarray, errors: np.ndarray, params: dict[str, Any]) -> tuple[float, list[dict[int, int]]]:
    """Seconds to fit, and the slices Slicefinder reports."""
    from sliceline.slicefinder import Slicefinder

    finder = Slicefinder(**params, verbose=False)
    t0 = time.perf_counter()
    finder.fit(x, errors)
    seconds = time.perf_counter() - t0
    found = []
    for row in finder.top_slices_:
        found.append({j: int(v) for j, v in enumerate(row) if v is not None})
    return seconds, found


def main() -> None:
    logging.disable(logging.CRITICAL)
    warnings.filterwarnings("ignore")
    spec = json.load(sys.stdin)
    results = []
    for i, task in enumerate(spec["tasks"]):
        x = np.load(task["x"])
        errors = np.load(task["errors"])
        if i == 0:  # compile Numba's kernels before anything is timed
            fit(x[:2000], errors[:2000], task["params"])
        seconds, found = fit(x, errors, task["params"])
        results.append({"seconds": seconds, "slices": found})
    print(json.dumps({"version": version("sliceline"), "results": results}))


if __name__ == "__main__":
    main()
