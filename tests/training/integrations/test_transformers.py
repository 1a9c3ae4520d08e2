"""The Hugging Face callback on real, tiny, randomly initialised models (CPU, offline)."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach the network

try:
    import torch
    from torch import nn
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        TrainerControl,
        TrainerState,
    )
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI") == "true":
        pytest.fail(
            "transformers is required in CI (pip install hindsight[transformers])", pytrace=False
        )
    pytest.skip("transformers is not installed", allow_module_level=True)

from hindsight.errors import ConfigError
from hindsight.training import TrainingGuard
from hindsight.training.integrations.transformers import GuardCallback

# The Trainer itself needs accelerate; the event-protocol tests below do not.
HAS_ACCELERATE = importlib.util.find_spec("accelerate") is not None
if not HAS_ACCELERATE and os.environ.get("CI") == "true":
    pytest.fail(
        "accelerate is required in CI to run transformers.Trainer (pip install 'accelerate>=1.1')",
        pytrace=False,
    )
needs_trainer = pytest.mark.skipif(not HAS_ACCELERATE, reason="accelerate is not installed")


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="hindsight.training")


# -- data and model --------------------------------------------------------------------
VOCAB, LENGTH = 40, 12


class TokenData(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Random token sequences; the label says whether token 7 occurs in the sequence."""

    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.ids = torch.tensor(rng.integers(1, VOCAB, size=(n, LENGTH)), dtype=torch.long)
        self.labels = (self.ids == 7).any(dim=1).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.ids[i],
            "attention_mask": torch.ones(LENGTH, dtype=torch.long),
            "labels": self.labels[i],
        }


def tiny_bert(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=LENGTH,
        num_labels=2,
    )
    return BertForSequenceClassification(config)


def callback_layers(model: nn.Module) -> list[str]:
    """Modules that own trainable parameters directly: one gradient norm each."""
    return [n for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# -- the Trainer event protocol, driven by hand (no accelerate needed) ----------------
def run_events(
    callback: GuardCallback,
    model: nn.Module,
    lr: float,
    steps: int,
    *,
    eval_every: int = 4,
    seed: int = 0,
) -> tuple[TrainerControl, dict[int, dict[str, torch.Tensor]], dict[int, float]]:
    """A training loop that fires the callback's events in the Trainer's order."""
    args: Any = SimpleNamespace(per_device_train_batch_size=16, gradient_accumulation_steps=1)
    state, control = TrainerState(), TrainerControl()
    train, val = TokenData(256, seed), TokenData(128, seed + 1)
    batches = torch.utils.data.DataLoader(train, batch_size=16, shuffle=False)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    seen: dict[int, dict[str, torch.Tensor]] = {}
    val_losses: dict[int, float] = {}
    callback.on_train_begin(args, state, control, model=model)
    while state.global_step < steps and not control.should_training_stop:
        for batch in batches:
            callback.on_step_begin(args, state, control)
            model.train()
            loss = model(**batch).loss
            loss.backward()
            grad_norm = float(nn.utils.get_total_norm([p.grad for p in model.parameters()]))
            callback.on_pre_optimizer_step(args, state, control, optimizer=opt)
            opt.step()
            model.zero_grad()
            state.global_step += 1
            callback.on_step_end(args, state, control)
            logs = {"loss": float(loss.detach()), "grad_norm": grad_norm, "learning_rate": lr}
            callback.on_log(args, state, control, logs=logs)
            if state.global_step % eval_every == 0:
                model.eval()
                with torch.no_grad():
                    batch = {k: torch.stack([v[k] for v in val]) for k in ("input_ids", "labels")}
                    eval_loss = float(model(**batch).loss)
                val_losses[state.global_step] = eval_loss
                seen[state.global_step] = weights(model)
                callback.on_log(args, state, control, logs={"eval_loss": eval_loss})
                callback.on_evaluate(args, state, control, metrics={"eval_loss": eval_loss})
            if control.should_training_stop or state.global_step >= steps:
                break
    callback.on_train_end(args, state, control)
    return control, seen, val_losses


def test_the_event_protocol_feeds_every_signal_once_per_step() -> None:
    model = tiny_bert()
    callback = GuardCallback(every=1)
    control, _, _ = run_events(callback, model, lr=1e-3, steps=16)
    assert not control.should_training_stop and callback.stopped_reason is None
    assert [s for s in callback.guard.history if s.severity == "stop"] == []
    state = callback.guard.state
    assert len(callback.verdicts) == 16
    assert list(state.loss_steps) == list(range(1, 17))
    assert list(state.val_loss_steps) == [4, 8, 12, 16]
    assert state.grad_norms.shape[0] == 16 and (state.grad_norms > 0).all()
    assert state.grad_norms.shape[1] == len(callback_layers(model))
    assert state.metric("grad_norm").shape == (16,)
    assert state.saturated_share.shape == (16, 1)  # the pooler's tanh
    assert callback.watch is None and not any(m._forward_hooks for m in model.modules())


def test_the_event_protocol_stops_a_diverging_run_and_restores_the_best_weights() -> None:
    model = tiny_bert()
    guard = TrainingGuard(monitor="val_loss")
    callback = GuardCallback(guard, restore_best_weights=True)
    control, seen, val_losses = run_events(callback, model, lr=3.0, steps=200, eval_every=1)
    assert control.should_training_stop and callback.stopped_reason is not None
    assert callback.stopped_step is not None and callback.stopped_step < 60
    kinds = {s.kind for s in guard.history if s.severity == "stop"}
    assert kinds & {
        "loss_explosion",
        "nonfinite_loss",
        "nonfinite_gradients",
        "exploding_gradients",
        # lr=3 saturates BERT's pooler tanh at once, so no gradient reaches the embeddings
        # (first/last-layer ratio 0): the vanishing gradients come a step before the blow-up.
        "vanishing_gradients",
    }
    best = min(val_losses, key=lambda s: val_losses[s])
    assert callback.best_step == guard.best_step == best
    for key, value in model.state_dict().items():
        assert torch.equal(value, seen[best][key]), key


def test_evaluation_outside_training_is_ignored_and_a_missing_key_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    args: Any = SimpleNamespace(per_device_train_batch_size=4, gradient_accumulation_steps=1)
    state, control = TrainerState(), TrainerControl()
    callback = GuardCallback()
    callback.on_evaluate(args, state, control, metrics={"eval_loss": 0.5})
    assert callback.verdicts == []
    caplog.set_level(logging.WARNING, logger="hindsight.training")
    callback.on_train_begin(args, state, control, model=tiny_bert())
    callback.on_evaluate(args, state, control, metrics={"eval_accuracy": 0.5})
    assert "no 'eval_loss' in the evaluation metrics" in caplog.text
    callback.on_train_end(args, state, control)
    with pytest.raises(ConfigError, match=r"torch\.nn\.Module model"):
        callback.on_train_begin(args, state, control, model=None)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"guard": {}}, "'guard' parameter of GuardCallback must be a TrainingGuard"),
        ({"val_loss_key": None}, "'val_loss_key' parameter of GuardCallback"),
        ({"restore_best_weights": 1}, "'restore_best_weights'"),
        ({"every": 2.5}, "'every' parameter of GuardCallback"),
    ],
)
def test_bad_parameters_are_config_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        GuardCallback(**kwargs)


