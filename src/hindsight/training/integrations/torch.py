"""Plain-PyTorch integration: watch a model and feed the training guard every step.

:func:`watch` registers hooks on a ``torch.nn.Module``; :meth:`TorchWatch.step` then
feeds the :class:`~hindsight.training.TrainingGuard` with the loss, per-layer gradient
norms, dead / saturated activation shares, learning rate, throughput and memory.

The costly signals are read on sampled steps only: each of the first ``warmup`` steps,
then one step in ``every`` (or one each ``interval_s`` seconds). The hooks are on the
model only for those steps, and what they compute on the model's device reaches the CPU
in one transfer. The losses of the steps in between are buffered and handed to the
guard together, whose detectors still judge each of them. This keeps the watch within
2% of a small MLP's step (``benchmarks/bench_guard_overhead.py``).

With ``restore_best_weights=True`` the watch also keeps a CPU copy of the model's
``state_dict()`` from the step at which the guard's ``monitor`` last improved, and loads
it back when the guard stops the run (early stopping that keeps the best model).

Framework callbacks (:mod:`~hindsight.training.integrations.lightning`,
:mod:`~hindsight.training.integrations.transformers`) split :meth:`TorchWatch.step`
into :meth:`TorchWatch.collect` and :meth:`TorchWatch.feed`, so that a validation loss
measured after a step joins that step's signals.
"""

from __future__ import annotations

import copy
import logging
import math
import numbers
import os
import resource
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from hindsight._validation import Interval, validate_params
from hindsight.errors import ConfigError, DataQualityError
from hindsight.training.guard import TrainingGuard, Verdict

__all__ = ["DEAD_ACTIVATIONS", "SATURATING_ACTIVATIONS", "StepSignals", "TorchWatch", "watch"]

logger = logging.getLogger("hindsight.training")

