"""The training guard's running state: fixed-capacity NumPy windows of every signal."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from hindsight._validation import Interval, validate_params
from hindsight.errors import DataQualityError

__all__ = ["TrainingState"]

FloatArray = npt.NDArray[np.float64]


class _Ring:
    """A ring buffer of (step, value-row) pairs with O(1) appends and zero-copy reads.

    Each row is written twice, at ``i`` and ``i + capacity``, so the newest
    ``capacity`` rows are always one contiguous slice of the doubled buffer.
    """

    __slots__ = ("_buf", "_capacity", "_count", "_head", "_steps", "_steps_view", "_view", "width")

    def __init__(self, capacity: int, width: int = 0) -> None:
        self._capacity = capacity
        self.width = width
        shape: tuple[int, ...] = (2 * capacity, width) if width else (2 * capacity,)
        self._buf = np.empty(shape, dtype=np.float64)
        self._steps = np.empty(2 * capacity, dtype=np.int64)
        self._head = 0
        self._count = 0
        self._view: FloatArray | None = None
        self._steps_view: npt.NDArray[np.int64] | None = None

    def append(self, step: int, value: float | FloatArray) -> None:
        i = self._head
        self._buf[i] = value
        self._buf[i + self._capacity] = value
        self._steps[i] = step
        self._steps[i + self._capacity] = step
        self._head = (i + 1) % self._capacity
        if self._count < self._capacity:
            self._count += 1
        self._view = self._steps_view = None

    def extend(self, steps: npt.NDArray[np.int64], values: FloatArray) -> None:
        """Append many scalar rows at once (slices, no per-row work; the newest kept)."""
        cap, n = self._capacity, int(steps.size)
        if n > cap:
            steps, values, n = steps[-cap:], values[-cap:], cap
        h = self._head
        first = min(n, cap - h)
        for buf, src in ((self._buf, values), (self._steps, steps)):
            buf[h : h + first] = src[:first]
            buf[h + cap : h + cap + first] = src[:first]
            if n > first:
                buf[: n - first] = src[first:]
                buf[cap : cap + n - first] = src[first:]
        self._head = (h + n) % cap
        self._count = min(cap, self._count + n)
        self._view = self._steps_view = None

    def __len__(self) -> int:
        return self._count

    def _slice(self) -> slice:
        end = self._head + self._capacity if self._count == self._capacity else self._head
        return slice(end - self._count, end)

    def values(self) -> FloatArray:
        # Cached until the next append: detectors read the same window many times a step.
        if self._view is None:
            self._view = self._buf[self._slice()]
            self._view.flags.writeable = False
        return self._view

    def steps(self) -> npt.NDArray[np.int64]:
        if self._steps_view is None:
            self._steps_view = self._steps[self._slice()]
            self._steps_view.flags.writeable = False
        return self._steps_view


def _as_real(name: str, value: Any) -> float:
    if type(value) is float:  # the common case, without the slower ABC check
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DataQualityError(
            f"The {name!r} argument must be a real number. Got {value!r} "
            f"({type(value).__name__}); pass a float, e.g. loss.item()."
        )
    return float(value)


def _as_vector(name: str, value: Any, width: int, low: float | None = None) -> FloatArray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataQualityError(
            f"The {name!r} argument must be a sequence of real numbers, one per layer. "
            f"Got {value!r}."
        ) from None
    if arr.ndim != 1 or arr.size == 0:
        raise DataQualityError(
            f"The {name!r} argument must be a non-empty 1-D sequence, one value per layer. "
            f"Got shape {arr.shape}."
        )
    if width and arr.size != width:
        raise DataQualityError(
            f"The {name!r} argument must have {width} values, one per layer as on its first "
            f"step. Got {arr.size}; report the same layers, first to last, every step."
        )
    if low is not None and (arr < low).any():
        raise DataQualityError(f"The {name!r} argument must hold values >= {low:g}. Got {value!r}.")
    return arr


class TrainingState:
    """Running state of one training run: the step and windows of every signal fed so far.

    Each signal lives in a fixed-capacity ring buffer; updates are O(1) and window reads
    (``loss``, ``grad_norms``...) are read-only NumPy views, oldest first. Per-layer
    signals (gradient norms, dead / saturated shares) are 2-D, ``(n, n_layers)``, with
    layers ordered from the first (input side) to the last (output side).

    Parameters
    ----------
    window
        How many recent values of each signal to keep.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> state = TrainingState(window=8)
    >>> for step in range(10):
    ...     _ = state.update(step, loss=1.0 / (step + 1) + 0.01 * rng.random())
    >>> len(state.loss), state.step
    (8, 9)
    >>> round(state.best_loss, 3), round(state.initial_loss, 3)
    (0.109, 1.006)
    """

    _constraints = {"window": Interval(int, 2, None, "left")}

    def __init__(self, window: int = 256) -> None:
        validate_params("TrainingState", {"window": window}, self._constraints)
        self.window = window
        self.reset()

    def reset(self) -> None:
        """Forget everything fed so far."""
        w = self.window
        self._step: int | None = None
        self._n_updates = 0
        self._loss = _Ring(w)
        self._val_loss = _Ring(w)
        self._lr = _Ring(w)
        self._throughput = _Ring(w)
        self._memory = _Ring(w)
        self._gpu_memory = _Ring(w)
        self._elapsed = _Ring(w)
        self._metrics: dict[str, _Ring] = {}
        self._grads: _Ring | None = None
        self._dead: _Ring | None = None
        self._saturated: _Ring | None = None
        self._updated: frozenset[str] = frozenset()
        self._fresh: dict[str, int] = {}
        self._pending: dict[str, int] = {}  # signals extended since the last update
        self._initial_loss = math.nan
        self._best_loss = math.inf
        self._best_loss_step: int | None = None
        self._prev_best_loss = math.inf
        self._best_before_pending = math.inf
        self._best_before_fresh = math.inf

    def update(
        self,
        step: int,
        *,
        loss: float | None = None,
        val_loss: float | None = None,
        metrics: Mapping[str, float] | None = None,
        grad_norms: Sequence[float] | FloatArray | None = None,
        lr: float | None = None,
        activations: Mapping[str, Sequence[float] | FloatArray] | None = None,
        throughput: float | None = None,
        memory: float | None = None,
        gpu_memory: float | None = None,
        elapsed: float | None = None,
    ) -> TrainingState:
        """Record one step's signals (any may be ``None``) and return ``self``.

        ``memory`` is host memory in bytes; ``gpu_memory`` the share of the accelerator's
        memory in use, in [0, 1]; ``elapsed`` the seconds since training began.
        ``activations`` maps ``"dead"`` and/or ``"saturated"`` to per-layer shares in [0, 1].
        Every argument is checked before anything is stored, so a bad call changes nothing.
        """
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise DataQualityError(f"The 'step' argument must be an int >= 0. Got {step!r}.")
        step = int(step)
        if self._step is not None and step <= self._step:
            raise DataQualityError(
                f"The 'step' argument must increase on every update. Got {step} after "
                f"{self._step}; pass the global step, not the step within an epoch."
            )
        scalars: dict[str, float] = {}
        for name, value in (
            ("loss", loss),
            ("val_loss", val_loss),
            ("lr", lr),
            ("throughput", throughput),
            ("memory", memory),
            ("gpu_memory", gpu_memory),
            ("elapsed", elapsed),
        ):
            if value is not None:
                scalars[name] = _as_real(name, value)
        if "gpu_memory" in scalars and not 0.0 <= scalars["gpu_memory"] <= 1.0:
            raise DataQualityError(
                "The 'gpu_memory' argument must be the share of GPU memory in use, in [0, 1]. "
                f"Got {gpu_memory!r}; divide the bytes in use by the device's total."
            )
        metric_values: dict[str, float] = {}
        if metrics is not None:
            if not isinstance(metrics, Mapping):
                raise DataQualityError(
                    f"The 'metrics' argument must be a mapping of name to value. Got {metrics!r}."
                )
            for key, value in metrics.items():
                metric_values[str(key)] = _as_real(f"metrics[{key!r}]", value)
        grads = None
        if grad_norms is not None:
            width = self._grads.width if self._grads is not None else 0
            grads = _as_vector("grad_norms", grad_norms, width, low=0.0)
        act: dict[str, FloatArray] = {}
        if activations is not None:
            if not isinstance(activations, Mapping) or not set(activations) <= {
                "dead",
                "saturated",
            }:
                raise DataQualityError(
                    "The 'activations' argument must be a mapping with keys 'dead' and/or "
                    f"'saturated', each a per-layer share in [0, 1]. Got {activations!r}."
                )
            for key, value in activations.items():
                ring = self._dead if key == "dead" else self._saturated
                arr = _as_vector(f"activations[{key!r}]", value, ring.width if ring else 0, 0.0)
                if (arr > 1.0).any():
                    raise DataQualityError(
                        f"The 'activations[{key!r}]' argument must hold shares in [0, 1]. "
                        f"Got {value!r}."
                    )
                act[key] = arr

        # Everything is valid: store it.
        self._step = step
        self._n_updates += 1
        updated = set(scalars)
        if "loss" in scalars:
            x = scalars["loss"]
            self._loss.append(step, x)
            self._prev_best_loss = self._best_loss
            if math.isfinite(x):
                if math.isnan(self._initial_loss):
                    self._initial_loss = x
                if x < self._best_loss:
                    self._best_loss = x
                    self._best_loss_step = step
        for name in ("val_loss", "lr", "throughput", "memory", "gpu_memory", "elapsed"):
            if name in scalars:
                getattr(self, f"_{name}").append(step, scalars[name])
        for key, x in metric_values.items():
            ring = self._metrics.get(key)
            if ring is None:
                ring = self._metrics[key] = _Ring(self.window)
            ring.append(step, x)
            updated.add(f"metrics.{key}")
        if grads is not None:
            if self._grads is None:
                self._grads = _Ring(self.window, grads.size)
            self._grads.append(step, grads)
            updated.add("grad_norms")
        for key, arr in act.items():
            if key == "dead":
                if self._dead is None:
                    self._dead = _Ring(self.window, arr.size)
                self._dead.append(step, arr)
            else:
                if self._saturated is None:
                    self._saturated = _Ring(self.window, arr.size)
                self._saturated.append(step, arr)
            updated.add(key)
        if "loss" in self._pending:
            self._best_before_fresh = self._best_before_pending
        elif "loss" in scalars:
            self._best_before_fresh = self._prev_best_loss
        pending, self._pending = self._pending, {}
        self._fresh = {name: pending.get(name, 0) + (name in updated) for name in {*updated, *pending}}
        self._updated = frozenset(self._fresh)
        return self

    def extend(
        self,
        steps: Sequence[int] | npt.NDArray[np.int64],
        *,
        loss: Sequence[float] | FloatArray | None = None,
        lr: Sequence[float] | FloatArray | None = None,
        throughput: Sequence[float] | FloatArray | None = None,
    ) -> TrainingState:
        """Record the per-step signals of many steps at once, vectorised, and return ``self``.

        For a caller that buffers steps and checks less often: the values count as fed
        with the next :meth:`update`, whose :attr:`updated` names them and whose
        :meth:`fresh` counts them, so detectors look at every value, not only the last.
        ``steps`` must increase and come after the latest step; each signal given must
        have one value per step (``throughput`` may hold NaN where unknown, which is
        skipped). Everything is checked before anything is stored.
        """
        st = np.asarray(steps, dtype=np.int64)
        if st.ndim != 1:
            raise DataQualityError(f"The 'steps' argument must be 1-D. Got shape {st.shape}.")
        if st.size == 0:
            return self
        if (st[0] < 0) or (st.size > 1 and bool((np.diff(st) <= 0).any())) or (
            self._step is not None and st[0] <= self._step
        ):
            raise DataQualityError(
                "The 'steps' argument must increase and come after the latest step "
                f"({self._step}). Got {st.tolist()[:8]}..."
            )
        arrays: dict[str, FloatArray] = {}
        for name, value in (("loss", loss), ("lr", lr), ("throughput", throughput)):
            if value is None:
                continue
            try:
                arr = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise DataQualityError(
                    f"The {name!r} argument must be a sequence of real numbers, one per step. "
                    f"Got {value!r}."
                ) from None
            if arr.shape != st.shape:
                raise DataQualityError(
                    f"The {name!r} argument must have one value per step ({st.size}). "
                    f"Got shape {arr.shape}."
                )
            arrays[name] = arr
        if "loss" in arrays:
            x = arrays["loss"]
            if "loss" not in self._pending:
                self._best_before_pending = self._best_loss
            self._loss.extend(st, x)
            finite = np.isfinite(x)
            if finite.any():
                if math.isnan(self._initial_loss):
                    self._initial_loss = float(x[finite][0])
                i = int(np.argmin(np.where(finite, x, np.inf)))
                if x[i] < self._best_loss:
                    self._best_loss, self._best_loss_step = float(x[i]), int(st[i])
            self._pending["loss"] = self._pending.get("loss", 0) + int(st.size)
        if "lr" in arrays:
            self._lr.extend(st, arrays["lr"])
            self._pending["lr"] = self._pending.get("lr", 0) + int(st.size)
        if "throughput" in arrays:
            known = ~np.isnan(arrays["throughput"])
            if known.any():
                self._throughput.extend(st[known], arrays["throughput"][known])
                self._pending["throughput"] = self._pending.get("throughput", 0) + int(
                    known.sum()
                )
        self._step = int(st[-1])
        self._n_updates += int(st.size)
        return self

    def fresh(self, signal: str) -> int:
        """How many values of ``signal`` the latest update fed (with those extended before it).

        1 for a signal fed by a plain :meth:`update`; more after :meth:`extend`; 0 when
        the latest update did not feed it.
        """
        return self._fresh.get(signal, 0)

    # -- read-only results -------------------------------------------------------------
    @property
    def step(self) -> int | None:
        """The latest step fed, or ``None`` before the first update."""
        return self._step

    @property
    def n_updates(self) -> int:
        """How many steps were fed: by :meth:`update` and by :meth:`extend`."""
        return self._n_updates

    @property
    def updated(self) -> frozenset[str]:
        """Names of the signals fed on the latest update (``"metrics.acc"`` for metrics)."""
        return self._updated

    @property
    def loss(self) -> FloatArray:
        """Window of training losses, oldest first."""
        return self._loss.values()

    @property
    def loss_steps(self) -> npt.NDArray[np.int64]:
        """Steps of :attr:`loss`."""
        return self._loss.steps()

    @property
    def val_loss(self) -> FloatArray:
        """Window of validation losses, oldest first."""
        return self._val_loss.values()

    @property
    def val_loss_steps(self) -> npt.NDArray[np.int64]:
        """Steps of :attr:`val_loss`."""
        return self._val_loss.steps()

    @property
    def lr(self) -> FloatArray:
        """Window of learning rates."""
        return self._lr.values()

    @property
    def throughput(self) -> FloatArray:
        """Window of throughputs (samples per second)."""
        return self._throughput.values()

    @property
    def memory(self) -> FloatArray:
        """Window of memory use (bytes)."""
        return self._memory.values()

    @property
    def memory_steps(self) -> npt.NDArray[np.int64]:
        """Steps of :attr:`memory`."""
        return self._memory.steps()

    @property
    def gpu_memory(self) -> FloatArray:
        """Window of the share of GPU memory in use, in [0, 1]."""
        return self._gpu_memory.values()

    @property
    def elapsed(self) -> FloatArray:
        """Window of seconds since training began."""
        return self._elapsed.values()

    @property
    def elapsed_steps(self) -> npt.NDArray[np.int64]:
        """Steps of :attr:`elapsed`."""
        return self._elapsed.steps()

    def metric(self, name: str) -> FloatArray:
        """Window of the metric ``name`` (empty if never fed)."""
        ring = self._metrics.get(name)
        return ring.values() if ring is not None else np.empty(0)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Names of the metrics fed so far."""
        return tuple(self._metrics)

    @property
    def grad_norms(self) -> FloatArray:
        """Window of per-layer gradient norms, shape ``(n, n_layers)``, first layer first."""
        return self._grads.values() if self._grads is not None else np.empty((0, 0))

    @property
    def dead_share(self) -> FloatArray:
        """Window of per-layer shares of dead units, shape ``(n, n_layers)``."""
        return self._dead.values() if self._dead is not None else np.empty((0, 0))

    @property
    def saturated_share(self) -> FloatArray:
        """Window of per-layer shares of saturated units, shape ``(n, n_layers)``."""
        return self._saturated.values() if self._saturated is not None else np.empty((0, 0))

    @property
    def initial_loss(self) -> float:
        """The first finite training loss (NaN before one)."""
        return self._initial_loss

    @property
    def best_loss(self) -> float:
        """The lowest finite training loss so far (inf before one)."""
        return self._best_loss

    @property
    def best_loss_step(self) -> int | None:
        """Step of :attr:`best_loss`."""
        return self._best_loss_step

    @property
    def best_loss_before_fresh(self) -> float:
        """The lowest finite training loss before the latest update's fresh losses."""
        return self._best_before_fresh

    @property
    def previous_best_loss(self) -> float:
        """The lowest finite training loss before the latest loss was fed."""
        return self._prev_best_loss
