"""The XGBoost integration on real, tiny, seeded CPU boosting runs."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

try:
    import xgboost
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI") == "true":
        pytest.fail("xgboost is required in CI (pip install hindsight[xgboost])", pytrace=False)
    pytest.skip("xgboost is not installed", allow_module_level=True)


from hindsight.errors import ConfigError
from hindsight.training import NonFiniteLoss, TrainingGuard
from hindsight.training.integrations.xgboost import GuardCallback, default_guard
from training.integrations.boosting_data import (  # noqa: F401 (an autouse fixture)
    Arrays,
    _quiet_logs,
    healthy_data,
    noisy_data,
)

HEALTHY = {"objective": "binary:logistic", "eta": 0.1, "max_depth": 3, "seed": 0, "nthread": 1}
DOOMED = {
    "objective": "binary:logistic",
    "eta": 0.5,
    "max_depth": 8,
    "min_child_weight": 0,
    "seed": 0,
    "nthread": 1,  # tiny data: one thread is fastest and steady on a busy machine
}


def train(
    params: dict[str, object],
    data: Arrays,
    rounds: int,
    callback: GuardCallback,
    **kwargs: object,
) -> xgboost.Booster:
    x_tr, x_va, y_tr, y_va = data
    dtrain = xgboost.DMatrix(x_tr, label=y_tr)
    dval = xgboost.DMatrix(x_va, label=y_va)
    return xgboost.train(
        params,
        dtrain,
        rounds,
        evals=[(dtrain, "train"), (dval, "val")],
        verbose_eval=False,
        callbacks=[callback],
        **kwargs,  # type: ignore[arg-type]
    )


def val_logloss(bst: xgboost.Booster, data: Arrays, rounds: int) -> float:
    _, x_va, _, y_va = data
    p = bst.predict(xgboost.DMatrix(x_va), iteration_range=(0, rounds))
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y_va * np.log(p) + (1 - y_va) * np.log(1 - p)))


# -- healthy and doomed runs -----------------------------------------------------------
def test_a_healthy_run_is_not_stopped() -> None:
    callback = GuardCallback()
    bst = train(HEALTHY, healthy_data(), 300, callback)
    assert callback.stopped_reason is None and callback.stopped_step is None
    assert bst.num_boosted_rounds() == 300
    assert not any(s.severity == "stop" for s in callback.guard.history)
    state = callback.guard.state
    assert len(state.loss) == len(state.val_loss) == 256  # the guard's window
    assert callback.last_verdict is not None and callback.last_verdict.step == 299
    assert float(state.loss[-1]) < 0.05 < float(state.val_loss[-1])
    assert state.metric("val-logloss")[-1] == state.val_loss[-1]
    # The best round is marked on the booster, as XGBoost's own early stopping does.
    best = callback.best_iteration
    assert best is not None and bst.best_iteration == best
    assert bst.best_score == pytest.approx(callback.guard.best_value)


def test_overfitting_is_stopped_early_and_the_best_round_is_marked() -> None:
    data = noisy_data()
    callback = GuardCallback()
    bst = train(DOOMED, data, 200, callback)
    assert callback.stopped_step is not None and callback.stopped_step < 40
    assert callback.stopped_reason is not None and "overfitting" in callback.stopped_reason
    (found,) = [s for v in callback.verdicts for s in v.symptoms if s.severity == "stop"]
    assert found.kind == "overfitting"
    assert found.evidence["val_slope"] > 0 > found.evidence["train_slope"]
    assert bst.num_boosted_rounds() == callback.stopped_step + 1  # every tree is kept...
    best = callback.best_iteration
    assert best is not None and best < callback.stopped_step
    assert bst.best_iteration == best  # ...and the best round is marked
    assert bst.best_score == pytest.approx(val_logloss(bst, data, best + 1), rel=1e-5)
    assert val_logloss(bst, data, best + 1) < val_logloss(bst, data, bst.num_boosted_rounds())


def test_restore_best_weights_cuts_the_booster_at_the_best_round() -> None:
    data = noisy_data()
    full = train(DOOMED, data, 200, GuardCallback())
    callback = GuardCallback(restore_best_weights=True)
    bst = train(DOOMED, data, 200, callback)
    best = callback.best_iteration
    assert best is not None and bst.num_boosted_rounds() == best + 1
    assert bst.best_iteration == best
    x_va = xgboost.DMatrix(data[1])
    np.testing.assert_allclose(
        bst.predict(x_va), full.predict(x_va, iteration_range=(0, best + 1)), rtol=1e-6
    )


def test_the_scikit_learn_estimator_predicts_with_the_best_round() -> None:
    x_tr, x_va, y_tr, y_va = noisy_data()
    callback = GuardCallback()
    clf = xgboost.XGBClassifier(
        n_estimators=200,
        learning_rate=0.5,
        max_depth=8,
        min_child_weight=0,
        random_state=0,
        n_jobs=1,
        callbacks=[callback],
    )
    clf.fit(x_tr, y_tr, eval_set=[(x_tr, y_tr), (x_va, y_va)], verbose=False)
    assert callback.stopped_reason is not None and "overfitting" in callback.stopped_reason
    best = callback.best_iteration
    assert best is not None and clf.best_iteration == best
    booster = clf.get_booster()
    assert booster.num_boosted_rounds() > best + 1
    np.testing.assert_allclose(
        clf.predict_proba(x_va)[:, 1],
        booster.predict(xgboost.DMatrix(x_va), iteration_range=(0, best + 1)),
        rtol=1e-6,
    )
    assert set(callback.guard.state.metric_names) == {
        "validation_0-logloss",
        "validation_1-logloss",
    }


def test_a_nan_metric_stops_at_once() -> None:
    def nan_metric(predt: np.ndarray, dmat: xgboost.DMatrix) -> tuple[str, float]:
        return "bad", math.nan

    callback = GuardCallback(metric="bad")
    params = {**HEALTHY, "disable_default_eval_metric": 1}
    bst = train(params, healthy_data(), 50, callback, custom_metric=nan_metric)
    assert callback.stopped_step == 0
    assert callback.verdicts[0].symptoms[0].kind == "nonfinite_loss"
    assert bst.num_boosted_rounds() == 1


def test_training_continuation_counts_the_earlier_rounds() -> None:
    data = healthy_data()
    first = train(HEALTHY, data, 10, GuardCallback())
    callback = GuardCallback()
    bst = train(HEALTHY, data, 5, callback, xgb_model=first)
    assert bst.num_boosted_rounds() == 15
    assert callback.last_verdict is not None and callback.last_verdict.step == 14
    assert list(callback.guard.state.loss_steps) == list(range(10, 15))


# -- choosing the curves ---------------------------------------------------------------
def test_the_first_loss_metric_is_watched_and_others_are_metrics() -> None:
    guard = default_guard(monitor="val-auc", mode="max")
    callback = GuardCallback(guard)
    params = {**HEALTHY, "eval_metric": ["auc", "error", "logloss"]}
    bst = train(params, healthy_data(), 30, callback)
    state = guard.state
    assert state.loss[-1] == state.metric("train-error")[-1]  # auc is higher-is-better
    assert state.val_loss[-1] == state.metric("val-error")[-1]
    assert guard.best_value == pytest.approx(float(state.metric("val-auc").max()))
    assert bst.best_iteration == guard.best_step


def test_named_sets_and_metric() -> None:
    callback = GuardCallback(train_set="val", val_set="train", metric="logloss")
    data = healthy_data()
    train(HEALTHY, data, 5, callback)
    state = callback.guard.state
    assert state.loss[-1] == state.metric("val-logloss")[-1]
    assert state.val_loss[-1] == state.metric("train-logloss")[-1]


def test_a_single_validation_set_is_the_validation_loss() -> None:
    x_tr, x_va, y_tr, y_va = healthy_data()
    callback = GuardCallback()
    xgboost.train(
        HEALTHY,
        xgboost.DMatrix(x_tr, label=y_tr),
        5,
        evals=[(xgboost.DMatrix(x_va, label=y_va), "eval")],
        verbose_eval=False,
        callbacks=[callback],
    )
    assert len(callback.guard.state.val_loss) == 5
    assert len(callback.guard.state.loss) == 0


def test_default_guard_is_tuned_to_boosting() -> None:
    guard = default_guard(patience=10)
    kinds = {d.kind: d for d in guard.detectors}
    assert set(kinds) == {
        "nonfinite_loss",
        "loss_explosion",
        "no_learning",
        "loss_spike",
        "plateau",
        "oscillation",
        "overfitting",
    }
    assert kinds["overfitting"].severity == "stop"
    assert kinds["overfitting"].params["window"] == 20
    assert guard.patience == 10


def test_a_guard_of_ones_own_is_fed() -> None:
    guard = TrainingGuard([NonFiniteLoss()], on_failure="warn")
    callback = GuardCallback(guard)
    train(DOOMED, noisy_data(), 30, callback)
    assert callback.guard is guard and callback.stopped_reason is None
    assert len(guard.state.val_loss) == 30


# -- bad input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"guard": object()}, "'guard' parameter of GuardCallback must be a TrainingGuard"),
        ({"restore_best_weights": 1}, "'restore_best_weights' parameter .* must be a bool"),
        ({"metric": ""}, "'metric' parameter .* non-empty str"),
        ({"train_set": "a", "val_set": "a"}, "must name different evaluation sets"),
    ],
)
def test_bad_parameters_are_config_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        GuardCallback(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "params", "match"),
    [
        (
            {"val_set": "test"},
            {},
            r"'val_set' parameter .* names no evaluation set.*\['train', 'val'\]",
        ),
        ({"metric": "rmse"}, {}, r"'metric' parameter .* names no metric of 'val'.*\['logloss'\]"),
        ({"metric": "auc"}, {"eval_metric": ["auc", "logloss"]}, "must name a lower-is-better"),
        ({}, {"eval_metric": "auc"}, r"only higher-is-better metrics \['auc'\]"),
    ],
)
def test_curves_that_cannot_be_watched_are_config_errors(
    kwargs: dict[str, object], params: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        train({**HEALTHY, **params}, healthy_data(), 3, GuardCallback(**kwargs))  # type: ignore[arg-type]


def test_training_without_evaluation_sets_is_a_config_error() -> None:
    x_tr, _, y_tr, _ = healthy_data()
    with pytest.raises(ConfigError, match="needs at least one evaluation set"):
        xgboost.train(HEALTHY, xgboost.DMatrix(x_tr, label=y_tr), 3, callbacks=[GuardCallback()])
