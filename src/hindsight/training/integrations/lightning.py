"""Lightning integration: a callback that feeds the training guard and stops doomed fits.

:class:`GuardCallback` attaches a :class:`~hindsight.training.integrations.torch.TorchWatch`
to the ``LightningModule`` when fitting starts and feeds the guard once per optimizer
step: the training loss (mean over accumulated batches), per-layer gradient norms taken
in ``on_before_optimizer_step``, dead / saturated activation shares, the learning rate,
throughput and memory; and the validation loss when validation ends. A stopping verdict
sets ``trainer.should_stop``.

A step's signals reach the guard when the next step starts, when validation of that
step ends, or when training ends, so that a validation loss joins the step it was
measured at: a stop takes effect one batch later than with a hand-written loop.

Imports ``lightning.pytorch`` (or the standalone ``pytorch_lightning`` where only that is
installed); ``hindsight.training`` itself never imports it.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Mapping
from typing import Any

import torch

from hindsight.training.guard import TrainingGuard
from hindsight.training.integrations._callbacks import WatchedCallback
from hindsight.training.integrations.torch import StepSignals, watch

try:
    from lightning.pytorch import Callback, LightningModule, Trainer
except ImportError:  # pragma: no cover - only the standalone package is installed
    from pytorch_lightning import (  # type: ignore[assignment]
        Callback,
        LightningModule,
        Trainer,
    )

__all__ = ["GuardCallback"]

logger = logging.getLogger("hindsight.training")


def _batch_size(batch: Any) -> int | None:
    """Samples in a batch: the length of its first tensor (``None`` when there is none)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() > 0 and batch.shape[0] > 0 else None
    if isinstance(batch, Mapping):
        items: Any = batch.values()
    elif isinstance(batch, (list, tuple)):
        items = batch
    else:
        return None
    for item in items:
        found = _batch_size(item)
        if found is not None:
            return found
    return None


