"""``hindsight evaluate``: tables, JSON, the HTML page and exit codes CI can gate on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

HINDSIGHT = [sys.executable, "-m", "hindsight.cli.main"]


@pytest.fixture
def predictions(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 4000
    amount = rng.lognormal(3, 1, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(amount / 50 - 2)))).astype(int)
    new = rng.random(n) < 0.2
    score = np.where(new, rng.random(n), np.clip(y * 0.6 + rng.random(n) * 0.4, 0, 1))
    path = tmp_path / "preds.csv"
    pd.DataFrame({"y": y, "score": score, "amount": amount,
                  "user": np.where(new, "new", "returning"),
                  "churned": (rng.random(n) < 0.1).astype(int)}).to_csv(path, index=False)
    return path


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HINDSIGHT, "evaluate", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_criteria_gate_the_exit_code_and_json_carries_the_verdicts(
    predictions: Path, tmp_path: Path
) -> None:
    base = [str(predictions), "-y", "y", "--score", "score", "--cost-fp", "5", "--cost-fn",
            "amount", "--segment", "user"]
    ok = _run(*base, "--criteria", "recall@user=returning>=0.5", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "expected_cost" in ok.stdout and "user=new" in ok.stdout
    bad = _run(*base, "--criteria", "recall@user=new>=0.99", "--json", "--html",
               str(tmp_path / "r.html"), cwd=tmp_path)
    assert bad.returncode == 1, bad.stderr
    report = json.loads(bad.stdout)
    assert report["passed"] is False
    assert report["criteria"][0]["metric"] == "recall@user=new"
    assert report["criteria"][0]["verdict"] == "missed"
    assert "Criteria missed" in (tmp_path / "r.html").read_text()


def test_slices_find_and_false_positives(predictions: Path, tmp_path: Path) -> None:
    r = _run(str(predictions), "-y", "y", "--score", "score", "--slice", "big=amount > 100",
             "--find", "--false-positives", "--outcome", "churned", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert [s["value"] for s in report["evaluation"]["slices"]] == ["big"]
    found = report["evaluation"]["found"]["slices"]
    assert any("user == 'new'" in s["expr"] for s in found)
    assert report["false_positives"]["n_fp"] > 0


def test_bad_input_exits_2_with_one_line(predictions: Path, tmp_path: Path) -> None:
    r = _run(str(predictions), "-y", "nope", "--score", "score", cwd=tmp_path)
    assert r.returncode == 2
    assert "nope" in r.stderr and "Traceback" not in r.stderr
    r = _run(str(predictions), "-y", "y", "--score", "score", "--threshold", "high", cwd=tmp_path)
    assert r.returncode == 2 and "cheapest" in r.stderr


def test_a_multiclass_cost_matrix_and_regression_costs(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 3000
    y = rng.choice(["low", "mid", "high"], n)
    pred = np.where(rng.random(n) < 0.7, y, rng.choice(["low", "mid", "high"], n))
    pd.DataFrame({"y": y, "pred": pred}).to_csv(tmp_path / "mc.csv", index=False)
    (tmp_path / "costs.json").write_text(json.dumps({"high": {"low": 20, "mid": 10}}))
    r = _run(str(tmp_path / "mc.csv"), "-y", "y", "--pred", "pred", "--cost-matrix",
             str(tmp_path / "costs.json"), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    cost = np.where(y == pred, 0.0, 1.0)
    cost[(y == "high") & (pred == "low")] = 20
    cost[(y == "high") & (pred == "mid")] = 10
    got = json.loads(r.stdout)["evaluation"]["costs"]["expected_cost"]
    assert got == pytest.approx(cost.mean())
    t = rng.normal(50, 5, n)
    pd.DataFrame({"t": t, "f": t + 1.0}).to_csv(tmp_path / "reg.csv", index=False)
    r = _run(str(tmp_path / "reg.csv"), "-y", "t", "--pred", "f", "--cost-under", "3",
             "--cost-over", "1", "--criteria", "expected_cost<=0.5", "--json", cwd=tmp_path)
    assert r.returncode == 1  # over-forecasting by 1 costs 1 per prediction
    assert json.loads(r.stdout)["evaluation"]["costs"]["expected_cost"] == pytest.approx(1.0)
