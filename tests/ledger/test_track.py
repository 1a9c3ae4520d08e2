"""``hindsight.run_experiment`` and ``@hindsight.track``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import hindsight
from hindsight.errors import LedgerError
from hindsight.ledger import Experiment, Ledger, add_lesson

# -- run_experiment -----------------------------------------------------------------


def test_run_experiment_success(any_ledger: Ledger) -> None:
    def train(config: dict[str, Any]) -> dict[str, Any]:
        return {"acc": 0.5 + config["lr"], "loss": 0.1, "model": "mf"}

    result = hindsight.run_experiment(
        "mf", "MF beats popularity", {"lr": 0.4}, train, criteria={"acc": ">= 0.8"},
        tags=["mf"],
    )
    assert result["status"] == "success"
    assert result["metrics"] == {"acc": 0.9, "loss": 0.1}
    assert result["outcome"] == "success"
    assert result["verdicts"] == [
        {"metric": "acc", "op": ">=", "threshold": 0.8, "value": 0.9, "verdict": "met"}
    ]
    rec = any_ledger.experiment_record(result["experiment_id"])
    assert (rec.name, rec.hypothesis, rec.config, rec.tags) == (
        "mf", "MF beats popularity", {"lr": 0.4}, ["mf"]
    )
    assert (rec.status, rec.outcome) == ("finished", "success")


def test_run_experiment_without_criteria_has_no_outcome(ledger: Ledger) -> None:
    result = hindsight.run_experiment("x", "h", {}, lambda config: {"acc": 0.7})
    assert (result["status"], result["metrics"], result["outcome"]) == (
        "success", {"acc": 0.7}, None
    )


def test_run_experiment_logs_series_through_exp(any_ledger: Ledger) -> None:
    def train(config: dict[str, Any], exp: Experiment) -> dict[str, float]:
        losses = np.geomspace(1.0, 0.01, config["epochs"])
        exp.log_series("loss", losses)
        for epoch in range(config["epochs"]):
            exp.log_metric("val_loss", float(losses[epoch]) * 1.1)
        return {"acc": 0.91}

    result = hindsight.run_experiment("series", "h", {"epochs": 20}, train)
    assert result["status"] == "success"
    series = any_ledger.store.metric_series(result["experiment_id"])
    steps, vals, _ = series["loss"]
    assert steps.tolist() == list(range(20))
    assert np.array_equal(vals, np.geomspace(1.0, 0.01, 20))
    assert series["val_loss"][0].tolist() == list(range(20))
    assert result["metrics"] == {"loss": 0.01, "val_loss": pytest.approx(0.011), "acc": 0.91}


def _divide(config: dict[str, Any]) -> float:
    return float(config["total"] / config["batches"])


def test_run_experiment_failure(any_ledger: Ledger) -> None:
    result = hindsight.run_experiment("zero", "h", {"total": 10, "batches": 0}, _divide)
    assert result["status"] == "failed"
    assert result["error"] == "ZeroDivisionError: division by zero"
    assert result["error_type"] == "ZeroDivisionError"
    assert result["diagnosis"]["category"] == "code.error"
    recs = result["diagnosis"]["recommendations"]
    assert recs and result["learnings"] == recs
    assert result["similar"] == []
    rec = any_ledger.experiment_record(result["experiment_id"])
    assert (rec.status, rec.outcome, rec.failure_id) == ("crashed", "failure", result["failure_id"])
    f = any_ledger.failure_record(result["failure_id"])
    assert f.evidence["config"] == {"total": 10, "batches": 0}


def _forward(config: dict[str, Any]) -> None:
    x = np.ones((config["batch"], config["features"]))
    w = np.ones((config["hidden"], 2))
    _ = x @ w


def test_second_failure_learns_from_the_first(any_ledger: Ledger) -> None:
    config = {"batch": 8, "features": 3, "hidden": 4}
    first = hindsight.run_experiment("shapes", "a wider layer helps", config, _forward)
    assert first["status"] == "failed"
    assert first["diagnosis"]["category"] == "dl.shape_mismatch"
    text = "Check that hidden equals the number of input features before widening the layer"
    add_lesson(any_ledger, text, sources=[first["failure_id"]])

    second = hindsight.run_experiment("shapes", "a wider layer helps", config, _forward)
    assert second["status"] == "failed"
    assert text in second["learnings"]
    assert set(first["diagnosis"]["recommendations"]) <= set(second["learnings"])
    (similar,) = second["similar"]
    assert similar["exact"] is True
    assert similar["failure"]["id"] == first["failure_id"]
    assert [les["text"] for les in similar["lessons"]] == [text]


def test_run_experiment_does_not_hide_ledger_errors(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match=r"config\.model"):
        hindsight.run_experiment("x", "h", {"model": object()}, lambda c: None)
    with pytest.raises(LedgerError, match="train_func must be callable"):
        hindsight.run_experiment("x", "h", {}, "train.py")  # type: ignore[arg-type]
    assert ledger.experiments() == []


def test_run_experiment_lets_keyboard_interrupt_through(ledger: Ledger) -> None:
    def train(config: dict[str, Any]) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        hindsight.run_experiment("x", "h", {}, train)
    (rec,) = ledger.experiments()
    assert rec.status == "killed"


# -- @track -------------------------------------------------------------------------


class Model:
    pass


def test_track_config_from_call_arguments_and_metrics_from_result(ledger: Ledger) -> None:
    @hindsight.track(
        "tracked", hypothesis="lower lr converges", config={"dataset": "ml-1m", "lr": 1.0},
        criteria={"acc": ">= 0.8"}, tags=["lr"],
    )
    def train(lr: float, epochs: int = 3, model: object = None) -> dict[str, Any]:
        return {"acc": np.float32(0.75), "steps": np.int64(300), "done": True, "name": "m"}

    result = train(0.01, model=Model())
    assert result["name"] == "m"  # the function's own result comes back unchanged
    (rec,) = ledger.experiments()
    assert rec.name == "tracked"
    assert rec.hypothesis == "lower lr converges"
    assert rec.tags == ["lr"]
    assert rec.config == {"dataset": "ml-1m", "lr": 0.01, "epochs": 3, "model": "<Model>"}
    assert rec.summary == {"acc": 0.75, "steps": 300.0}
    assert (rec.status, rec.outcome) == ("finished", "failure")


def test_track_injects_exp_and_names_after_the_function(ledger: Ledger) -> None:
    @hindsight.track()
    def fit(epochs: int, exp: Experiment | None = None) -> None:
        assert exp is not None
        for epoch in range(epochs):
            exp.log_metric("loss", 1.0 / (epoch + 1))
        exp.next_step("try more epochs")

    fit(4)
    fit(2)
    runs = ledger.experiments(newest_first=False)
    assert [r.name for r in runs] == [fit.__qualname__] * 2
    assert [r.config for r in runs] == [{"epochs": 4}, {"epochs": 2}]
    series = ledger.store.metric_series(runs[0].id)["loss"]
    assert series[0].tolist() == [0, 1, 2, 3]
    assert [n["text"] for n in ledger.store.notes(runs[1].id)] == ["try more epochs"]
    assert fit.__name__ == "fit"


def test_track_records_and_reraises(ledger: Ledger) -> None:
    @hindsight.track("fails")
    def train(path: str) -> None:
        with open(path) as fh:
            fh.read()

    with pytest.raises(FileNotFoundError) as info:
        train("data/missing.csv")
    assert info.value.filename == "data/missing.csv"
    (rec,) = ledger.experiments()
    assert (rec.status, rec.outcome) == ("crashed", "failure")
    assert rec.config == {"path": "data/missing.csv"}
    f = ledger.failure_record(rec.failure_id or "")
    assert f.exc_type == "FileNotFoundError"
    assert f.category == "env.path"


def test_bare_track_decorator_records_the_call(ledger: Ledger) -> None:
    @hindsight.track
    def fit(lr: float = 0.1) -> dict[str, float]:
        return {"acc": 0.8}

    assert fit(lr=0.2) == {"acc": 0.8}
    (record,) = ledger.experiments()
    assert record.name.endswith("fit")
    assert record.config == {"lr": 0.2}
    assert record.summary == {"acc": 0.8}


def test_run_experiment_passes_exp_only_when_asked(ledger: Ledger) -> None:
    seen: dict[str, Any] = {}

    def optional_second(config: dict[str, Any], verbose: bool = False) -> dict[str, float]:
        seen["verbose"] = verbose
        return {"acc": 1.0}

    def keyword_exp(config: dict[str, Any], *, exp: Experiment) -> None:
        seen["exp"] = exp.id
        exp.log_metric("acc", 0.5)

    assert hindsight.run_experiment("a", "h", {}, optional_second)["status"] == "success"
    assert seen["verbose"] is False
    result = hindsight.run_experiment("b", "h", {}, keyword_exp)
    assert result["status"] == "success"
    assert seen["exp"] == result["experiment_id"]
    assert result["metrics"] == {"acc": 0.5}