class GuardCallback(WatchedCallback, Callback):
    """Lightning callback that feeds a :class:`~hindsight.training.TrainingGuard`.

    Parameters
    ----------
    guard
        The guard to feed; ``None`` (default) for ``TrainingGuard()``.
    val_loss_key
        Key of the validation loss in ``trainer.callback_metrics`` (default
        ``"val_loss"``: log it with ``self.log("val_loss", ...)`` in ``validation_step``).
        When the guard monitors a metric, the key named by its ``monitor`` is fed too.
    loss_key
        Key of the training loss in the dict a ``training_step`` returns, and in
        ``trainer.callback_metrics`` when the step returns none (default ``"loss"``).
    restore_best_weights
        Whether to keep a CPU copy of the weights at the guard's best ``monitor`` value
        and load it back into the module when training ends (default ``False``).
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
        Every verdict of this fit, in order.
    stopped_reason
        The reason of the first stopping verdict, or ``None`` when the guard did not stop.

    Examples
    --------
    >>> from hindsight.training import TrainingGuard
    >>> callback = GuardCallback(TrainingGuard(patience=5), restore_best_weights=True)
    >>> callback.guard.patience, callback.val_loss_key, callback.stopped_reason
    (5, 'val_loss', None)

    Then ``lightning.pytorch.Trainer(callbacks=[callback]).fit(module, ...)``; after the
    fit, ``callback.stopped_reason`` says why the guard stopped it (``None`` if not)
    and the module holds the weights of the best validation loss.
    """

    def __init__(
        self,
        guard: TrainingGuard | None = None,
        *,
        val_loss_key: str = "val_loss",
        loss_key: str = "loss",
        restore_best_weights: bool = False,
        activations: bool = True,
        every: int = 10,
    ) -> None:
        self._setup(
            guard,
            keys={"val_loss_key": val_loss_key, "loss_key": loss_key},
            restore_best_weights=restore_best_weights,
            activations=activations,
            every=every,
        )
        self.val_loss_key = val_loss_key
        self.loss_key = loss_key
        self._resumed = False
        self._reset_step()

    # -- read-only results ---------------------------------------------------------------
    @property
    def best_step(self) -> int | None:
        """Global step of the best-weights snapshot (with ``restore_best_weights``)."""
        return self._best_step

    # -- feeding -------------------------------------------------------------------------
    def _reset_step(self) -> None:
        self._losses: list[float] = []
        self._samples = 0
        self._lr: float | None = None
        self._stepped = False

    def _feed(self, trainer: Trainer, signals: StepSignals) -> None:
        if self._watch is None:
            return
        verdict = self._watch.feed(signals, restore_on_stop=False)
        self._last_fed = signals.step
        if self._watch.best_step is not None:
            self._best_step = self._watch.best_step
        self.verdicts.append(verdict)
        if verdict.stop:
            if self.stopped_reason is None:
                self.stopped_reason = verdict.reason
                self.stopped_step = verdict.step
            trainer.should_stop = True

    def _flush(self, trainer: Trainer) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self._feed(trainer, pending)

    def _train_loss(self, trainer: Trainer, pl_module: LightningModule, outputs: Any) -> Any:
        loss = outputs.get(self.loss_key) if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            if pl_module.automatic_optimization:
                # Lightning divides the loss it hands back by the accumulation factor.
                loss = loss.detach() * trainer.accumulate_grad_batches
            return float(loss.detach().item())
        if isinstance(loss, numbers.Real) and not isinstance(loss, bool):
            return float(loss)
        found = trainer.callback_metrics.get(self.loss_key)
        if isinstance(found, torch.Tensor) and found.numel() == 1:
            return float(found.item())
        return None

    # -- Lightning hooks -----------------------------------------------------------------
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._remove()
        if not self._resumed:  # a checkpoint's load_state_dict ran before this hook
            self.stopped_reason = None
            self.stopped_step = None
            self._best_step = None
        self._resumed = False
        self.verdicts = []
        self._pending = None
        self._last_fed = None
        self._reset_step()
        self.guard.reset()
        self._watch = watch(
            pl_module,
            self.guard,
            activations=self.activations,
            every=self.every,
            # The framework feeds the guard each step; sample exactly every ``every``.
            interval_s=None,
            warmup=0,
            restore_best_weights=self.restore_best_weights,
        )

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._flush(trainer)

    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if self._watch is None:
            return
        # Under automatic optimisation backward runs inside optimizer.step (a closure),
        # so the gradients are final here, not in an optimizer pre-hook.
        self._watch.capture_grad_norms()
        if optimizer.param_groups:
            self._lr = float(optimizer.param_groups[0]["lr"])
        self._stepped = True

    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self._watch is None:
            return
        loss = self._train_loss(trainer, pl_module, outputs)
        if loss is not None:
            self._losses.append(loss)
        self._samples += _batch_size(batch) or 0
        if not self._stepped:
            return  # a gradient-accumulation batch: fed with the batch that steps
        step = trainer.global_step
        if self._last_fed is not None and step <= self._last_fed:
            step = self._last_fed + 1  # e.g. an optimizer step skipped by AMP
        self._pending = self._watch.collect(
            step,
            sum(self._losses) / len(self._losses) if self._losses else None,
            lr=self._lr,
            batch_size=self._samples or None,
            read_grads=False,
        )
        self._reset_step()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._watch is None or trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        val = metrics.get(self.val_loss_key)
        monitor = self.guard.monitor
        extra = {}
        if monitor not in ("loss", "val_loss") and monitor in metrics:
            extra[monitor] = float(metrics[monitor])
        if val is None and not extra:
            logger.warning(
                "GuardCallback found no %r in trainer.callback_metrics after validation "
                "(keys: %s); log it with self.log(%r, loss) in validation_step or pass "
                "val_loss_key=.",
                self.val_loss_key,
                sorted(metrics),
                self.val_loss_key,
            )
            return
        signals = self._pending
        if signals is None or signals.step != trainer.global_step:
            self._flush(trainer)
            step = trainer.global_step
            if self._last_fed is not None and step <= self._last_fed:
                step = self._last_fed + 1
            signals = StepSignals(step=step)
        self._pending = None
        signals.val_loss = None if val is None else float(val)
        if extra:
            signals.metrics = {**(signals.metrics or {}), **extra}
        self._feed(trainer, signals)
        self._watch.reset_clock()  # validation time is not training throughput

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._flush(trainer)
        if self._watch is not None and self.restore_best_weights and self._watch.restore_best():
            logger.info(
                "GuardCallback restored the weights of step %s (best %s = %.6g).",
                self._watch.best_step,
                self.guard.monitor,
                self.guard.best_value,
            )

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._remove()

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        self._remove()

    def _remove(self) -> None:
        if self._watch is not None:
            self._watch.remove()
        self._watch = None

    # -- checkpointing -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What a Lightning checkpoint keeps: why and when the guard stopped, the best step.

        The guard's running windows are not kept; a resumed fit starts them afresh.
        """
        return {
            "stopped_reason": self.stopped_reason,
            "stopped_step": self.stopped_step,
            "best_step": self._best_step,
            "best_value": self.guard.best_value,
            "guard": self.guard.params,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` kept."""
        self.stopped_reason = state_dict.get("stopped_reason")
        self.stopped_step = state_dict.get("stopped_step")
        self._best_step = state_dict.get("best_step")
        self._resumed = True
