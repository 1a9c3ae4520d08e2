"""The LightGBM integration on real, tiny, seeded CPU boosting runs."""

from __future__ import annotations

import os

import numpy as np
import pytest

try:
    import lightgbm
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI") == "true":
        pytest.fail("lightgbm is required in CI (pip install hindsight[lightgbm])", pytrace=False)
    pytest.skip("lightgbm is not installed", allow_module_level=True)


from hindsight.errors import ConfigError
from hindsight.training import NonFiniteLoss, TrainingGuard
from hindsight.training.integrations.lightgbm import GuardCallback, default_guard
from training.integrations.boosting_data import (  # noqa: F401 (an autouse fixture)
    Arrays,
    _quiet_logs,
    healthy_data,
    noisy_data,
)

COMMON = {"verbose": -1, "seed": 0, "num_threads": 1, "deterministic": True}
HEALTHY = {**COMMON, "objective": "binary", "learning_rate": 0.03, "num_leaves": 4}
DOOMED = {
    **COMMON,
    "objective": "binary",
    "learning_rate": 0.5,
    "num_leaves": 63,
    "min_data_in_leaf": 2,
    "min_sum_hessian_in_leaf": 1e-3,
}


def train(
    params: dict[str, object],
    data: Arrays,
    rounds: int,
    callback: GuardCallback,
    **kwargs: object,
) -> lightgbm.Booster:
    x_tr, x_va, y_tr, y_va = data
    dtrain = lightgbm.Dataset(x_tr, y_tr)
    dval = lightgbm.Dataset(x_va, y_va, reference=dtrain)
    return lightgbm.train(
        params,
        dtrain,
        rounds,
        valid_sets=[dtrain, dval],
        valid_names=["training", "valid"],
        callbacks=[callback],
        **kwargs,  # type: ignore[arg-type]
    )


def val_logloss(bst: lightgbm.Booster, data: Arrays, rounds: int) -> float:
    _, x_va, _, y_va = data
    p = np.clip(bst.predict(x_va, num_iteration=rounds), 1e-15, 1 - 1e-15)
    return float(-np.mean(y_va * np.log(p) + (1 - y_va) * np.log(1 - p)))


# -- healthy and doomed runs -----------------------------------------------------------
def test_a_healthy_run_is_not_stopped() -> None:
    callback = GuardCallback()
    bst = train(HEALTHY, healthy_data(), 300, callback, keep_training_booster=True)
    assert callback.stopped_reason is None and callback.stopped_step is None
    assert bst.current_iteration() == 300
    assert not any(s.severity == "stop" for s in callback.guard.history)
    state = callback.guard.state
    assert len(state.loss) == len(state.val_loss) == 256  # the guard's window
    assert callback.last_verdict is not None and callback.last_verdict.step == 299
    assert float(state.loss[-1]) < 0.05 < float(state.val_loss[-1])
    assert state.metric("valid-binary_logloss")[-1] == state.val_loss[-1]
    # keep_best marks the best round on the last one, as LightGBM's early_stopping does.
    best = callback.best_iteration
    assert best is not None and bst.best_iteration == best + 1
    assert bst.best_score["valid"]["binary_logloss"] == pytest.approx(callback.guard.best_value)


def test_keep_best_false_leaves_an_unstopped_run_alone() -> None:
    callback = GuardCallback(keep_best=False)
    bst = train(HEALTHY, healthy_data(), 50, callback)
    assert callback.stopped_reason is None
    assert bst.best_iteration == 0  # LightGBM's "no best": predict uses every round
    assert bst.num_trees() == 50


def test_overfitting_is_stopped_early_and_the_best_round_is_used() -> None:
    data = noisy_data()
    callback = GuardCallback()
    bst = train(DOOMED, data, 200, callback, keep_training_booster=True)
    assert callback.stopped_step is not None and callback.stopped_step < 40
    assert callback.stopped_reason is not None and "overfitting" in callback.stopped_reason
    (found,) = [s for v in callback.verdicts for s in v.symptoms if s.severity == "stop"]
    assert found.kind == "overfitting"
    assert found.evidence["val_slope"] > 0 > found.evidence["train_slope"]
    assert bst.current_iteration() == callback.stopped_step + 1
    best = callback.best_iteration
    assert best is not None and best < callback.stopped_step
    assert bst.best_iteration == best + 1  # LightGBM counts rounds
    assert bst.best_score["valid"]["binary_logloss"] == pytest.approx(
        val_logloss(bst, data, best + 1), rel=1e-6
    )
    # predict() uses the best round by default, and it beats the last one.
    np.testing.assert_allclose(bst.predict(data[1]), bst.predict(data[1], num_iteration=best + 1))
    assert val_logloss(bst, data, best + 1) < val_logloss(bst, data, callback.stopped_step + 1)


def test_the_returned_booster_keeps_the_rounds_up_to_the_best() -> None:
    callback = GuardCallback()
    bst = train(DOOMED, noisy_data(), 200, callback)
    assert callback.best_iteration is not None
    assert bst.num_trees() == bst.best_iteration == callback.best_iteration + 1


