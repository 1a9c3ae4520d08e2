"""Helpers shared by the benchmark scripts: arguments, medians, PASS/MISS lines, JSON."""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Target:
    """One performance target: what was measured, against what, and whether it was met."""

    name: str
    value: float
    unit: str
    goal: str
    met: bool
    peer: float | None = None
    ratio: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Reported for context, not a target of its own (e.g. a stress case beyond the spec).
    info: bool = False

    @property
    def verdict(self) -> str:
        if self.info:
            return "INFO"
        return "PASS" if self.met else "MISS"


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions (median reported)")
    return parser.parse_args(argv)


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def percentile(xs: Sequence[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(xs, dtype=float), q))


def quiet_mlflow() -> None:
    """Silence MLflow's and Alembic's chatter (migrations, telemetry) for clean output."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    import mlflow  # noqa: F401  (configures its loggers on import; quieten them after)

    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def report(title: str, targets: Sequence[Target], info: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(
            {"benchmark": title, "info": info, "targets": [
                {**asdict(t), "verdict": t.verdict} for t in targets
            ]},
            indent=2,
        ))
        return
    print(f"== {title}")
    for key, value in info.items():
        print(f"   {key}: {value}")
    for tg in targets:
        peer = "" if tg.peer is None else f"  peer {tg.peer:,.4g} {tg.unit}"
        ratio = "" if tg.ratio is None else f"  ratio {tg.ratio:,.1f}x"
        print(f"   [{tg.verdict}] {tg.name}: {tg.value:,.4g} {tg.unit}{peer}{ratio}  (target {tg.goal})")
    sys.stdout.flush()
