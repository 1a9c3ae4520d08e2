"""The Keras 3 integration on real, tiny, seeded CPU training runs (torch backend)."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "torch"  # before Keras is first imported

try:
    import keras
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI") == "true":
        pytest.fail(
            "keras and torch are required in CI (pip install hindsight[keras])", pytrace=False
        )
    pytest.skip("keras or torch is not installed", allow_module_level=True)

from hindsight.errors import ConfigError
from hindsight.training import TrainingGuard
from hindsight.training.integrations.keras import GuardCallback

if keras.backend.backend() != "torch":  # pragma: no cover - Keras was imported before us
    pytest.skip("Keras was imported with another backend", allow_module_level=True)


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="hindsight.training")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> object:
    # Tiny models: one thread is fastest and steady on a busy machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def regression(n: int, seed: int, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    w = np.random.default_rng(100).normal(size=(8, 1))
    y = (x @ w + noise * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def mlp(sizes: list[int], lr: float, optimizer: str = "sgd", seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    layers: list[keras.layers.Layer] = [keras.Input((sizes[0],))]
    layers += [keras.layers.Dense(n, activation="relu") for n in sizes[1:-1]]
    layers.append(keras.layers.Dense(sizes[-1]))
    model = keras.Sequential(layers)
    opt = keras.optimizers.SGD(lr) if optimizer == "sgd" else keras.optimizers.Adam(lr)
    model.compile(optimizer=opt, loss="mse", metrics=["mae"])
    return model


# -- healthy and doomed runs -----------------------------------------------------------
def test_a_healthy_run_is_not_stopped_and_every_signal_reaches_the_guard() -> None:
    x, y = regression(400, seed=0)
    model = mlp([8, 32, 32, 1], lr=0.01)
    callback = GuardCallback()
    history = model.fit(
        x, y, validation_split=0.2, epochs=8, batch_size=32, verbose=0, callbacks=[callback]
    )
    assert callback.stopped_reason is None and not model.stop_training
    assert not any(s.severity == "stop" for s in callback.guard.history)
    assert len(history.history["loss"]) == 8
    state = callback.guard.state
    steps_per_epoch = 10  # 320 training samples / 32
    assert state.step == 8 * steps_per_epoch - 1
    assert list(state.loss_steps) == list(range(80))
    assert list(state.val_loss_steps) == [e * steps_per_epoch + 9 for e in range(8)]
    assert float(state.val_loss[-1]) < 0.5 * float(state.val_loss[0])
    assert state.val_loss[-1] == pytest.approx(float(history.history["val_loss"][-1]))
    assert set(state.metric_names) == {"mae", "val_mae"}
    assert state.grad_norms.shape == (80, 3) and (state.grad_norms > 0).all()
    assert callback.layer_names == ("sequential/dense", "sequential/dense_1", "sequential/dense_2")
    assert state.lr[-1] == pytest.approx(0.01)
    assert len(state.throughput) == 80 and (state.throughput > 0).all()
    assert (state.memory > 1e6).all()


def test_the_loss_fed_is_each_batchs_own() -> None:
    # 300 samples in batches of 64: four of 64 and a last one of 44.
    x, y = regression(300, seed=1)
    model = mlp([8, 16, 1], lr=0.01)
    callback = GuardCallback()
    history = model.fit(x, y, epochs=3, batch_size=64, verbose=0, callbacks=[callback])
    losses = callback.guard.state.loss
    sizes = np.array([64, 64, 64, 64, 44])
    for epoch in range(3):
        batch = losses[5 * epoch : 5 * epoch + 5]
        logged = float(history.history["loss"][epoch])  # Keras' running mean
        assert float(batch @ sizes / sizes.sum()) == pytest.approx(logged, rel=1e-5)
    assert np.ptp(losses[:5]) > 0.01  # single batches, not a smooth running mean


def test_a_far_too_high_learning_rate_is_stopped_early() -> None:
    x, y = regression(400, seed=2)
    model = mlp([8, 32, 32, 1], lr=5.0)
    callback = GuardCallback()
    history = model.fit(
        x, y, validation_split=0.2, epochs=20, batch_size=32, verbose=0, callbacks=[callback]
    )
    assert callback.stopped_step is not None and callback.stopped_step < 10
    assert len(history.history["loss"]) == 1  # stopped within the first epoch
    stop_kinds = {s.kind for s in callback.verdicts[-1].symptoms if s.severity == "stop"}
    assert stop_kinds & {"nonfinite_loss", "nonfinite_gradients", "loss_explosion"}
    assert callback.stopped_reason is not None
    assert callback.last_verdict is callback.verdicts[-1] and callback.last_verdict.stop
    # The learning rate was reported out of range on the first step.
    assert "lr_out_of_range" in {s.kind for s in callback.guard.history}


def test_restore_best_weights_puts_back_the_best_epoch() -> None:
    # 40 noisy samples and a wide network: the validation loss turns up after a while.
    x, y = regression(540, seed=3, noise=1.0)
    x_va, y_va = x[40:], y[40:]
    model = mlp([8, 128, 128, 1], lr=1e-2, optimizer="adam")
    callback = GuardCallback(TrainingGuard(patience=5), restore_best_weights=True)
    history = model.fit(
        x[:40],
        y[:40],
        validation_data=(x_va, y_va),
        epochs=100,
        batch_size=20,
        verbose=0,
        callbacks=[callback],
    )
    val = [float(v) for v in history.history["val_loss"]]  # torch tensors on this backend
    assert callback.stopped_reason is not None and "early stopping" in callback.stopped_reason
    assert len(val) < 100 and min(val) < val[-1]
    assert callback.restored
    assert callback.best_step == 2 * (int(np.argmin(val)) + 1) - 1  # two batches an epoch
    restored = model.evaluate(x_va, y_va, verbose=0, return_dict=True)["loss"]
    assert restored == pytest.approx(min(val), rel=1e-5)
    assert callback.guard.best_value == pytest.approx(min(val), rel=1e-6)


def test_without_restore_the_last_weights_stay() -> None:
    x, y = regression(540, seed=3, noise=1.0)
    model = mlp([8, 128, 128, 1], lr=1e-2, optimizer="adam")
    callback = GuardCallback(TrainingGuard(patience=5))
    history = model.fit(
        x[:40], y[:40], validation_data=(x[40:], y[40:]), epochs=100, batch_size=20,
        verbose=0, callbacks=[callback],
    )  # fmt: skip
    last = model.evaluate(x[40:], y[40:], verbose=0, return_dict=True)["loss"]
    assert not callback.restored
    assert last == pytest.approx(float(history.history["val_loss"][-1]), rel=1e-5)


def test_restore_without_validation_data_keeps_the_last_weights(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="hindsight.training")
    x, y = regression(64, seed=4)
    model = mlp([8, 8, 1], lr=0.01)
    callback = GuardCallback(restore_best_weights=True)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[callback])
    assert not callback.restored
    assert "never had a finite value" in caplog.text


# Keras warns when a generator of unknown length runs out, which is how its epoch ends.
@pytest.mark.filterwarnings("ignore:Your input ran out of data; interrupting training:UserWarning")
def test_an_epoch_of_unknown_length_ends_on_a_step_of_its_own() -> None:
    x, y = regression(96, seed=5)

    def batches() -> object:
        for i in range(0, 96, 32):
            yield x[i : i + 32], y[i : i + 32]

    model = mlp([8, 8, 1], lr=0.01)
    callback = GuardCallback()
    model.fit(batches(), epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    state = callback.guard.state
    assert list(state.loss_steps) == [0, 1, 2]
    assert state.step == 3  # the epoch's end, with its metrics
    assert state.metric("mae").size == 1


def test_each_fit_is_a_run_of_its_own() -> None:
    x, y = regression(64, seed=6)
    model = mlp([8, 8, 1], lr=0.01)
    callback = GuardCallback()
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[callback])
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[callback])
    assert list(callback.guard.state.loss_steps) == [0, 1]


# -- bad input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"guard": object()}, "'guard' parameter of GuardCallback must be a TrainingGuard"),
        ({"restore_best_weights": "yes"}, "'restore_best_weights' parameter .* must be a bool"),
        ({"grad_norms": 1}, "'grad_norms' parameter .* must be a bool"),
    ],
)
def test_bad_parameters_are_config_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        GuardCallback(**kwargs)  # type: ignore[arg-type]


def test_log_entries_that_are_not_single_numbers_are_left_out() -> None:
    class Odd(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, object] | None = None) -> None:
            assert logs is not None
            logs.update(per_class=np.array([0.1, 0.2]), note="hi", one=np.array([0.5]))

    x, y = regression(64, seed=7)
    model = mlp([8, 8, 1], lr=0.01)
    callback = GuardCallback()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[Odd(), callback])
    assert set(callback.guard.state.metric_names) == {"mae", "one"}
    assert callback.guard.state.metric("one")[-1] == 0.5
