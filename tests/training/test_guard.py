"""TrainingGuard: stop vs warn, once-per-run reporting, early stopping, bad input, speed."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from hindsight.errors import ConfigError, DataQualityError
from hindsight.training import (
    LearningRateOutOfRange,
    NonFiniteLoss,
    Plateau,
    TrainingGuard,
    Verdict,
    default_detectors,
)


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="hindsight.training")


def healthy(guard: TrainingGuard, n: int = 50, seed: int = 0) -> Verdict:
    rng = np.random.default_rng(seed)
    verdict = None
    for step in range(n):
        verdict = guard.update(step, loss=2.0 * np.exp(-step / 30) + 0.01 * rng.random(), lr=1e-3)
        assert not verdict.stop and verdict.symptoms == ()
    assert verdict is not None
    return verdict


def test_default_guard_runs_every_default_detector() -> None:
    guard = TrainingGuard()
    assert [type(d) for d in guard.detectors] == [type(d) for d in default_detectors()]


def test_stop_mode_stops_on_a_stop_symptom_and_says_why() -> None:
    guard = TrainingGuard()
    healthy(guard)
    verdict = guard.update(50, loss=float("nan"))
    assert verdict.stop and not verdict.early_stop
    assert [s.kind for s in verdict.symptoms] == ["nonfinite_loss"]
    assert verdict.reason is not None and verdict.reason.startswith("nonfinite_loss: ")
    assert json.dumps(verdict.to_dict())


def test_warn_mode_reports_but_never_stops() -> None:
    guard = TrainingGuard(on_failure="warn")
    healthy(guard)
    verdict = guard.update(50, loss=float("nan"))
    assert not verdict.stop and verdict.reason is None
    assert verdict.symptoms[0].kind == "nonfinite_loss"


def test_a_warn_symptom_does_not_stop_a_stop_mode_guard() -> None:
    guard = TrainingGuard()
    verdict = guard.update(0, loss=1.0, lr=5.0)
    assert [s.kind for s in verdict.symptoms] == ["lr_out_of_range"]
    assert not verdict.stop


def test_severity_can_be_raised_per_detector() -> None:
    guard = TrainingGuard([LearningRateOutOfRange(severity="stop")])
    assert guard.update(0, lr=5.0).stop


def test_each_symptom_is_reported_once_until_it_clears() -> None:
    guard = TrainingGuard([NonFiniteLoss()])
    assert guard.update(0, loss=float("nan")).symptoms
    second = guard.update(1, loss=float("nan"))
    assert second.symptoms == () and not second.stop
    # Other signals alone do not clear it: NonFiniteLoss only looks at the loss.
    assert guard.update(2, lr=1e-3).symptoms == ()
    assert guard.update(3, loss=float("nan")).symptoms == ()
    assert guard.update(4, loss=1.0).symptoms == ()  # cleared
    again = guard.update(5, loss=float("inf"))
    assert again.stop and again.symptoms[0].step == 5
    assert [s.step for s in guard.history] == [0, 5]


def test_plateau_reported_once_over_a_long_stall() -> None:
    guard = TrainingGuard([Plateau(patience=10)])
    for step in range(100):
        guard.update(step, loss=1.0)
    assert [(s.kind, s.step) for s in guard.history] == [("plateau", 10)]


def test_early_stopping_on_val_loss_with_patience_and_best_step() -> None:
    guard = TrainingGuard([], patience=3, min_delta=0.01)
    vals = [1.0, 0.9, 0.8, 0.795, 0.85, 0.86]
    verdicts = [guard.update(10 * (i + 1), loss=1.0, val_loss=v) for i, v in enumerate(vals)]
    assert [v.stop for v in verdicts] == [False] * 5 + [True]
    assert verdicts[-1].early_stop
    # 0.795 is not an improvement of more than min_delta over 0.8
    assert guard.best_step == 30 and guard.best_value == 0.8
    assert verdicts[-1].reason is not None and "val_loss has not improved" in verdicts[-1].reason
    # Steps without a val_loss do not count against patience.
    guard2 = TrainingGuard([], patience=2)
    guard2.update(0, val_loss=1.0)
    assert not any(guard2.update(s, loss=1.0).stop for s in range(1, 50))
    assert guard2.best_step == 0


def test_early_stopping_on_a_metric_in_max_mode_ignores_on_failure() -> None:
    guard = TrainingGuard([], on_failure="warn", monitor="acc", mode="max", patience=2)
    accs = [0.5, 0.6, 0.7, 0.69, 0.7]
    stops = [guard.update(s, metrics={"acc": a}).stop for s, a in enumerate(accs)]
    assert stops == [False, False, False, False, True]
    assert guard.best_value == 0.7 and guard.best_step == 2


def test_without_patience_the_best_is_tracked_but_never_stops() -> None:
    guard = TrainingGuard([])
    for s, v in enumerate([3.0, 2.0, 2.5, 2.6, 2.7, 2.8]):
        assert not guard.update(s, val_loss=v).stop
    assert guard.best_step == 1 and guard.best_value == 2.0


def test_reset_forgets_the_run() -> None:
    guard = TrainingGuard(patience=2)
    guard.update(0, loss=float("nan"), val_loss=1.0)
    guard.reset()
    assert guard.history == () and guard.best_step is None and guard.state.step is None
    assert guard.update(0, loss=float("nan")).symptoms  # reported again in the new run


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"on_failure": "explode"},
            "The 'on_failure' parameter of TrainingGuard must be one of 'stop', 'warn'. Got 'explode'.",
        ),
        (
            {"mode": "up"},
            "The 'mode' parameter of TrainingGuard must be one of 'min', 'max'. Got 'up'.",
        ),
        (
            {"patience": 0},
            "The 'patience' parameter of TrainingGuard must be an int >= 1 or None. Got 0.",
        ),
        (
            {"min_delta": -0.1},
            "The 'min_delta' parameter of TrainingGuard must be a float >= 0. Got -0.1.",
        ),
        (
            {"monitor": ""},
            "The 'monitor' parameter of TrainingGuard must be 'loss', 'val_loss' or a metric name. Got ''.",
        ),
    ],
)
def test_bad_parameters_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        TrainingGuard(**kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_detectors_must_be_detectors() -> None:
    with pytest.raises(ConfigError, match="'detectors' parameter of TrainingGuard"):
        TrainingGuard([Plateau, "nan"])  # type: ignore[list-item]


def test_bad_inputs_name_the_argument_and_change_nothing() -> None:
    guard = TrainingGuard()
    guard.update(0, loss=1.0, grad_norms=[0.1, 0.2, 0.3])
    with pytest.raises(DataQualityError, match="The 'loss' argument must be a real number"):
        guard.update(1, loss="0.5")  # type: ignore[arg-type]
    with pytest.raises(DataQualityError, match="'grad_norms' argument must have 3 values"):
        guard.update(1, loss=0.5, grad_norms=[0.1, 0.2])
    with pytest.raises(DataQualityError, match="'val_loss' argument"):
        guard.update(1, val_loss=[0.5])  # type: ignore[arg-type]
    assert guard.state.step == 0 and len(guard.state.loss) == 1
    assert not guard.update(1, loss=0.9, grad_norms=[0.1, 0.2, 0.3]).stop


def test_new_symptoms_are_logged_as_text(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hindsight.training")
    TrainingGuard().update(0, loss=float("nan"))
    assert "TrainingSymptom: nonfinite_loss" in caplog.text


def test_params_are_a_json_config() -> None:
    guard = TrainingGuard([Plateau(patience=7)], patience=3)
    params = json.loads(json.dumps(guard.params))
    assert params["patience"] == 3
    assert params["detectors"] == [
        {"name": "Plateau", "patience": 7, "min_delta": 1e-3, "severity": "warn"}
    ]