#: Sign-preserving activations: a unit whose output is <= 0 on the whole batch is dead.
DEAD_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
)
#: Bounded activations: an output within ``SATURATION_MARGIN`` of a bound is saturated.
SATURATING_ACTIVATIONS: tuple[type[nn.Module], ...] = (nn.Sigmoid, nn.Tanh)
#: Distance to a bound (as a share of the output range) that counts as saturated;
#: 0.01 means ``|tanh| > 0.98`` ... ``sigmoid < 0.01`` or ``> 0.99``.
SATURATION_MARGIN = 0.01

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes() -> float:
    """Resident set size of this process in bytes (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return float(int(fh.read().split()[1]) * _PAGE_SIZE)
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # ru_maxrss is in kilobytes on Linux and in bytes on macOS.
        return float(peak if sys.platform == "darwin" else peak * 1024)


def _as_float(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise DataQualityError(
                f"The {name!r} argument must be a scalar tensor or a float. Got a tensor of "
                f"shape {tuple(value.shape)}; reduce it first, e.g. loss.mean()."
            )
        return float(value.detach().item())
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DataQualityError(
            f"The {name!r} argument must be a scalar tensor or a real number. Got {value!r}."
        )
    return float(value)


@dataclass
class StepSignals:
    """One step's signals, read to the host and ready for ``TrainingGuard.update``.

    :meth:`TorchWatch.collect` returns it; an integration may fill in what arrives
    later for the same step (``val_loss``, ``loss``, ``metrics``) before
    :meth:`TorchWatch.feed` hands it to the guard. Every field but ``step`` may be
    ``None``.

    Examples
    --------
    >>> signals = StepSignals(step=3, loss=0.5)
    >>> signals.val_loss = 0.7
    >>> sorted(k for k, v in signals.as_kwargs().items() if v is not None)
    ['loss', 'step', 'val_loss']
    """

    step: int
    loss: float | None = None
    val_loss: float | None = None
    metrics: dict[str, float] | None = None
    grad_norms: list[float] | None = None
    lr: float | None = None
    activations: dict[str, list[float]] | None = None
    throughput: float | None = None
    memory: float | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """The fields as keyword arguments of ``TrainingGuard.update``."""
        return {
            "step": self.step,
            "loss": self.loss,
            "val_loss": self.val_loss,
            "metrics": self.metrics,
            "grad_norms": self.grad_norms,
            "lr": self.lr,
            "activations": self.activations,
            "throughput": self.throughput,
            "memory": self.memory,
        }


class TorchWatch:
    """Hooks on a PyTorch model that feed a :class:`~hindsight.training.TrainingGuard`.

    Create it with :func:`watch`; call :meth:`step` once per optimisation step, after
    ``loss.backward()`` (and ``optimizer.step()``); call :meth:`remove` (or leave the
    ``with`` block) to take the hooks off.

    Gradient norms are one per parameterised layer (the norm of all its parameters'
    gradients together), first layer first. With an optimizer, they are taken right
    before ``optimizer.step()`` (after any clipping), so ``zero_grad`` placement does
    not matter; without one, when :meth:`step` is called.

    With ``restore_best_weights``, each verdict with ``improved`` (the guard's
    ``monitor`` reached a new best) copies ``model.state_dict()`` to the CPU (buffers
    included; optimizer state is not kept), and a stopping verdict loads that copy
    back into the model (:meth:`restore_best`). The copy is of the weights as they are
    when :meth:`step` is called, so compute ``val_loss`` on those weights, i.e. after
    ``optimizer.step()``. Copies are taken only on improvement: with ``monitor="loss"``
    that can be most early steps, so prefer a validation monitor for large models.

    Examples
    --------
    >>> import torch
    >>> from hindsight.training import TrainingGuard
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> x, y = torch.randn(64, 2), torch.randn(64, 1)
    >>> with watch(model, TrainingGuard(), optimizer=opt) as w:
    ...     for step in range(20):
    ...         opt.zero_grad()
    ...         loss = torch.nn.functional.mse_loss(model(x), y)
    ...         loss.backward()
    ...         opt.step()
    ...         verdict = w.step(step, loss, batch_size=64)
    >>> verdict.stop, w.layer_names
    (False, ('0', '2'))
    >>> len(model._forward_hooks) + len(model[1]._forward_hooks)
    0

    Keep the weights of the best validation loss and get them back on an early stop:

    >>> guard = TrainingGuard(monitor="val_loss", patience=2)
    >>> w = watch(model, guard, restore_best_weights=True)
    >>> for step, val in enumerate([0.9, 0.5, 0.6, 0.7]):
    ...     with torch.no_grad():
    ...         _ = model[0].bias.add_(1.0)  # stands for a training step
    ...     verdict = w.step(step, 0.1, val_loss=val)
    >>> verdict.early_stop, w.best_step
    (True, 1)
    >>> model[0].bias.equal(w.best_state["0.bias"])
    True
    >>> w.remove()
    """

    def __init__(
        self,
        model: nn.Module,
        guard: TrainingGuard,
        *,
        activations: bool,
        every: int,
        interval_s: float | None = None,
        warmup: int = 0,
        optimizer: torch.optim.Optimizer | None,
        restore_best_weights: bool = False,
    ) -> None:
        self.model = model
        self.guard = guard
        self.activations = activations
        self.every = every
        self.interval_s = interval_s
        self.warmup = warmup
        self.optimizer = optimizer
        self.restore_best_weights = restore_best_weights

        layers: list[tuple[str, list[nn.Parameter]]] = []
        seen: set[int] = set()  # tied weights count once, in the first layer that holds them
        for name, module in model.named_modules():
            params = [
                p for p in module.parameters(recurse=False) if p.requires_grad and id(p) not in seen
            ]
            seen.update(id(p) for p in params)
            if params:
                layers.append((name or type(module).__name__, params))
        if not layers:
            raise ConfigError(
                f"The model {type(model).__name__} has no trainable parameters, so there are "
                "no gradients to watch. Pass the model being trained (with requires_grad=True "
                "parameters)."
            )
        self._layer_names = tuple(name for name, _ in layers)
        self._params: list[nn.Parameter] = [p for _, params in layers for p in params]
        self._layer_of = [i for i, (_, params) in enumerate(layers) for _ in params]
        # Layer-index tensors by device and layout, so moving the model later still works.
        self._index_cache: dict[tuple[torch.device, tuple[int, ...]], torch.Tensor] = {}

        self._handles: list[RemovableHandle] = []
        self._dead_modules: dict[nn.Module, int] = {}
        self._sat_modules: dict[nn.Module, int] = {}
        self._dead_names: list[str] = []
        self._sat_names: list[str] = []
        if activations:
            for name, module in model.named_modules():
                if isinstance(module, DEAD_ACTIVATIONS):
                    self._dead_modules[module] = len(self._dead_names)
                    self._dead_names.append(name)
                elif isinstance(module, SATURATING_ACTIVATIONS):
                    self._sat_modules[module] = len(self._sat_names)
                    self._sat_names.append(name)
        # A sigmoid / tanh that produces the model's output is a confident prediction when
        # it sits at 0 or 1, not saturation: the first training forward finds it and drops it.
        self.output_activations: list[str] = []
        self._last_sat: tuple[nn.Module, torch.Tensor] | None = None
        self._collected = False
        self._removed = False
        # Hooks are on the model only for the steps that are sampled: a module with
        # hooks takes PyTorch's slower call path, which an unsampled step need not pay.
        self._install()

        self._n_steps = 0
        self._since_sample = 0
        self._sampled_at = time.perf_counter()
        self._sampling = True  # the first step is sampled
        self._dead: dict[int, list[torch.Tensor]] = {}
        self._sat: dict[int, list[torch.Tensor]] = {}
        self._pending_norms: torch.Tensor | None = None
        self._last_time: float | None = None
        # Unsampled steps waiting for the next sampled one (see step()). On the CPU a
        # loss is read at once; on an accelerator it stays there until the next sample.
        self._sync_per_step = self._params[0].device.type == "cpu"
        self._buf_steps: list[int] = []
        self._buf_loss: list[Any] = []
        self._buf_samples = 0
        self._buf_lr: float | None = None
        self._best_state: dict[str, Any] | None = None
        self._best_step: int | None = None

    # -- hooks ---------------------------------------------------------------------------
    def _install(self) -> None:
        if self._handles or self._removed:
            return
        for module in self._dead_modules:
            self._handles.append(module.register_forward_hook(self._dead_hook))
        for module in list(self._sat_modules):
            self._handles.append(module.register_forward_hook(self._saturated_hook))
        if self._sat_modules and not self._collected:
            self._handles.append(self.model.register_forward_hook(self._output_hook))
        if self.optimizer is not None:
            self._handles.append(self.optimizer.register_step_pre_hook(self._optimizer_pre_hook))

    def _uninstall(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _collecting(self, module: nn.Module) -> bool:
        # Only training forwards count: validation under no_grad / eval() is left out.
        return self._sampling and module.training and torch.is_grad_enabled()

    def _dead_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if not isinstance(output, torch.Tensor) or not self._collecting(module):
            return
        out = output.detach()  # detached: nothing below is recorded by autograd
        if out.dim() > 1:
            # A unit is dead when its largest output over the batch is <= 0: one
            # reduction, several times faster than comparing every element first.
            dead = (out.reshape(out.shape[0], -1).amax(dim=0) <= 0).to(torch.float64).mean()
        else:
            dead = (out <= 0).all().to(torch.float64)
        self._dead.setdefault(self._dead_modules[module], []).append(dead)

    def _saturated_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        index = self._sat_modules.get(module)  # None: an output layer, left out
        if index is None or not isinstance(output, torch.Tensor) or not self._collecting(module):
            return
        with torch.no_grad():
            out = output.detach()
            if isinstance(module, nn.Tanh):
                sat = out.abs() > 1.0 - 2.0 * SATURATION_MARGIN
            else:
                sat = (out < SATURATION_MARGIN) | (out > 1.0 - SATURATION_MARGIN)
            share = sat.to(torch.float64).mean()
        self._sat.setdefault(index, []).append(share)
        self._last_sat = (module, output)

    def _output_hook(self, model: nn.Module, args: Any, output: Any) -> None:
        last, self._last_sat = self._last_sat, None
        if last is None or self._collected or output is not last[1]:
            return
        module = last[0]
        gone = self._sat_modules.pop(module)
        self.output_activations.append(self._sat_names.pop(gone))
        self._sat_modules = {m: i - (i > gone) for m, i in self._sat_modules.items()}
        self._sat = {i - (i > gone): v for i, v in self._sat.items() if i != gone}

    def _optimizer_pre_hook(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.capture_grad_norms()

    def capture_grad_norms(self) -> None:
        """Take the per-layer gradient norms now, for the next :meth:`collect` to feed.

        For frameworks that run ``backward`` inside ``optimizer.step`` (a closure) or
        zero the gradients before the step ends: call it where the gradients are final,
        e.g. Lightning's ``on_before_optimizer_step``. Nothing happens without gradients,
        or on a step that is not sampled (see ``every``).
        """
        if self._sampling:
            self._pending_norms = self._grad_norms()

    def reset_clock(self) -> None:
        """Forget when the last step was collected, so a pause does not count as slow.

        Call it after a validation pass or a checkpoint, so that the throughput of the
        next step covers that step's work only.
        """
        self._last_time = None

    # -- per-step work -------------------------------------------------------------------
    def _grad_norms(self) -> torch.Tensor | None:
        """Per-layer gradient norms on the model's device (float64), or None without grads."""
        maybe = [p.grad for p in self._params]
        device = self._params[0].device
        grads = [g for g in maybe if g is not None and g.device == device]
        if len(grads) == len(maybe):
            # The common case, every gradient on the model's device: one fused norm.
            index = self._index_cache.get((device, ()))
            if index is None:
                index = self._index_cache[(device, ())] = torch.tensor(
                    self._layer_of, device=device
                )
            norms = torch.stack(torch._foreach_norm(grads)).to(torch.float64)
            total = torch.zeros(len(self._layer_names), dtype=torch.float64, device=device)
            return total.index_add_(0, index, norms * norms).sqrt_()
        groups: dict[torch.device, tuple[list[torch.Tensor], list[int]]] = {}
        for p, layer in zip(self._params, self._layer_of, strict=True):
            g = p.grad
            if g is not None:
                grads, where = groups.setdefault(g.device, ([], []))
                grads.append(g.detach())
                where.append(layer)
        if not groups:
            return None
        total = torch.zeros(len(self._layer_names), dtype=torch.float64, device=device)
        for grad_device, (grads, where) in groups.items():
            key = (grad_device, tuple(where))
            index = self._index_cache.get(key)
            if index is None:
                index = self._index_cache[key] = torch.tensor(where, device=grad_device)
            norms = torch.stack(torch._foreach_norm(grads)).to(torch.float64)
            sq = torch.zeros_like(total, device=grad_device).index_add_(0, index, norms * norms)
            total += sq.to(device)
        return total.sqrt_()

    @staticmethod
    def _shares(found: dict[int, list[torch.Tensor]], n: int, device: torch.device) -> Any:
        # A module called several times in one step (reused, or gradient accumulation)
        # counts once, with the mean of its shares. Unsampled steps, and steps in which
        # some layer did not run, feed nothing: the guard needs one value per layer.
        if n == 0 or len(found) < n:
            return None
        return torch.stack([torch.stack(found[i]).mean().to(device) for i in range(n)])

    def step(
        self,
        step: int,
        loss: Any,
        *,
        val_loss: Any = None,
        lr: float | None = None,
        metrics: Mapping[str, Any] | None = None,
        batch_size: int | None = None,
    ) -> Verdict:
        """Feed the guard this step's signals and return its :class:`Verdict`.

        ``loss`` and ``val_loss`` may be scalar tensors or floats; ``lr`` defaults to the
        first parameter group's learning rate of the watched optimizer; ``batch_size``
        (samples in this step) gives the throughput from the wall time since the
        previous call.

        With ``every > 1``, a step between samples that carries no ``val_loss`` or
        metrics is only buffered, its loss tensor left on its device (no synchronisation
        per step) and its verdict saying go on; the next sampled step brings the losses
        over in one copy and hands them to the guard, whose detectors check every value
        and report the step where a symptom first showed. A stop thus arrives up to
        ``every - 1`` steps after the bad step. A validation loss, metrics or a float
        loss that is not finite are checked at once. On a sampled step this is
        ``feed(collect(...))``.
        """
        if not self._sampling and val_loss is None and metrics is None:
            # The common case of _buffer() inlined, kept short: it runs on almost every
            # step, where each call and check shows in a small model's step time.
            if (
                self._sync_per_step
                and type(step) is int
                and type(loss) is torch.Tensor
                and (batch_size is None or (type(batch_size) is int and batch_size > 0))
                and self._buf_steps
                and step > self._buf_steps[-1]
                and loss.numel() == 1
            ):
                value = loss.item()
                if math.isfinite(value):
                    self._buf_steps.append(step)
                    self._buf_loss.append(value)
                    if batch_size is not None:
                        self._buf_samples += batch_size
                    if lr is not None:
                        self._buf_lr = lr
                    self._advance()
                    return Verdict(step=step, stop=False, symptoms=(), reason=None)
            quiet = self._buffer(step, loss, lr, batch_size)
            if quiet is not None:
                return quiet
        self._flush()
        return self.feed(
            self.collect(
                step, loss, val_loss=val_loss, lr=lr, metrics=metrics, batch_size=batch_size
            )
        )

    def _buffer(
        self, step: int, loss: Any, lr: float | None, batch_size: int | None
    ) -> Verdict | None:
        """Keep an unsampled step's loss (on its device, no sync); ``None``: feed it now."""
        if type(step) is not int and (
            isinstance(step, bool) or not isinstance(step, numbers.Integral)
        ):
            raise DataQualityError(f"The 'step' argument must be an int >= 0. Got {step!r}.")
        last = self._buf_steps[-1] if self._buf_steps else self.guard.state.step
        if last is not None and step <= last:
            raise DataQualityError(
                f"The 'step' argument must increase on every call. Got {step} after {last}; "
                "pass the global step, not the step within an epoch."
            )
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:
                return None  # collect() names the problem
            if self._sync_per_step:
                item = float(loss.item())  # on the CPU there is no device to wait for
                if not math.isfinite(item):
                    return None  # the guard sees it now
                self._buf_loss.append(item)
            else:
                self._buf_loss.append(loss.detach())  # no sync per step on an accelerator
        else:
            value = _as_float("loss", loss)
            if value is None or not math.isfinite(value):
                return None  # nothing to buffer, or a non-finite loss: the guard sees it now
            self._buf_loss.append(value)
        if batch_size is not None:
            if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or (
                batch_size < 1
            ):
                raise DataQualityError(
                    f"The 'batch_size' argument must be an int >= 1 or None. Got {batch_size!r}."
                )
            self._buf_samples += int(batch_size)
        self._buf_steps.append(int(step))
        if lr is not None:
            self._buf_lr = lr
        self._advance()
        return Verdict(step=int(step), stop=False, symptoms=(), reason=None)

    def _flush(self) -> None:
        """Hand the buffered steps to the guard (checked at its next update).

        The losses come to the host in one copy. Their samples count towards the
        throughput of the next collected step, which covers the time since the last one.
        """
        if not self._buf_steps:
            return
        steps, losses = self._buf_steps, self._buf_loss
        tensors = [x for x in losses if isinstance(x, torch.Tensor)]
        if not tensors:
            values = losses
        elif len(tensors) == len(losses) and len({(t.device, t.dtype, t.shape) for t in tensors}) == 1:
            values = torch.stack(tensors).reshape(-1).tolist()  # one copy for them all
        else:
            values = [x.item() if isinstance(x, torch.Tensor) else float(x) for x in losses]
        lr = self._buf_lr
        if lr is None and self.optimizer is not None and self.optimizer.param_groups:
            lr = self.optimizer.param_groups[0].get("lr")
        lr_value = _as_float("lr", lr)
        self.guard.record(
            steps, loss=values, lr=None if lr_value is None else [lr_value] * len(steps)
        )
        self._buf_steps, self._buf_loss, self._buf_lr = [], [], None

    def _advance(self) -> None:
        """Count a step and put the hooks on for the next one only if it is sampled.

        The next step is sampled ``every`` steps after the last sample, or sooner once
        ``interval_s`` seconds have passed (slow steps are then sampled every time);
        the first ``warmup`` steps are all sampled.
        """
        self._n_steps += 1
        self._since_sample += 1
        now = time.perf_counter()
        self._sampling = (
            self._n_steps < self.warmup
            or self._since_sample >= self.every
            or (self.interval_s is not None and now - self._sampled_at >= self.interval_s)
        )
        if self._sampling:
            self._since_sample, self._sampled_at = 0, now
            self._install()
        elif self._handles:
            self._uninstall()

    def collect(
        self,
        step: int,
        loss: Any = None,
        *,
        val_loss: Any = None,
        lr: float | None = None,
        metrics: Mapping[str, Any] | None = None,
        batch_size: int | None = None,
        read_grads: bool = True,
    ) -> StepSignals:
        """Read this step's signals to the host without feeding the guard yet.

        Takes the gradient norms captured by :meth:`capture_grad_norms` (or the
        optimizer hook), else, with ``read_grads``, those of the gradients as they are
        now; and the activation shares gathered since the last call. Arguments as for
        :meth:`step`.
        """
        if batch_size is not None and (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, numbers.Integral)
            or batch_size < 1
        ):
            raise DataQualityError(
                f"The 'batch_size' argument must be an int >= 1 or None. Got {batch_size!r}."
            )
        now = time.perf_counter()
        throughput = None
        samples = (batch_size or 0) + self._buf_samples  # with the steps buffered since
        self._buf_samples = 0
        if samples and self._last_time is not None and now > self._last_time:
            throughput = float(samples) / (now - self._last_time)
        self._last_time = now

        sampled = self._sampling
        norms = self._pending_norms
        if norms is None and read_grads and sampled:
            norms = self._grad_norms()
        self._pending_norms = None
        device = self._params[0].device
        self._collected = True  # from here on the activation layers are fixed
        self._last_sat = None
        dead = self._shares(self._dead, len(self._dead_names), device)
        sat = self._shares(self._sat, len(self._sat_names), device)
        self._dead, self._sat = {}, {}

        # One device-to-host copy for everything computed on the device.
        parts: list[torch.Tensor] = []
        loss_on_device = isinstance(loss, torch.Tensor) and loss.numel() == 1
        if loss_on_device and norms is None and dead is None and sat is None:
            loss_on_device, loss = False, loss.detach().item()  # unsampled: the loss alone
        if loss_on_device:
            parts.append(loss.detach().reshape(1).to(device, torch.float64))
        for t in (norms, dead, sat):
            if t is not None:
                parts.append(t)
        host = torch.cat(parts).cpu().tolist() if parts else []
        pos = 0
        if loss_on_device:
            loss_value: float | None = host[0]
            pos = 1
        else:
            loss_value = _as_float("loss", loss)
        grad_norms = None
        if norms is not None:
            grad_norms = host[pos : pos + norms.numel()]
            pos += norms.numel()
        acts: dict[str, list[float]] = {}
        if dead is not None:
            acts["dead"] = host[pos : pos + dead.numel()]
            pos += dead.numel()
        if sat is not None:
            acts["saturated"] = host[pos : pos + sat.numel()]

        if lr is None and self.optimizer is not None and self.optimizer.param_groups:
            group_lr = self.optimizer.param_groups[0].get("lr")
            lr = _as_float("lr", group_lr)
        memory = None
        if sampled:
            if device.type == "cuda":
                memory = float(torch.cuda.memory_allocated(device))
            else:
                memory = _rss_bytes()

        metric_values: dict[str, float] | None = None
        if metrics is not None:
            if not isinstance(metrics, Mapping):
                raise DataQualityError(
                    f"The 'metrics' argument must be a mapping of name to value. Got {metrics!r}."
                )
            metric_values = {}
            for key, value in metrics.items():
                x = _as_float(f"metrics[{key!r}]", value)
                if x is not None:
                    metric_values[str(key)] = x
        self._advance()
        return StepSignals(
            step=step,
            loss=loss_value,
            val_loss=_as_float("val_loss", val_loss),
            metrics=metric_values,
            grad_norms=grad_norms,
            lr=_as_float("lr", lr),
            activations=acts or None,
            throughput=throughput,
            memory=memory,
        )

    def feed(self, signals: StepSignals, *, restore_on_stop: bool = True) -> Verdict:
        """Hand collected signals to the guard and act on its :class:`Verdict`.

        With ``restore_best_weights``, an improving verdict snapshots the weights and,
        when ``restore_on_stop`` is true, a stopping verdict restores the best ones
        (callbacks pass ``False`` and restore when training has ended instead).
        """
        if not isinstance(signals, StepSignals):
            raise ConfigError(
                f"The 'signals' argument of TorchWatch.feed must be a StepSignals. Got "
                f"{signals!r}; build it with TorchWatch.collect()."
            )
        verdict = self.guard.update(**signals.as_kwargs())
        if self.restore_best_weights:
            if verdict.improved:
                self._best_state = self._snapshot()
                self._best_step = verdict.step
            if verdict.stop and restore_on_stop:
                self._restore_on_stop()
        return verdict

    # -- best weights --------------------------------------------------------------------
    def _snapshot(self) -> dict[str, Any]:
        # CPU copies: accelerator memory is the scarce one, and copies are rare
        # (only on improvement). Non-tensor extra state is deep-copied.
        return {
            key: value.detach().to("cpu", copy=True)
            if isinstance(value, torch.Tensor)
            else copy.deepcopy(value)
            for key, value in self.model.state_dict().items()
        }

    def _restore_on_stop(self) -> None:
        if not self.restore_best():
            logger.warning(
                "The guard stopped the run but there are no best weights to restore: "
                "its monitor %r was never fed a finite value.",
                self.guard.monitor,
            )

    def restore_best(self) -> bool:
        """Load the best weights seen so far back into the model.

        Returns ``False`` (and changes nothing) when there is no snapshot yet, i.e. the
        guard's ``monitor`` has not been fed a finite value.
        """
        if not self.restore_best_weights:
            raise ConfigError(
                "TorchWatch.restore_best needs the best weights, which are only kept with "
                "restore_best_weights=True; pass it to watch()."
            )
        if self._best_state is None:
            return False
        self.model.load_state_dict(self._best_state)
        return True

    # -- read-only results and cleanup ---------------------------------------------------
    @property
    def layer_names(self) -> tuple[str, ...]:
        """Names of the parameterised layers whose gradient norms are fed, first to last."""
        return self._layer_names

    @property
    def next_step_sampled(self) -> bool:
        """Whether the next step will read gradient norms and activations (see ``every``)."""
        return self._sampling

    @property
    def activation_layers(self) -> dict[str, tuple[str, ...]]:
        """Names of the activation modules behind ``"dead"`` and ``"saturated"`` shares."""
        return {"dead": tuple(self._dead_names), "saturated": tuple(self._sat_names)}

    @property
    def best_step(self) -> int | None:
        """Step of the best-weights snapshot (``None`` before one, or without the option)."""
        return self._best_step

    @property
    def best_state(self) -> dict[str, Any] | None:
        """The best-weights snapshot: CPU copies of ``model.state_dict()``, or ``None``."""
        return self._best_state

    @property
    def removed(self) -> bool:
        """Whether :meth:`remove` was called."""
        return self._removed

    def remove(self) -> None:
        """Take every hook off the model and optimizer (safe to call twice).

        Steps still buffered are handed to the guard's state.
        """
        self._flush()
        self._uninstall()
        self._dead, self._sat = {}, {}
        self._removed = True

    def __enter__(self) -> TorchWatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()


