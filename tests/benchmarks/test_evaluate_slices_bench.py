"""Smoke test of the slice-finding benchmark (benchmarks/evaluate/slices.py): its quick
mode on hindsight alone (no SliceLine virtualenv, no network), and its scoring rules."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "evaluate" / "slices.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    # A name of its own: "slices" would shadow nothing here, but other benchmarks' tests
    # import modules by short names too.
    spec = importlib.util.spec_from_file_location("evaluate_slices_bench", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_quick_mode_runs_on_hindsight_alone(bench: ModuleType,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--quick", "--no-peer", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    targets = {t["name"]: t for t in out["targets"]}
    recall = targets["recall of planted segments"]
    false = targets["false discoveries per planted data set"]
    assert recall["verdict"] == "PASS" and recall["value"] >= 0.9 and recall["peer"] is None
    assert false["verdict"] == "PASS" and false["value"] <= 1
    assert out["info"]["sliceline"].startswith("not run")
    rows = out["info"]["datasets"]
    assert [r["data"] for r in rows] == ["planted seed 0", "planted seed 1",
                                         "null seed 0", "null seed 1"]
    assert all("sliceline" not in r for r in rows)
    for r in rows[:2]:
        assert "country == 'BR'" in r["hindsight"]["slices"]


def test_scoring_rules(bench: ModuleType) -> None:
    planted = {"a": np.arange(100) < 10}
    exact, half, far = (np.arange(100) < 10, np.arange(100) < 20,
                        (np.arange(100) >= 50) & (np.arange(100) < 60))
    s = bench.score([exact, half, far], planted)
    assert s == {"recall": 1.0, "false": 1, "other": 2, "reported": 3}
    assert bench.score([half], planted)["recall"] == 0.0  # Jaccard 0.5 < 0.7
    assert bench.score([], {})["recall"] is None


def test_datasets_and_sliceline_binning(bench: ModuleType) -> None:
    table, error, segments = bench.make_dataset(5000, 0)
    assert table.num_columns == 10 and error.shape == (5000,)
    assert set(segments) == {"country == 'BR'", "age < 25 and channel == 'web'",
                             "plan == 'free' and is_new == True"}
    for mask in segments.values():
        assert error[mask].mean() > 0.2 > error[~mask].mean()
    codes = bench.binned(table)
    assert codes.shape == (5000, 10) and codes.min() >= 1
    assert len(np.unique(codes[:, table.column_names.index("amount")])) == 5
    assert len(np.unique(codes[:, table.column_names.index("score")])) == 6  # bins + missing
    _, null_error, none = bench.make_dataset(5000, 1, planted=False)
    assert none == {} and abs(null_error.mean() - 0.1) < 0.02