def test_the_scikit_learn_estimator_uses_the_best_round() -> None:
    x_tr, x_va, y_tr, y_va = noisy_data()
    callback = GuardCallback()
    clf = lightgbm.LGBMClassifier(
        n_estimators=200,
        learning_rate=0.5,
        num_leaves=63,
        min_child_samples=2,
        min_child_weight=1e-3,
        random_state=0,
        n_jobs=1,
        verbose=-1,
    )
    clf.fit(x_tr, y_tr, eval_X=(x_tr, x_va), eval_y=(y_tr, y_va), callbacks=[callback])
    assert callback.stopped_reason is not None and "overfitting" in callback.stopped_reason
    best = callback.best_iteration
    assert best is not None and clf.best_iteration_ == best + 1
    assert set(callback.guard.state.metric_names) == {
        "valid_0-binary_logloss",
        "valid_1-binary_logloss",
    }


def test_cross_validation_is_watched_and_stopped() -> None:
    x_tr, _, y_tr, _ = noisy_data(n_train=600)
    callback = GuardCallback()
    result = lightgbm.cv(
        DOOMED,
        lightgbm.Dataset(x_tr, y_tr),
        100,
        nfold=3,
        stratified=False,
        seed=0,
        eval_train_metric=True,
        return_cvbooster=True,
        callbacks=[callback],
    )
    assert callback.stopped_reason is not None and "overfitting" in callback.stopped_reason
    best = callback.best_iteration
    assert best is not None and result["cvbooster"].best_iteration == best + 1
    assert len(result["valid binary_logloss-mean"]) == best + 1
    state = callback.guard.state
    assert state.loss[-1] == state.metric("train-binary_logloss")[-1]


def test_a_nan_metric_stops_at_once() -> None:
    def nan_metric(preds: np.ndarray, data: lightgbm.Dataset) -> tuple[str, float, bool]:
        return "bad", float("nan"), False

    callback = GuardCallback(metric="bad")
    params = {**HEALTHY, "metric": "None"}
    bst = train(params, healthy_data(), 50, callback, feval=nan_metric)
    assert callback.stopped_step == 0
    assert callback.verdicts[0].symptoms[0].kind == "nonfinite_loss"
    assert bst.current_iteration() == 1


def test_init_model_rounds_are_counted() -> None:
    data = healthy_data()
    first = train(HEALTHY, data, 10, GuardCallback(keep_best=False))
    callback = GuardCallback()
    train(HEALTHY, data, 5, callback, init_model=first)
    assert callback.last_verdict is not None and callback.last_verdict.step == 14
    assert list(callback.guard.state.loss_steps) == list(range(10, 15))


# -- choosing the curves ---------------------------------------------------------------
def test_the_first_loss_metric_is_watched_and_others_are_metrics() -> None:
    guard = default_guard(monitor="valid-auc", mode="max")
    callback = GuardCallback(guard)
    params = {**HEALTHY, "metric": ["auc", "binary_error", "binary_logloss"]}
    bst = train(params, healthy_data(), 30, callback)
    state = guard.state
    assert state.loss[-1] == state.metric("training-binary_error")[-1]
    assert state.val_loss[-1] == state.metric("valid-binary_error")[-1]
    assert guard.best_value == pytest.approx(float(state.metric("valid-auc").max()))
    assert guard.best_step is not None and bst.best_iteration == guard.best_step + 1


def test_a_single_validation_set_is_the_validation_loss() -> None:
    x_tr, x_va, y_tr, y_va = healthy_data()
    dtrain = lightgbm.Dataset(x_tr, y_tr)
    callback = GuardCallback()
    lightgbm.train(
        HEALTHY,
        dtrain,
        5,
        valid_sets=[lightgbm.Dataset(x_va, y_va, reference=dtrain)],
        callbacks=[callback],
    )
    assert len(callback.guard.state.val_loss) == 5
    assert len(callback.guard.state.loss) == 0


def test_a_guard_of_ones_own_is_fed() -> None:
    guard = TrainingGuard([NonFiniteLoss()], on_failure="warn")
    callback = GuardCallback(guard, keep_best=False)
    train(DOOMED, noisy_data(), 30, callback)
    assert callback.guard is guard and callback.stopped_reason is None
    assert len(guard.state.val_loss) == 30


def test_it_runs_after_each_round_where_early_stopping_does() -> None:
    callback = GuardCallback()
    assert callback.order == 30 and callback.before_iteration is False


# -- bad input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"guard": "yes"}, "'guard' parameter of GuardCallback must be a TrainingGuard"),
        ({"keep_best": None}, "'keep_best' parameter .* must be a bool"),
        ({"val_set": 3}, "'val_set' parameter .* non-empty str"),
        ({"train_set": "a", "val_set": "a"}, "must name different evaluation sets"),
    ],
)
def test_bad_parameters_are_config_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        GuardCallback(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "params", "match"),
    [
        ({"train_set": "x"}, {}, r"'train_set' parameter .* names no evaluation set"),
        ({"metric": "l2"}, {}, r"names no metric of 'valid'.*\['binary_logloss'\]"),
        ({"metric": "auc"}, {"metric": ["auc", "binary_logloss"]}, "must name a lower-is-better"),
        ({}, {"metric": "auc"}, r"only higher-is-better metrics \['auc'\]"),
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
        lightgbm.train(HEALTHY, lightgbm.Dataset(x_tr, y_tr), 3, callbacks=[GuardCallback()])
