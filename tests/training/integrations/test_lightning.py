"""The Lightning callback on real, tiny, seeded CPU fits."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import pytest

try:
    import lightning.pytorch as pl
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI") == "true":
        pytest.fail("lightning is required in CI (pip install hindsight[lightning])", pytrace=False)
    pytest.skip("lightning is not installed", allow_module_level=True)

from hindsight.errors import ConfigError
from hindsight.training import TrainingGuard
from hindsight.training.integrations.lightning import GuardCallback

pytestmark = [
    # Lightning 2.6 calls a torch pytree API that torch 2.13 deprecates.
    pytest.mark.filterwarnings(
        r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
    ),
    # Tiny in-memory data sets: more loader workers would only slow the tests down.
    pytest.mark.filterwarnings(
        r"ignore:The '\w+_dataloader' does not have many workers:UserWarning"
    ),
    pytest.mark.filterwarnings(
        r"ignore:The number of training batches \(\d+\) is smaller than the logging interval"
    ),
]


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="hindsight.training")
    caplog.set_level(logging.ERROR, logger="lightning.pytorch")


# -- data, module, trainer -------------------------------------------------------------
def regression(n: int, seed: int, noise: float = 0.1) -> TensorDataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = x @ np.array([1.5, -2.0, 0.5, 3.0]) + noise * rng.normal(size=n)
    return TensorDataset(
        torch.tensor(x, dtype=torch.float32), torch.tensor(y[:, None], dtype=torch.float32)
    )


class Regressor(pl.LightningModule):
    def __init__(self, lr: float, hidden: int = 32, optimizer: str = "adam") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Linear(4, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )
        self.lr = lr
        self.optimizer = optimizer
        self.weights_at: dict[int, dict[str, torch.Tensor]] = {}
        self.val_at: dict[int, float] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y), prog_bar=False)

    def on_validation_end(self) -> None:
        if not self.trainer.sanity_checking:
            step = self.trainer.global_step
            self.val_at[step] = float(self.trainer.callback_metrics["val_loss"])
            self.weights_at[step] = {k: v.clone() for k, v in self.state_dict().items()}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer == "sgd":
            return torch.optim.SGD(self.parameters(), lr=self.lr)
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def fit(
    module: Regressor,
    callback: GuardCallback,
    train: TensorDataset,
    val: TensorDataset,
    *,
    max_epochs: int,
    batch_size: int = 32,
    **kwargs: Any,
) -> pl.Trainer:
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        callbacks=[callback],
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kwargs,
    )
    trainer.fit(
        module,
        DataLoader(train, batch_size=batch_size, shuffle=True),
        DataLoader(val, batch_size=256),
    )
    return trainer


def stop_symptoms(callback: GuardCallback) -> list[str]:
    return [s.kind for s in callback.guard.history if s.severity == "stop"]


# -- runs ------------------------------------------------------------------------------
def test_a_healthy_fit_is_fed_every_signal_and_not_stopped() -> None:
    module = Regressor(lr=1e-2)
    callback = GuardCallback(every=1)
    trainer = fit(module, callback, regression(256, 0), regression(128, 1), max_epochs=6)
    assert callback.stopped_reason is None and not trainer.should_stop
    assert stop_symptoms(callback) == []
    assert trainer.global_step == 6 * 8
    state = callback.guard.state
    # One update per optimizer step; validation joined the last step of each epoch.
    assert len(callback.verdicts) == 48 and callback.last_verdict is callback.verdicts[-1]
    assert list(state.val_loss_steps) == [8, 16, 24, 32, 40, 48]
    assert list(state.loss_steps) == list(range(1, 49))
    assert state.grad_norms.shape == (48, 3) and (state.grad_norms > 0).all()
    assert state.dead_share.shape == (48, 2)
    assert state.lr[-1] == pytest.approx(1e-2)
    assert (state.throughput > 0).all()
    assert float(state.val_loss[-1]) < 0.5 * float(state.val_loss[0])
    # The hooks are gone after the fit.
    assert callback.watch is None
    assert not any(m._forward_hooks for m in module.modules())


def test_the_fed_gradient_norms_are_those_before_the_optimizer_step() -> None:
    module = Regressor(lr=1e-2, optimizer="sgd")
    callback = GuardCallback(activations=False, every=1)
    seen: list[float] = []

    class Record(pl.Callback):
        def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            grads = [p.grad.flatten() for p in pl_module.net[0].parameters()]
            seen.append(float(torch.linalg.vector_norm(torch.cat(grads).double())))

    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(
        max_epochs=1,
        callbacks=[callback, Record()],
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(
        module,
        DataLoader(regression(128, 2), batch_size=32),
        DataLoader(regression(64, 8), batch_size=64),
    )
    np.testing.assert_allclose(callback.guard.state.grad_norms[:, 0], seen, rtol=1e-6)
    assert len(callback.guard.state.dead_share) == 0


def test_a_far_too_high_learning_rate_is_stopped_early() -> None:
    module = Regressor(lr=50.0, optimizer="sgd")
    callback = GuardCallback()
    trainer = fit(module, callback, regression(512, 3), regression(128, 4), max_epochs=20)
    assert trainer.should_stop
    assert callback.stopped_reason is not None and callback.stopped_step is not None
    assert callback.stopped_step < 10
    assert trainer.global_step == callback.stopped_step + 1  # stopped one batch later
    kinds = set(stop_symptoms(callback))
    assert kinds & {"nonfinite_loss", "loss_explosion", "nonfinite_gradients"}
    assert any(k in callback.stopped_reason for k in kinds)


def test_early_stopping_restores_the_weights_of_the_best_validation() -> None:
    # 24 noisy samples and a wide net: the validation loss bottoms out, then rises.
    module = Regressor(lr=1e-2, hidden=128)
    guard = TrainingGuard(monitor="val_loss", patience=4)
    callback = GuardCallback(guard, restore_best_weights=True)
    trainer = fit(
        module,
        callback,
        regression(24, 5, noise=2.0),
        regression(256, 6, noise=2.0),
        max_epochs=300,
        batch_size=8,
    )
    assert trainer.should_stop and callback.stopped_reason is not None
    assert callback.stopped_reason.startswith("early stopping: val_loss")
    best = min(module.val_at, key=lambda s: module.val_at[s])
    assert 0 < best < callback.stopped_step == max(module.val_at)
    assert module.val_at[max(module.val_at)] > module.val_at[best]
    assert callback.best_step == guard.best_step == best
    for key, value in module.state_dict().items():
        assert torch.equal(value, module.weights_at[best][key]), key
    state = callback.state_dict()
    assert state["best_step"] == best and state["stopped_step"] == callback.stopped_step


def test_gradient_accumulation_feeds_one_update_per_optimizer_step() -> None:
    module = Regressor(lr=1e-2)
    callback = GuardCallback(every=2)
    trainer = fit(
        module,
        callback,
        regression(256, 7),
        regression(64, 8),
        max_epochs=2,
        accumulate_grad_batches=2,
    )
    assert trainer.global_step == 8
    assert len(callback.verdicts) == 8
    state = callback.guard.state
    assert list(state.loss_steps) == list(range(1, 9))
    assert len(state.dead_share) == 4  # every second step
    # The loss fed is the mean per-batch loss, not Lightning's accumulation-scaled one.
    assert float(state.loss[0]) > 5.0


# -- configuration and checkpoint state ------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"guard": "strict"}, "'guard' parameter of GuardCallback must be a TrainingGuard"),
        ({"val_loss_key": ""}, "'val_loss_key' parameter of GuardCallback"),
        ({"loss_key": 3}, "'loss_key' parameter of GuardCallback"),
        ({"restore_best_weights": "yes"}, "'restore_best_weights'"),
        ({"activations": None}, "'activations'"),
        ({"every": 0}, "'every' parameter of GuardCallback must be an int >= 1"),
    ],
)
def test_bad_parameters_are_config_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        GuardCallback(**kwargs)


def test_the_checkpoint_state_round_trips() -> None:
    callback = GuardCallback(TrainingGuard(patience=3))
    callback.stopped_reason, callback.stopped_step = "early stopping: ...", 40
    state = callback.state_dict()
    assert state["guard"]["patience"] == 3
    other = GuardCallback()
    other.load_state_dict(state)
    assert (other.stopped_reason, other.stopped_step) == ("early stopping: ...", 40)
