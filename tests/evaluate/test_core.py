"""evaluate(): task inference, costs per task, segments and slices, criteria, the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, mean_absolute_error, recall_score

import hindsight
from hindsight.errors import ConfigError, DataError
from hindsight.evaluate import evaluate, evaluation_report, write_evaluation_html
from hindsight.ledger import experiment


def _fraud(n: int = 20_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3, 1, n)
    age = rng.integers(0, 400, n)
    p = 1 / (1 + np.exp(-(amount / 50 - 2)))
    y = (rng.random(n) < p).astype(int)
    new = age < 30
    # The model is blind for new accounts: noise there, signal elsewhere.
    score = np.where(new, rng.random(n), np.clip(p + rng.normal(0, 0.05, n), 0, 1))
    return pd.DataFrame({"amount": amount, "age_days": age, "y": y, "score": score,
                         "user": np.where(new, "new", "returning"),
                         "country": rng.choice(["FR", "DE", "BR"], n)})


def test_binary_costs_segments_and_slices_agree_with_direct_computation() -> None:
    df = _fraud()
    ev = evaluate("y", scores="score", costs={"fp": 5.0, "fn": "amount"}, segments="user",
                  slices={"big": "amount > 100"}, data=df, bootstrap=20)
    assert ev.task == "binary" and ev.n == len(df) and ev.threshold == 0.5
    pred = df.score.to_numpy() >= 0.5
    y = df.y.to_numpy()
    cost = np.where(pred & (y == 0), 5.0, 0.0) + np.where(~pred & (y == 1), df.amount, 0.0)
    assert ev.costs is not None
    assert ev.costs["expected_cost"] == pytest.approx(cost.mean())
    lo, hi = ev.costs["expected_cost_ci"]
    assert lo < cost.mean() < hi
    flat = ev.flat()
    assert flat["recall"] == pytest.approx(recall_score(y, pred))
    new = (df.user == "new").to_numpy()
    assert flat["recall@user=new"] == pytest.approx(recall_score(y[new], pred[new]))
    assert flat["expected_cost@user=new"] == pytest.approx(cost[new].mean())
    big = (df.amount > 100).to_numpy()
    assert flat["f1@slice=big"] == pytest.approx(f1_score(y[big], pred[big]))
    # The cheapest threshold costs no more than the one in use.
    assert flat["best_expected_cost"] <= flat["expected_cost"] + 1e-12
    assert flat["auc@user=new"] < 0.6 < flat["auc@user=returning"]


def test_criteria_read_the_flat_names_and_an_experiment_judges_them(ledger) -> None:
    df = _fraud()
    ev = evaluate("y", scores="score", costs={"fp": 1, "fn": 1}, segments="user", data=df,
                  bootstrap=0)
    verdicts = {v.criterion.metric: v.verdict for v in ev.judge(
        {"expected_cost": "<= 0.5", "recall@user=new": ">= 0.9", "nope": ">= 1"})}
    assert verdicts == {"expected_cost": "met", "recall@user=new": "missed", "nope": "missing"}
    assert not ev.passes({"recall@user=new": ">= 0.9"})
    with experiment("fraud-v1", criteria={"recall@user=new": ">= 0.9", "expected_cost": "<= 0.5"},
                    ledger=ledger, quiet=True) as exp:
        ev.log_to(exp)
    record = ledger.experiment_record(exp.id)
    assert record.outcome == "partial"


def test_the_cheapest_threshold_is_used_when_asked() -> None:
    df = _fraud()
    ev = evaluate("y", scores="score", costs={"fp": 1, "fn": 20}, threshold="cheapest", data=df,
                  bootstrap=0)
    assert ev.threshold_choice is not None and ev.threshold == ev.threshold_choice.threshold
    assert ev.threshold < 0.5  # missing a fraud costs far more than a false alarm
    with pytest.raises(ConfigError, match="needs costs"):
        evaluate("y", scores="score", threshold="cheapest", data=df)


def test_multiclass_cost_matrix_and_bayes_decisions() -> None:
    rng = np.random.default_rng(3)
    n = 30_000
    classes = ["low", "mid", "high"]
    probs = rng.dirichlet([1, 1, 1], n)
    y = np.array(classes)[[rng.choice(3, p=row) for row in probs[:2000]] + list(
        rng.integers(0, 3, n - 2000))]
    # Calling a true "high" anything else is expensive.
    matrix = {"high": {"low": 20, "mid": 10}}
    ev = evaluate(y, probabilities=probs, classes=classes, costs=matrix)
    assert ev.task == "multiclass"
    pred = np.array(classes)[probs.argmax(axis=1)]
    c = np.where(y == pred, 0.0, 1.0)
    c[(y == "high") & (pred == "low")] = 20
    c[(y == "high") & (pred == "mid")] = 10
    assert ev.costs is not None and ev.costs["expected_cost"] == pytest.approx(c.mean())
    assert ev.costs["bayes_expected_cost"] < ev.costs["expected_cost"]
    assert ev.metrics["accuracy"] == pytest.approx((y == pred).mean())
    with pytest.raises(ConfigError, match="not among the classes"):
        evaluate(y, probabilities=probs, classes=classes, costs={"urgent": {"low": 3}})


def test_regression_asymmetric_costs_and_the_cheapest_shift() -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(100, 10, 50_000)
    pred = y + rng.normal(2, 5, y.size)  # over-forecasts by 2 on average
    ev = evaluate(y, pred, costs={"under": 3, "over": 1}, bootstrap=30)
    assert ev.task == "regression"
    assert ev.metrics["mae"] == pytest.approx(mean_absolute_error(y, pred))
    assert ev.costs is not None
    resid = y - pred
    # The cheapest shift is the 3 / (3 + 1) quantile of the residuals.
    assert ev.costs["best_shift"] == pytest.approx(np.quantile(resid, 0.75), abs=0.05)
    lo, hi = ev.costs["best_shift_ci"]
    assert lo <= ev.costs["best_shift"] <= hi
    assert ev.costs["cost_after_shift"] < ev.costs["expected_cost"]


def test_found_slices_leave_out_the_label_and_score_columns() -> None:
    df = _fraud()
    ev = evaluate("y", scores="score", data=df, find=True)
    assert ev.found is not None and ev.found.slices
    used = {c for s in ev.found.slices for c in s.columns}
    assert not used & {"y", "score"}
    assert any("age_days" in s.columns for s in ev.found.slices)


def test_find_options_reach_find_slices() -> None:
    df = _fraud()
    ev = evaluate("y", scores="score", data=df, find={"max_order": 1, "top": 1})
    assert ev.found is not None and len(ev.found.slices) == 1
    assert ev.found.slices[0].order == 1
    only = evaluate("y", scores="score", data=df, find={"columns": ["age_days"]})
    assert only.found is not None and only.found.columns == ("age_days",)
    with pytest.raises(ConfigError, match="find= got 'loss'"):
        evaluate("y", scores="score", data=df, find={"loss": "y"})


def test_bad_input_names_what_to_fix() -> None:
    df = _fraud(500)
    with pytest.raises(DataError, match="'nope' is not in the data"):
        evaluate("nope", scores="score", data=df)
    with pytest.raises(DataError, match="no data= was given"):
        evaluate("y", scores="score")
    with pytest.raises(DataError, match="pass y_pred"):
        evaluate(df.y.to_numpy())
    with pytest.raises(DataError, match="no rows match"):
        evaluate("y", scores="score", slices={"none": "amount < 0"}, data=df)
    with pytest.raises(ConfigError, match="task must be one of"):
        evaluate("y", scores="score", task="ranking", data=df)
    with pytest.raises(DataError, match="positive="):
        evaluate(np.array(["a", "b"] * 5), np.array(["a"] * 10), task="binary")


def test_the_package_is_callable_and_import_stays_lazy() -> None:
    ev = hindsight.evaluate(np.array([0, 1, 1, 0]), scores=np.array([0.1, 0.9, 0.4, 0.3]))
    assert ev.metrics["auc"] == 1.0
    code = "import sys, hindsight; print('hindsight.evaluate' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_report_is_strict_json_and_renders_offline(tmp_path: Path) -> None:
    df = _fraud(5000)
    ev = evaluate("y", scores="score", costs={"fp": 5, "fn": "amount"}, segments="user",
                  slices={"big": "amount > 100"}, find=True, data=df, name="fraud <v1>",
                  bootstrap=10)
    report = evaluation_report(ev, criteria={"recall@user=new": ">= 0.9"})
    assert report["passed"] is False and report["schema"] == "hindsight.evaluation/1"
    text = json.dumps(report, allow_nan=False)
    assert "NaN" not in text
    page = write_evaluation_html(report, tmp_path / "r.html").read_text()
    assert "fraud &lt;v1&gt;" in page and "<script" not in page
    assert "Criteria missed" in page and "recall@user=new" in page
    assert page.count("<svg") == 2  # the cost curve and the reliability diagram
    assert "http://" not in page and "https://" not in page
