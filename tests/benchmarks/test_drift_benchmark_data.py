"""The drift benchmark's data, in memory at 100,000 rows: hindsight finds the 7 drifted
columns and nothing else, from raw data and from a stored profile (a regression test of
detection quality; timings are the benchmark's business, not this test's)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

import hindsight
from hindsight.data import DatasetProfile

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "drift"


@pytest.fixture(scope="module")
def data() -> ModuleType:
    """benchmarks/drift/data.py, under a name no test module can shadow."""
    spec = importlib.util.spec_from_file_location("hindsight_drift_bench_data", BENCH / "data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_finds_every_drifted_column_and_no_other(data: ModuleType, tmp_path: Path) -> None:
    ref, cur = data.make_table(100_000, current=False), data.make_table(100_000, current=True)
    raw = hindsight.drift_report(ref, cur)
    assert sorted(raw.drifted_columns) == sorted(data.DRIFTED)
    path = hindsight.profile(ref).save(tmp_path / "ref.hsprof")
    stored = hindsight.drift_report(DatasetProfile.load(path), cur)
    assert sorted(stored.drifted_columns) == sorted(data.DRIFTED)
    assert not raw.schema_changes and raw.n_reference == raw.n_current == 100_000