# -- the real Trainer ------------------------------------------------------------------
def trainer_for(
    model: nn.Module, callback: GuardCallback, tmp_path: Path, lr: float, **kwargs: Any
) -> Any:
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=str(tmp_path),
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=64,
        learning_rate=lr,
        logging_steps=1,
        seed=0,
        data_seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
        **kwargs,
    )
    return Trainer(
        model=model,
        args=args,
        train_dataset=TokenData(128, 0),
        eval_dataset=TokenData(128, 1),
        callbacks=[callback],
    )


@needs_trainer
def test_a_healthy_trainer_run_is_not_stopped(tmp_path: Path) -> None:
    callback = GuardCallback(every=1)
    trainer = trainer_for(
        tiny_bert(), callback, tmp_path, lr=1e-3, num_train_epochs=2, eval_strategy="epoch"
    )
    trainer.train()
    assert callback.stopped_reason is None
    assert [s for s in callback.guard.history if s.severity == "stop"] == []
    state = callback.guard.state
    assert trainer.state.global_step == 16 and len(callback.verdicts) == 16
    assert list(state.val_loss_steps) == [8, 16]  # joined the last step of each epoch
    assert list(state.loss_steps) == list(range(1, 17))
    assert len(state.grad_norms) == 16 and state.metric("grad_norm").shape == (16,)
    assert state.lr[0] == pytest.approx(1e-3)


@needs_trainer
def test_a_far_too_high_learning_rate_is_stopped_and_the_best_weights_restored(
    tmp_path: Path,
) -> None:
    model = tiny_bert()
    callback = GuardCallback(TrainingGuard(monitor="val_loss"), restore_best_weights=True)
    trainer = trainer_for(
        model,
        callback,
        tmp_path,
        lr=3.0,
        max_grad_norm=0.0,
        lr_scheduler_type="constant",
        num_train_epochs=20,
        eval_strategy="steps",
        eval_steps=1,
    )
    trainer.train()
    assert callback.stopped_reason is not None and callback.stopped_step is not None
    assert trainer.state.global_step == callback.stopped_step < 200  # evaluated: no delay
    kinds = {s.kind for s in callback.guard.history if s.severity == "stop"}
    assert kinds & {
        "loss_explosion",
        "nonfinite_loss",
        "nonfinite_gradients",
        "exploding_gradients",
        # lr=3 saturates BERT's pooler tanh at once, so no gradient reaches the embeddings
        # (first/last-layer ratio 0): the vanishing gradients come a step before the blow-up.
        "vanishing_gradients",
    }
    assert callback.best_step == callback.guard.best_step
    with torch.no_grad():
        model.eval()
        val = TokenData(128, 1)
        batch = {k: torch.stack([v[k] for v in val]) for k in ("input_ids", "labels")}
        assert float(model(**batch).loss) == pytest.approx(callback.guard.best_value, rel=1e-4)
