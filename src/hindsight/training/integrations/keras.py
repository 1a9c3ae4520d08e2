"""Keras 3 integration: a callback that feeds the training guard every batch and epoch.

:class:`GuardCallback` works with any Keras 3 backend. Each training batch it feeds the
:class:`~hindsight.training.TrainingGuard` that batch's loss, the optimizer's learning
rate, the throughput (samples per second) and the process memory; each epoch's end adds
the validation loss and every metric in the epoch logs. When the guard says stop it sets
``model.stop_training``; with ``restore_best_weights=True`` it keeps the weights of the
step where the guard's ``monitor`` was best and puts them back when training ends.

Per-layer gradient norms are not part of what Keras hands a callback. On the torch
backend they are read from the parameters' ``.grad`` (Keras zeroes them only at the start
of the next step), one norm per layer with weights; other backends feed none, so the
gradient detectors stay silent there. Activation statistics are not collected.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import psutil

from hindsight.errors import ConfigError
from hindsight.training.guard import TrainingGuard, Verdict

__all__ = ["GuardCallback"]

logger = logging.getLogger("hindsight.training")

_PROCESS = psutil.Process()
#: Batches whose samples and wall time make one throughput value: single tiny batches
#: take too little time to measure steadily.
_THROUGHPUT_BATCHES = 10


def _scalar(value: Any) -> float:
    """A Python float from a float, NumPy scalar, Keras variable or 0-d backend tensor."""
    return float(value)


def _weights(model: Any) -> list[np.ndarray[Any, Any]]:
    """A copy of ``model.get_weights()``.

    On the torch backend ``get_weights`` (and ``keras.ops.convert_to_numpy``) call
    ``np.array`` on torch tensors, which NumPy 2 reports with a DeprecationWarning (the
    tensor's ``__array__`` takes no ``copy``); the tensors are copied directly instead.
    """
    if keras.backend.backend() != "torch":
        return [np.array(keras.ops.convert_to_numpy(v.value), copy=True) for v in model.weights]
    import torch  # the torch backend is in use, so torch is installed

    out = []
    for v in model.weights:
        t = v.value.detach().cpu()
        if t.dtype == torch.bfloat16:  # NumPy has no bfloat16; set_weights casts back
            t = t.to(torch.float32)
        out.append(t.numpy().copy())
    return out


def _log_value(value: Any) -> float | None:
    """A log entry as a float, or ``None`` for one that is not a single number (e.g. the
    per-class array of ``F1Score(average=None)``), which the guard cannot take."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    shape = getattr(value, "shape", None)
    if shape is None or math.prod(tuple(shape)) != 1:
        return None
    item = getattr(value, "item", None)
    return float(item() if callable(item) else value)


class GuardCallback(keras.callbacks.Callback):
    """A Keras callback that feeds a :class:`~hindsight.training.TrainingGuard` and stops
    training when it says so.

    The guard's step is the global batch index (0, 1, ... across epochs). The last batch
    of an epoch is fed at the epoch's end together with ``val_loss`` and the epoch's
    metrics (``"accuracy"``, ``"val_accuracy"``...), so the guard may ``monitor`` any of
    them; when Keras does not know the steps per epoch, the epoch's end takes a step of
    its own.

    The loss fed per batch is that batch's mean loss: Keras logs a running mean over the
    epoch, and the callback takes the batch's share of it from the model's loss tracker.
    The logged running mean is fed instead when a custom ``train_step`` leaves the
    tracker alone and on the JAX backend (whose variables sync lazily); there the
    throughput is not fed either. Log entries that are not single numbers are left out. On the torch backend, per-layer gradient norms are fed too (see the module
    docstring); the learning rate is the optimizer's current one, schedules included;
    the throughput is the samples per second over the last 10 batches (validation time
    left out) and the memory the process's resident set size.

    Training that the guard stopped ends after the current batch; the validation pass
    and epoch logs Keras still runs after that are not fed. The guard is reset when
    training starts, so each ``fit`` is a run of its own.

    Parameters
    ----------
    guard
        The guard to feed; ``None`` (default) for ``TrainingGuard()``, which stops on
        doomed runs but does no early stopping (pass ``TrainingGuard(patience=...)``).
    restore_best_weights
        Whether to snapshot the weights (as ``model.get_weights()``) whenever the guard's
        ``monitor`` reaches a new best and to restore them with ``set_weights`` when
        training ends, stopped or not (default ``False``). With ``monitor="val_loss"`` it
        snapshots at most once per epoch; with ``monitor="loss"`` up to once per batch,
        which costs a copy of the weights each time.
    grad_norms
        Whether to feed per-layer gradient norms on the torch backend (default ``True``).

    Attributes
    ----------
    guard : TrainingGuard
        The guard fed.
    verdicts : list of Verdict
        Every verdict that reported a symptom or a stop, in order.
    last_verdict : Verdict or None
        The latest verdict.
    stopped_reason : str or None
        Why the guard stopped training (``None`` when it did not).
    stopped_step : int or None
        The step at which it stopped.
    best_step : int or None
        The step of the weights kept by ``restore_best_weights``.
    restored : bool
        Whether the best weights were put back at the end of training.
    layer_names : tuple of str
        Names of the layers behind the gradient norms, first to last (empty when none).

    Examples
    --------
    >>> import numpy as np, keras
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(128, 4)).astype("float32")
    >>> y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32")
    >>> keras.utils.set_random_seed(0)
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
    ...                           keras.layers.Dense(1)])
    >>> model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    >>> callback = GuardCallback(restore_best_weights=True)
    >>> _ = model.fit(x, y, validation_split=0.25, epochs=3, batch_size=32, verbose=0,
    ...               callbacks=[callback])
    >>> callback.stopped_reason is None, callback.last_verdict.step, callback.best_step
    (True, 8, 8)
    """

    def __init__(
        self,
        guard: TrainingGuard | None = None,
        *,
        restore_best_weights: bool = False,
        grad_norms: bool = True,
    ) -> None:
        super().__init__()
        if guard is None:
            guard = TrainingGuard()
        elif not isinstance(guard, TrainingGuard):
            raise ConfigError(
                f"The 'guard' parameter of GuardCallback must be a TrainingGuard or None. "
                f"Got {guard!r}; pass e.g. TrainingGuard(patience=5)."
            )
        for name, value in (
            ("restore_best_weights", restore_best_weights),
            ("grad_norms", grad_norms),
        ):
            if not isinstance(value, bool):
                raise ConfigError(
                    f"The {name!r} parameter of GuardCallback must be a bool. Got {value!r}."
                )
        self.guard = guard
        self.restore_best_weights = restore_best_weights
        self.grad_norms = grad_norms
        self._reset()

    def _reset(self) -> None:
        self.verdicts: list[Verdict] = []
        self.last_verdict: Verdict | None = None
        self.stopped_reason: str | None = None
        self.stopped_step: int | None = None
        self.best_step: int | None = None
        self.restored = False
        self._best_weights: list[Any] | None = None
        self._step = 0
        self._pending: tuple[int, dict[str, Any]] | None = None
        self._prev_total = 0.0
        self._prev_count = 0.0
        self._last_time: float | None = None
        self._timings: deque[tuple[float, float]] = deque(maxlen=_THROUGHPUT_BATCHES)
        self._grad_groups: list[tuple[str, list[Any]]] | None = None

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Names of the layers whose gradient norms are fed, first to last."""
        return tuple(name for name, _ in self._grad_groups or ())

    # -- signals ---------------------------------------------------------------------------
    def _batch_loss(self, logs: Mapping[str, Any]) -> tuple[float | None, float | None]:
        """This batch's mean loss and sample count, from the loss tracker's running sums."""
        tracker = getattr(self.model, "_loss_tracker", None)
        total = getattr(tracker, "total", None)
        count = getattr(tracker, "count", None)
        logged = logs.get("loss")
        fallback = _scalar(logged) if logged is not None else None
        if total is None or count is None or keras.backend.backend() == "jax":
            # JAX syncs the model's variables lazily, so the tracker may be stale.
            return fallback, None
        total_now, count_now = _scalar(total), _scalar(count)
        if count_now < self._prev_count:  # the tracker was reset: a new epoch
            self._prev_total = self._prev_count = 0.0
        samples = count_now - self._prev_count
        loss = (total_now - self._prev_total) / samples if samples > 0 else None
        self._prev_total, self._prev_count = total_now, count_now
        if loss is None:  # a custom train_step that does not use the tracker
            return fallback, None
        return loss, samples

    def _lr(self) -> float | None:
        optimizer = getattr(self.model, "optimizer", None)
        lr = getattr(optimizer, "learning_rate", None) if optimizer is not None else None
        return None if lr is None else _scalar(lr)

    def _torch_grad_norms(self) -> list[float] | None:
        if not self.grad_norms or keras.backend.backend() != "torch":
            return None
        import torch  # the torch backend is in use, so torch is installed

        if self._grad_groups is None:
            groups: dict[str, list[Any]] = {}
            for v in self.model.trainable_weights:
                tensor = getattr(v, "value", None)
                if isinstance(tensor, torch.Tensor) and tensor.grad is not None:
                    layer = v.path.rsplit("/", 1)[0] if "/" in v.path else v.path
                    groups.setdefault(layer, []).append(tensor)
            self._grad_groups = list(groups.items())
        if not self._grad_groups:
            return None
        norms = []
        for _, tensors in self._grad_groups:
            grads = [t.grad for t in tensors]
            if any(g is None for g in grads):  # a layer that did not run: feed nothing
                return None
            layer_norms = torch.stack(torch._foreach_norm([g.detach() for g in grads]))
            norms.append(torch.linalg.vector_norm(layer_norms.to(torch.float64)))
        return [float(x) for x in torch.stack(norms).cpu().tolist()]

    # -- feeding ---------------------------------------------------------------------------
    def _feed(self, step: int, **signals: Any) -> None:
        verdict = self.guard.update(step, **signals)
        self.last_verdict = verdict
        if verdict.symptoms or verdict.stop:
            self.verdicts.append(verdict)
        if verdict.improved and self.restore_best_weights:
            self._best_weights = _weights(self.model)
            self.best_step = step
        elif verdict.improved:
            self.best_step = step
        if verdict.stop:
            self.stopped_reason = verdict.reason
            self.stopped_step = step
            self.model.stop_training = True

    # -- Keras hooks -----------------------------------------------------------------------
    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Start a new run: reset the guard and what the callback holds."""
        self.guard.reset()
        self._reset()
        self._last_time = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Keras resets its loss tracker at each epoch: so does the callback."""
        self._prev_total = self._prev_count = 0.0

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Feed this batch's loss, learning rate, gradient norms, throughput and memory."""
        if self.stopped_reason is not None:
            return
        loss, samples = self._batch_loss(logs or {})
        now = time.perf_counter()
        throughput = None
        if samples is not None and self._last_time is not None and now > self._last_time:
            self._timings.append((samples, now - self._last_time))
            throughput = sum(n for n, _ in self._timings) / sum(t for _, t in self._timings)
        self._last_time = now
        signals: dict[str, Any] = {
            "loss": loss,
            "lr": self._lr(),
            "grad_norms": self._torch_grad_norms(),
            "throughput": throughput,
            "memory": float(_PROCESS.memory_info().rss),
        }
        step = self._step
        self._step += 1
        steps = (self.params or {}).get("steps")
        if isinstance(steps, int) and batch >= steps - 1:
            self._pending = (step, signals)  # fed with the epoch's validation results
            return
        self._feed(step, **signals)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Feed the validation loss and the epoch's metrics (with the epoch's last batch)."""
        pending, self._pending = self._pending, None
        if self.stopped_reason is not None:
            return
        if pending is not None:
            step, signals = pending
        else:
            step, signals = self._step, {}
            self._step += 1
        val_loss = None
        metrics: dict[str, float] = {}
        for key, value in (logs or {}).items():
            x = _log_value(value)
            if key == "loss" or x is None:
                continue
            if key == "val_loss":
                val_loss = x
            else:
                metrics[str(key)] = x
        self._feed(step, val_loss=val_loss, metrics=metrics or None, **signals)
        # The time spent validating is not training throughput.
        self._last_time = time.perf_counter()

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        """Put back the best weights (``restore_best_weights``)."""
        pending, self._pending = self._pending, None
        if pending is not None and self.stopped_reason is None:
            self._feed(pending[0], **pending[1])
        if not self.restore_best_weights:
            return
        if self._best_weights is None:
            logger.warning(
                "GuardCallback: restore_best_weights is set but the guard's monitor %r never "
                "had a finite value, so the weights of the last step are kept. Pass "
                "validation data for 'val_loss', or monitor a value the logs carry.",
                self.guard.monitor,
            )
            return
        if self.last_verdict is not None and self.best_step == self.last_verdict.step:
            return  # no training step since the snapshot: the weights are the best ones
        self.model.set_weights(self._best_weights)
        self.restored = True
        logger.info(
            "GuardCallback: restored the weights of step %s (%s = %s).",
            self.best_step,
            self.guard.monitor,
            self.guard.best_value,
        )
