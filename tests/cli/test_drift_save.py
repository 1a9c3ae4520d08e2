"""``hindsight drift --save NAME``: the report lands in the store, exit codes and JSON intact."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from hindsight.cli.main import app
from hindsight.drift import SCHEMA
from hindsight.store import open_store

HINDSIGHT = Path(sys.executable).parent / "hindsight"
runner = CliRunner()
_ID = re.compile(r"stored as nightly \((drf_[0-9a-f]+)\)")


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(1)
    n = 3000
    out = {}
    for name, shift, cats in (("ref", 0.0, "abc"), ("drifted", 0.5, "abcz")):
        out[name] = tmp_path / f"{name}.parquet"
        pq.write_table(pa.table({
            "x": rng.normal(shift, 1, n),
            "y": rng.exponential(1, n),
            "plan": rng.choice(list(cats), n),
        }), out[name])
    return out


def test_save_stores_the_report_and_prints_its_id(files: dict[str, Path], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    r = runner.invoke(app, ["--store", url, "drift", str(files["ref"]), str(files["drifted"]),
                            "--save", "nightly", "--project", "shop"])
    assert r.exit_code == 0, r.output
    m = _ID.search(r.stdout)
    assert m is not None, r.stdout
    store = open_store(url)
    try:
        row = store.get_drift_report(m.group(1))
        assert (row["project"], row["name"]) == ("shop", "nightly")
        assert (row["n_columns"], row["n_drifted"], row["drift_detected"]) == (3, 2, True)
        assert sorted(row["report"]["drifted_columns"]) == ["plan", "x"]
    finally:
        store.close()


def test_json_on_stdout_stays_json_and_drift_still_exits_1(
    files: dict[str, Path], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    r = runner.invoke(app, ["--store", url, "drift", str(files["ref"]), str(files["drifted"]),
                            "--json", "-", "--save", "nightly", "--fail-on-drift"])
    assert r.exit_code == 1, r.output
    report = json.loads(r.stdout)  # the id went to stderr
    assert report["schema"] == SCHEMA and report["drift_detected"]
    m = _ID.search(r.stderr)
    assert m is not None, r.stderr
    store = open_store(url)
    try:
        row = store.get_drift_report(m.group(1))
        assert row["project"] == "default"  # HINDSIGHT_PROJECT's default
        assert row["report"] == report
    finally:
        store.close()


def test_bad_save_options_exit_2(files: dict[str, Path], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    base = [str(HINDSIGHT), "--store", url, "drift", str(files["ref"]), str(files["drifted"])]
    blank = subprocess.run([*base, "--save", "  "], capture_output=True, text=True, timeout=120,
                           check=False)
    assert blank.returncode == 2 and "error:" in blank.stderr and "name must" in blank.stderr
    assert "Traceback" not in blank.stderr
    lonely = subprocess.run([*base, "--project", "shop"], capture_output=True, text=True,
                            timeout=120, check=False)
    assert lonely.returncode == 2 and "--save" in lonely.stderr
    store = open_store(url)
    try:
        assert store.list_drift_reports() == ([], 0)
    finally:
        store.close()
