"""Config checks: each one fires on a bad setting and stays quiet on a good one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hindsight.diagnose import ConfigIssue, check_config
from hindsight.diagnose.settings import LR_KEYS, find_setting, flatten_config
from hindsight.errors import DiagnosisError

SEEDED: dict[str, Any] = {"seed": 0}


def _issues(config: dict[str, Any]) -> dict[str, ConfigIssue]:
    return {i.key: i for i in check_config({**SEEDED, **config})}


def test_learning_rate_range() -> None:
    neg = _issues({"lr": -0.1})["lr"]
    assert neg.severity == "error"
    assert "lr=-0.1" in neg.message and "[1e-06, 1]" in neg.message
    assert _issues({"learning_rate": 0})["learning_rate"].severity == "error"
    high = _issues({"learning_rate": 5.0, "max_grad_norm": 1.0})["learning_rate"]
    assert high.severity == "warning" and "5.0" in high.message and "(5 -> 0.5)" in high.fix
    assert _issues({"eta": 1e-8})["eta"].severity == "warning"
    assert _issues({"lr": 1e-3}) == {}
    assert _issues({"lr": 1.0, "clip_norm": 1}) == {}


def test_batch_size_against_dataset_size() -> None:
    issue = _issues({"batch_size": 512, "n_samples": 100})["batch_size"]
    assert issue.severity == "error"
    assert "batch_size=512" in issue.message and "n_samples=100" in issue.message
    assert "at most 100" in issue.fix
    assert _issues({"batch_size": 64, "n_samples": 100}) == {}
    # scikit-learn's train_size=0.8 is a fraction, not a count
    assert _issues({"batch_size": 64, "train_size": 0.8}) == {}
    assert _issues({"bs": 0})["bs"].severity == "error"


def test_missing_seed_is_reported_once() -> None:
    issues = check_config({"lr": 1e-3})
    assert [(i.key, i.severity) for i in issues] == [("seed", "info")]
    assert "not reproducible" in issues[0].message
    assert check_config({"lr": 1e-3, "random_state": 42}) == []
    assert [i.key for i in check_config({"lr": 1e-3, "seed": None})] == ["seed"]


def test_epochs() -> None:
    assert _issues({"epochs": 0})["epochs"].severity == "error"
    assert _issues({"num_train_epochs": -3})["num_train_epochs"].severity == "error"
    unlimited = _issues({"max_epochs": -1})["max_epochs"]
    assert unlimited.severity == "info" and "unlimited" in unlimited.message
    assert _issues({"epochs": 10}) == {}


@pytest.mark.parametrize(
    ("value", "bad"), [(1.0, True), (-0.1, True), (1.5, True), (0.0, False), (0.5, False)]
)
def test_dropout_is_a_probability(value: float, bad: bool) -> None:
    issues = _issues({"model": {"attention_dropout": value}})
    assert ("model.attention_dropout" in issues) is bad
    if bad:
        assert issues["model.attention_dropout"].severity == "error"
        assert "[0, 1)" in issues["model.attention_dropout"].message


def test_weight_decay_and_momentum() -> None:
    assert _issues({"weight_decay": -0.01})["weight_decay"].severity == "error"
    assert _issues({"weight_decay": 0.01}) == {}
    assert _issues({"momentum": 1.2})["momentum"].severity == "error"
    assert _issues({"momentum": 0.9}) == {}


def test_gradient_clipping_hint_with_a_high_learning_rate() -> None:
    hint = _issues({"lr": 0.1})["lr"]
    assert hint.severity == "info" and "clipping" in hint.message
    assert _issues({"lr": 0.1, "gradient_clip_val": 0.5}) == {}
    assert "lr" in _issues({"lr": 0.1, "max_grad_norm": 0})  # 0 disables clipping
    assert _issues({"lr": 0.001}) == {}
    # boosted trees call their step size learning_rate too; clipping means nothing there
    assert _issues({"learning_rate": 0.1, "n_estimators": 300}) == {}


def test_warmup_longer_than_the_run() -> None:
    warm = _issues({"warmup_steps": 5000, "max_steps": 1000})["warmup_steps"]
    assert warm.severity == "warning" and "max_steps=1000" in warm.message
    assert _issues({"warmup_steps": 100, "max_steps": 1000}) == {}
    assert _issues({"warmup_ratio": 1.5})["warmup_ratio"].severity == "warning"
    assert _issues({"warmup_epochs": 20, "epochs": 10})["warmup_epochs"].severity == "warning"


def test_nested_keys_case_hyphens_and_numeric_strings() -> None:
    issues = _issues({"Optimizer": {"Learning-Rate": "-1e-3"}})
    assert issues["Optimizer.Learning-Rate"].severity == "error"
    assert issues["Optimizer.Learning-Rate"].value == "-1e-3"
    assert _issues({"lr": True, "batch_size": "many"}) == {}  # not numbers: nothing to check


def test_errors_come_first_and_empty_configs_have_no_issues() -> None:
    issues = check_config({"lr": 0.5, "dropout": 1.0})
    assert [i.severity for i in issues] == ["error", "info", "info"]
    assert check_config(None) == []
    assert check_config({}) == []
    with pytest.raises(DiagnosisError, match="mapping"):
        check_config([("lr", 1)])  # type: ignore[arg-type]


def test_config_issue_dict_round_trip() -> None:
    issue = _issues({"lr": -1})["lr"]
    assert ConfigIssue.from_dict(json.loads(json.dumps(issue.to_dict()))) == issue
    odd = ConfigIssue("lr", float("nan"), "m", "warning")
    assert odd.to_dict()["value"] == "nan"
    with pytest.raises(DiagnosisError, match="severity"):
        ConfigIssue.from_dict({"key": "lr", "message": "m", "severity": "fatal"})
    with pytest.raises(DiagnosisError):
        ConfigIssue.from_dict({"severity": "error"})


def test_settings_helpers() -> None:
    flat = flatten_config({"a": {"b": {"lr": 1}}, "empty": {}, "x": 2})
    assert flat == {"a.b.lr": 1, "empty": {}, "x": 2}
    assert find_setting(flat, LR_KEYS) == ("a.b.lr", 1)
    assert find_setting({"lr": "fast"}, LR_KEYS) is None