_constraints = {
    "every": Interval(int, 1, None, "left"),
    "interval_s": Interval(float, 0.0, None, "neither", allow_none=True),
    "warmup": Interval(int, 0, None, "left"),
}


def watch(
    model: nn.Module,
    guard: TrainingGuard,
    *,
    activations: bool = True,
    every: int = 100,
    interval_s: float | None = 1.0,
    warmup: int = 100,
    optimizer: torch.optim.Optimizer | None = None,
    restore_best_weights: bool = False,
) -> TorchWatch:
    """Hook ``model`` (and ``optimizer``) so that :meth:`TorchWatch.step` feeds ``guard``.

    Parameters
    ----------
    model
        The ``torch.nn.Module`` being trained; it needs trainable parameters.
    guard
        The :class:`~hindsight.training.TrainingGuard` to feed.
    activations
        Whether to collect dead shares of ReLU-family layers and saturated shares of
        sigmoid / tanh layers (default ``True``).
    every
        Sample every ``every``-th step, the first included (int >= 1, default 100):
        gradient norms, activation statistics and memory are read on sampled steps, and
        the losses of the steps between are handed to the guard then, in one copy, so
        its detectors see every loss. ``every=1`` feeds the guard each step.
    interval_s
        Also sample once this many seconds have passed since the last sample (> 0,
        default 1.0), so slow steps are sampled every time; ``None`` for steps only.
    warmup
        Sample each of the first ``warmup`` steps (int >= 0, default 100): set-up faults
        (a learning rate far off, a bad initialisation, unnormalised inputs, dying units)
        show from the start, and the cost is paid once. Together these keep the watch
        within 2% of a small MLP's step on the CPU after the warm-up
        (``benchmarks/bench_guard_overhead.py``).
    optimizer
        The optimizer, for the learning rate and gradient norms taken before its step.
    restore_best_weights
        Whether to keep a CPU copy of the weights at the guard's best ``monitor`` value
        and load it back when the guard stops the run (default ``False``).
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"The 'model' parameter of watch must be a torch.nn.Module. Got {model!r}."
        )
    if not isinstance(guard, TrainingGuard):
        raise ConfigError(
            f"The 'guard' parameter of watch must be a TrainingGuard. Got {guard!r}; "
            "pass e.g. TrainingGuard()."
        )
    for name, flag in (
        ("activations", activations),
        ("restore_best_weights", restore_best_weights),
    ):
        if not isinstance(flag, bool):
            raise ConfigError(f"The {name!r} parameter of watch must be a bool. Got {flag!r}.")
    validate_params(
        "watch", {"every": every, "interval_s": interval_s, "warmup": warmup}, _constraints
    )
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError(
            f"The 'optimizer' parameter of watch must be a torch.optim.Optimizer or None. "
            f"Got {optimizer!r}."
        )
    if next(iter(model.parameters()), None) is None:
        raise ConfigError(
            f"The model {type(model).__name__} has no parameters, so there is nothing to "
            "watch. Pass the model being trained, after its layers are built."
        )
    return TorchWatch(
        model,
        guard,
        activations=activations,
        every=int(every),
        interval_s=None if interval_s is None else float(interval_s),
        warmup=int(warmup),
        optimizer=optimizer,
        restore_best_weights=restore_best_weights,
    )
