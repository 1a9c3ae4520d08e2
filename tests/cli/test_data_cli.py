"""``hindsight profile``, ``check`` and ``drift``: files written, JSON, exit codes for CI."""

from __future__ import annotations

import json
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

HINDSIGHT = Path(sys.executable).parent / "hindsight"
runner = CliRunner()


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(1)  # a seed whose same-distribution pair does not drift
    n = 3000

    def table(shift: float, new_cat: bool) -> pa.Table:
        cats = ["a", "b", "c"] + (["zz"] if new_cat else [])
        return pa.table(
            {
                "x": rng.normal(shift, 1, n),
                "y": rng.exponential(1, n),
                "plan": rng.choice(cats, n),
            }
        )

    out = {}
    for name, t in {
        "ref": table(0.0, False),
        "same": table(0.0, False),
        "drifted": table(0.5, True),
    }.items():
        out[name] = tmp_path / f"{name}.parquet"
        pq.write_table(t, out[name])
    return out


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HINDSIGHT), "--store", f"sqlite:///{tmp_path / 'h.db'}", *args],
        capture_output=True, text=True, check=False, timeout=120,
    )


def test_drift_gates_ci_with_exit_codes(files: dict[str, Path], tmp_path: Path) -> None:
    ok = _run(tmp_path, "drift", str(files["ref"]), str(files["same"]), "--fail-on-drift")
    assert ok.returncode == 0, ok.stderr
    assert "no drift" in ok.stdout
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    bad = _run(
        tmp_path, "drift", str(files["ref"]), str(files["drifted"]), "--fail-on-drift",
        "--json", str(out_json), "--html", str(out_html),
    )
    assert bad.returncode == 1, bad.stderr
    report = json.loads(out_json.read_text())
    assert report["schema"] == SCHEMA and report["drift_detected"]
    assert set(report["drifted_columns"]) == {"x", "plan"}
    html = out_html.read_text()
    assert "<svg" in html and "https://" not in html
    missing = _run(tmp_path, "drift", str(tmp_path / "nope.parquet"), str(files["same"]))
    assert missing.returncode == 2 and "error:" in missing.stderr and "Traceback" not in missing.stderr


def test_stored_reference_profile_round_trip(files: dict[str, Path], tmp_path: Path) -> None:
    saved = _run(tmp_path, "profile", str(files["ref"]), "--save", "train", "--json")
    assert saved.returncode == 0, saved.stderr
    data = json.loads(saved.stdout)
    assert data["n_rows"] == 3000 and data["saved_as"].startswith("prf_")
    drift = _run(tmp_path, "drift", "train", str(files["drifted"]), "--json", "-")
    assert drift.returncode == 0, drift.stderr
    report = json.loads(drift.stdout)
    assert set(report["drifted_columns"]) == {"x", "plan"}
    assert report["reference"]["source"].startswith("profile")
    check = _run(tmp_path, "check", str(files["drifted"]), "--reference", "train", "--json")
    assert check.returncode == 1
    failed = {(r["check"], r["column"]) for r in json.loads(check.stdout)["results"] if r["status"] == "fail"}
    assert ("categories", "plan") in failed
    clean = _run(tmp_path, "check", str(files["same"]), "--reference", "train")
    assert clean.returncode == 0, clean.stdout


def test_profile_file_and_tests_option(files: dict[str, Path], tmp_path: Path) -> None:
    prof = tmp_path / "ref.hsprof"
    r = runner.invoke(app, ["--store", f"sqlite:///{tmp_path / 'h.db'}", "profile", str(files["ref"]), "--out", str(prof)])
    assert r.exit_code == 0, r.output
    assert prof.exists()
    r = runner.invoke(
        app,
        ["--store", f"sqlite:///{tmp_path / 'h.db'}", "drift", str(prof), str(files["drifted"]),
         "--test", "x=psi", "--json", "-"],
    )
    assert r.exit_code == 0, r.output
    cols = {c["column"]: c for c in json.loads(r.stdout)["columns"]}
    assert cols["x"]["test"] == "psi" and cols["x"]["drifted"]
    bad = runner.invoke(app, ["drift", str(prof), str(files["same"]), "--test", "x"])
    assert bad.exit_code != 0


def test_help_everywhere() -> None:
    for cmd in ("profile", "check", "drift"):
        r = runner.invoke(app, [cmd, "--help"])
        assert r.exit_code == 0 and "Usage" in r.output
