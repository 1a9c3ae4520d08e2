"""Smoke test of the training-fault benchmark (benchmarks/training_faults/): a few real
cases run end to end, and the post-hoc stop step equals a real ``on_failure`` stop."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

try:
    import torch  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI") == "true":
        pytest.fail("torch is required in CI (pip install hindsight[torch])", pytrace=False)
    pytest.skip("torch is not installed", allow_module_level=True)

MACHINE_KINDS = frozenset({"throughput_collapse", "memory_growth"})
BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "training_faults"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    for path in (str(BENCH), str(BENCH.parent)):
        if path not in sys.path:
            sys.path.insert(0, path)
    return importlib.import_module("run")


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="hindsight.training")


def test_the_case_set_is_well_formed(bench: ModuleType) -> None:
    from hindsight.training import SYMPTOM_KINDS

    cases = bench.CASES
    assert len(cases) >= 40
    assert len({c.name for c in cases}) == len(cases)
    assert len({k for c in cases for k in c.expected}) >= 8
    for c in cases:
        assert set(c.expected) <= set(SYMPTOM_KINDS), c.name
        assert c.fix and c.healthy != c.faulty, c.name
        assert 0 <= c.inject_step < c.faulty.steps, c.name


def test_three_cases_score_end_to_end(bench: ModuleType) -> None:
    names = ("zero_std/digits", "lr_jump/blobs", "stale_optimizer/moons")
    cases = [c for c in bench.CASES if c.name in names]
    outcomes = [bench.run_case(c) for c in cases]
    scores = bench.score(outcomes, bench.STRICT_STOP_KINDS)
    assert scores["detection_rate"] == 1.0
    assert scores["false_positive_rate"] == 0.0
    assert scores["type_accuracy"] == 1.0
    rows = {r["case"]: r for r in scores["rows"]}
    assert rows["zero_std/digits"]["stop_step"] == 0
    assert rows["lr_jump/blobs"]["delay"] >= 0  # counted from the injection step
    assert 0.0 < scores["steps_saved"] < 1.0


def test_post_hoc_stop_equals_a_real_stop(bench: ModuleType) -> None:
    case = next(c for c in bench.CASES if c.name == "lr_jump/digits")
    full = bench.run_config(case.faulty)
    stopped = bench.run_config(case.faulty, stop_kinds=bench.STRICT_STOP_KINDS)
    first = bench.first_stop(full, bench.STRICT_STOP_KINDS)
    assert first is not None
    assert stopped.steps_run == first.step + 1
    # Throughput and memory readings depend on the machine; every other report is seeded.
    def seeded(symptoms: list[Any]) -> list[tuple[str, int]]:
        return [(s.kind, s.step) for s in symptoms if s.kind not in MACHINE_KINDS]

    assert seeded(stopped.symptoms) == seeded(full.symptoms)[: len(seeded(stopped.symptoms))]
