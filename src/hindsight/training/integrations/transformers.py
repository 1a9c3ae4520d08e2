"""Hugging Face integration: a ``TrainerCallback`` that feeds the guard and stops doomed runs.

:class:`GuardCallback` attaches a :class:`~hindsight.training.integrations.torch.TorchWatch`
to the model when training begins and feeds the guard once per optimizer step: per-layer
gradient norms taken in ``on_pre_optimizer_step`` (after clipping, before the step),
dead / saturated activation shares, the learning rate, throughput and memory; the
logged ``loss`` and total ``grad_norm`` (as the metric ``"grad_norm"``) at logging steps,
and ``eval_loss`` as the validation loss after each evaluation. A stopping verdict sets
``control.should_training_stop``.

A step's signals reach the guard when the next step begins, when the evaluation of
that step ends, or when training ends, so that the loss logged and the evaluation run
after a step join that step: a stop takes effect one step later than with a
hand-written loop. The Trainer averages the logged loss over ``logging_steps`` and
leaves NaN / inf losses out of it (``logging_nan_inf_filter``); set ``logging_steps=1``
for per-step losses.

``restore_best_weights`` restores in memory, from a CPU copy taken when the guard's
``monitor`` improved, when training ends. It is an alternative to the Trainer's
``load_best_model_at_end`` (which reloads a saved checkpoint); do not use both.

Imports ``transformers``; ``hindsight.training`` itself never imports it.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Mapping
from typing import Any

from torch import nn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from hindsight.errors import ConfigError
from hindsight.training.guard import TrainingGuard
from hindsight.training.integrations._callbacks import WatchedCallback
from hindsight.training.integrations.torch import StepSignals, watch

__all__ = ["GuardCallback"]

logger = logging.getLogger("hindsight.training")


def _real(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


class GuardCallback(WatchedCallback, TrainerCallback):
    """Hugging Face ``TrainerCallback`` that feeds a :class:`~hindsight.training.TrainingGuard`.

    Parameters
    ----------
    guard
        The guard to feed; ``None`` (default) for ``TrainingGuard()``.
    val_loss_key
        Key of the validation loss in the evaluation metrics (default ``"eval_loss"``).
        When the guard monitors a metric (e.g. ``"eval_accuracy"``), that key is fed too.
    restore_best_weights
        Whether to keep a CPU copy of the weights at the guard's best ``monitor`` value
        and load it back into the model when training ends (default ``False``).
    activations
        Whether to collect dead / saturated activation shares (default ``True``).
    every
        Collect gradient norms, activation statistics and memory on every ``every``-th
        step, the first included (int >= 1, default 10); loss, learning rate and
        throughput go to the guard every step. Dying units, saturation and gradient
        pathologies persist for many steps, so sampling costs little detection delay
        (``every=1`` for every step).

    Attributes
    ----------
    verdicts
        Every verdict of this run, in order.
    stopped_reason
        The reason of the first stopping verdict, or ``None`` when the guard did not stop.

    Examples
    --------
    >>> from hindsight.training import TrainingGuard
    >>> callback = GuardCallback(TrainingGuard(patience=3), restore_best_weights=True)
    >>> callback.val_loss_key, callback.stopped_reason, callback.last_verdict
    ('eval_loss', None, None)

    Then ``Trainer(model, args, ..., callbacks=[callback]).train()``; afterwards
    ``callback.stopped_reason`` says why the guard stopped the run (``None`` if not).
    """

    def __init__(
        self,
        guard: TrainingGuard | None = None,
        *,
        val_loss_key: str = "eval_loss",
        restore_best_weights: bool = False,
        activations: bool = True,
        every: int = 10,
    ) -> None:
        self._setup(
            guard,
            keys={"val_loss_key": val_loss_key},
            restore_best_weights=restore_best_weights,
            activations=activations,
            every=every,
        )
        self.val_loss_key = val_loss_key
        self._lr: float | None = None
        self._batch = 0

    # -- read-only results ---------------------------------------------------------------
    @property
    def best_step(self) -> int | None:
        """Global step of the best-weights snapshot (with ``restore_best_weights``)."""
        return self._watch.best_step if self._watch is not None else self._best_step

    # -- feeding -------------------------------------------------------------------------
    def _feed(self, control: TrainerControl, signals: StepSignals) -> None:
        if self._watch is None:
            return
        verdict = self._watch.feed(signals, restore_on_stop=False)
        self._last_fed = signals.step
        self.verdicts.append(verdict)
        if verdict.stop:
            if self.stopped_reason is None:
                self.stopped_reason = verdict.reason
                self.stopped_step = verdict.step
            control.should_training_stop = True

    def _flush(self, control: TrainerControl) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self._feed(control, pending)

    def _signals_for(self, control: TrainerControl, step: int) -> StepSignals:
        """The pending signals of ``step``, or fresh ones after feeding older ones."""
        if self._pending is not None and self._pending.step == step:
            return self._pending
        self._flush(control)
        if self._last_fed is not None and step <= self._last_fed:
            step = self._last_fed + 1  # e.g. a second evaluation at the same step
        self._pending = StepSignals(step=step)
        return self._pending

    # -- Trainer events ------------------------------------------------------------------
    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ConfigError(
                f"GuardCallback needs the Trainer's torch.nn.Module model. Got {model!r}; "
                "pass the callback to a transformers.Trainer with a PyTorch model."
            )
        self._remove()
        self.verdicts = []
        self.stopped_reason = None
        self.stopped_step = None
        self._pending = None
        self._last_fed = None
        self._best_step = None
        self._lr = None
        self.guard.reset()
        # Samples per optimizer step in this process: the guard watches one process.
        self._batch = args.per_device_train_batch_size * max(1, args.gradient_accumulation_steps)
        self._watch = watch(
            model,
            self.guard,
            activations=self.activations,
            every=self.every,
            # The framework feeds the guard each step; sample exactly every ``every``.
            interval_s=None,
            warmup=0,
            restore_best_weights=self.restore_best_weights,
        )

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._flush(control)

    def on_pre_optimizer_step(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        optimizer: Any = None,
        **kwargs: Any,
    ) -> None:
        if self._watch is None:
            return
        # The Trainer zeroes the gradients before on_step_end: take their norms now.
        self._watch.capture_grad_norms()
        groups = getattr(optimizer, "param_groups", None)
        self._lr = float(groups[0]["lr"]) if groups else None

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self._watch is None:
            return
        self._flush(control)
        step = state.global_step
        if self._last_fed is not None and step <= self._last_fed:
            step = self._last_fed + 1
        self._pending = self._watch.collect(
            step, lr=self._lr, batch_size=self._batch or None, read_grads=False
        )

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if self._watch is None or not logs or "loss" not in logs:
            return  # evaluation and end-of-training logs carry no training loss
        signals = self._signals_for(control, state.global_step)
        signals.loss = _real(logs["loss"])
        grad_norm = _real(logs.get("grad_norm"))
        if grad_norm is not None and math.isfinite(grad_norm):
            signals.metrics = {**(signals.metrics or {}), "grad_norm": grad_norm}
        if signals.lr is None:
            signals.lr = _real(logs.get("learning_rate"))

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if self._watch is None:
            return  # trainer.evaluate() outside train()
        metrics = metrics or {}
        val = _real(metrics.get(self.val_loss_key))
        monitor = self.guard.monitor
        extra: dict[str, float] = {}
        monitored = _real(metrics.get(monitor))
        if monitor not in ("loss", "val_loss") and monitored is not None:
            extra[monitor] = monitored
        if val is None and not extra:
            logger.warning(
                "GuardCallback found no %r in the evaluation metrics (keys: %s); pass "
                "val_loss_key= naming the validation loss.",
                self.val_loss_key,
                sorted(metrics),
            )
            return
        signals = self._signals_for(control, state.global_step)
        self._pending = None
        signals.val_loss = val
        if extra:
            signals.metrics = {**(signals.metrics or {}), **extra}
        self._feed(control, signals)
        self._watch.reset_clock()  # evaluation time is not training throughput

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._flush(control)
        if self._watch is not None:
            self._best_step = self._watch.best_step
            if self.restore_best_weights and self._watch.restore_best():
                logger.info(
                    "GuardCallback restored the weights of step %s (best %s = %.6g).",
                    self._watch.best_step,
                    self.guard.monitor,
                    self.guard.best_value,
                )
        self._remove()

    def _remove(self) -> None:
        if self._watch is not None:
            self._watch.remove()
        self._watch = None
