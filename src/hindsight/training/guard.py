"""The training guard: feed it every step, it says when a run is doomed and why."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from hindsight._validation import Interval, Options, validate_params
from hindsight.errors import ConfigError
from hindsight.training.detectors import Detector, default_detectors
from hindsight.training.reporting import GuardReporter
from hindsight.training.resources import ResourceMonitor
from hindsight.training.state import FloatArray, TrainingState
from hindsight.training.symptom import Symptom

if TYPE_CHECKING:
    from hindsight.alerts import AlertChannel, Dispatcher
    from hindsight.ledger import Experiment
    from hindsight.ledger.records import FailureReport

__all__ = ["TrainingGuard", "Verdict"]

logger = logging.getLogger("hindsight.training")


@dataclass(frozen=True)
class Verdict:
    """What the guard concluded after one update.

    ``symptoms`` holds the symptoms first reported at this step; ``stop`` says whether
    training should stop now and ``reason`` says why (``None`` when it should go on).
    ``improved`` says that ``monitor`` reached a new best at this step: the moment an
    integration snapshots the weights it restores on stop (``restore_best_weights``).

    Examples
    --------
    >>> Verdict(step=3, stop=False, symptoms=(), reason=None).stop
    False
    """

    step: int
    stop: bool
    symptoms: tuple[Symptom, ...]
    reason: str | None
    early_stop: bool = False
    improved: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {
            "step": self.step,
            "stop": self.stop,
            "early_stop": self.early_stop,
            "improved": self.improved,
            "reason": self.reason,
            "symptoms": [s.to_dict() for s in self.symptoms],
        }


class TrainingGuard:
    """Watches a training run step by step, reports symptoms and says when to stop.

    Each update feeds the running :class:`TrainingState`; every detector whose signals
    were fed checks it. A detector reports its symptom once, and again only after it
    cleared (its check came back empty). With ``on_failure="stop"`` a symptom of
    severity ``"stop"`` stops the run; with ``"warn"`` symptoms are only reported.
    With ``patience`` set, the guard also stops early when ``monitor`` has not improved
    by more than ``min_delta`` for ``patience`` updates that carried it.

    Parameters
    ----------
    detectors
        The detectors to run; ``None`` (default) for :func:`default_detectors`.
    on_failure
        ``"stop"`` (default) or ``"warn"``.
    monitor
        What early stopping watches: ``"loss"``, ``"val_loss"`` (default) or a metric name.
    mode
        ``"min"`` (default) or ``"max"``: whether lower or higher ``monitor`` is better.
    patience
        Updates of ``monitor`` without improvement before stopping (>= 1), or ``None``
        (default) for no early stopping.
    min_delta
        Absolute change of ``monitor`` that counts as an improvement (>= 0, default 0).
    window
        Values of each signal the state keeps (>= 2, default 256).
    experiment
        Where a stop is recorded as a failure: ``"auto"`` (default) for the ledger
        experiment running around the loop (none outside one), an ``Experiment``, or
        ``None``. The failure carries the symptom, the curves up to the stop, the
        diagnosis and fingerprint; the similar past failures and their lessons are
        printed as for a crash (:attr:`failure` holds the report).
    alerts
        Where symptoms are announced: ``"auto"`` (default) for the channels in the
        settings' ``alerts`` (``HINDSIGHT_ALERTS``; none when unset), a
        :class:`~hindsight.alerts.Dispatcher`, a list of alert channels, or ``None``.
        A failing channel is retried with backoff and then logged; it never raises.
    alert_on
        ``"warn"`` (default) alerts on every new symptom, ``"stop"`` only on stops.
    resources
        A :class:`ResourceMonitor` that feeds ``memory``, ``gpu_memory`` and ``elapsed``
        into updates that do not carry them, or ``None`` (default).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> guard = TrainingGuard()
    >>> for step in range(100):
    ...     loss = 2.0 * np.exp(-step / 30) + 0.01 * rng.random()
    ...     verdict = guard.update(step, loss=loss, lr=1e-3)
    ...     if verdict.stop:
    ...         break
    >>> verdict.stop
    False
    >>> verdict = guard.update(100, loss=float("nan"))
    >>> verdict.stop, verdict.symptoms[0].kind
    (True, 'nonfinite_loss')
    """

    _constraints: ClassVar[Mapping[str, Interval | Options]] = {
        "on_failure": Options(("stop", "warn")),
        "mode": Options(("min", "max")),
        "patience": Interval(int, 1, None, "left", allow_none=True),
        "min_delta": Interval(float, 0.0, None, "left"),
        "window": Interval(int, 2, None, "left"),
    }

    def __init__(
        self,
        detectors: Sequence[Detector] | None = None,
        *,
        on_failure: str = "stop",
        monitor: str = "val_loss",
        mode: str = "min",
        patience: int | None = None,
        min_delta: float = 0.0,
        window: int = 256,
        experiment: Experiment | str | None = "auto",
        alerts: Dispatcher | Sequence[AlertChannel] | str | None = "auto",
        alert_on: str = "warn",
        resources: ResourceMonitor | None = None,
    ) -> None:
        params = {
            "on_failure": on_failure,
            "mode": mode,
            "patience": patience,
            "min_delta": min_delta,
            "window": window,
        }
        validate_params("TrainingGuard", params, self._constraints)
        if not isinstance(monitor, str) or not monitor:
            raise ConfigError(
                f"The 'monitor' parameter of TrainingGuard must be 'loss', 'val_loss' or a "
                f"metric name. Got {monitor!r}."
            )
        found = default_detectors() if detectors is None else list(detectors)
        for d in found:
            if not isinstance(d, Detector):
                raise ConfigError(
                    "The 'detectors' parameter of TrainingGuard must be a sequence of "
                    f"Detector instances. Got {d!r}; pass e.g. Plateau(patience=100)."
                )
        self._detectors = tuple(found)
        # Which detectors to ask when a signal is fed, so a step only pays for its signals.
        self._by_signal: dict[str, tuple[int, ...]] = {}
        for i, d in enumerate(self._detectors):
            for signal in d.signals:
                self._by_signal[signal] = (*self._by_signal.get(signal, ()), i)
        self.on_failure = on_failure
        self.monitor = monitor
        self.mode = mode
        self.patience = patience
        self.min_delta = float(min_delta)
        self.window = window
        if resources is not None and not isinstance(resources, ResourceMonitor):
            raise ConfigError(
                "The 'resources' parameter of TrainingGuard must be a ResourceMonitor or None. "
                f"Got {resources!r}; pass e.g. ResourceMonitor(every=10)."
            )
        self.resources = resources
        self.reporter = GuardReporter(experiment, alerts, alert_on=alert_on)
        self.state = TrainingState(window=window)
        self.reset()

    def reset(self) -> None:
        """Forget the run so far (state, detectors, history, best value)."""
        self.state.reset()
        for d in self._detectors:
            d.reset()
        self._active: set[int] = set()
        self._history: list[Symptom] = []
        self._best_value: float | None = None
        self._best_step: int | None = None
        self._wait = 0
        self._improved = False
        self.reporter.failure = None
        if self.resources is not None:
            self.resources.restart()

    @property
    def failure(self) -> FailureReport | None:
        """The ledger failure a stop recorded (with similar past failures), if any."""
        return self.reporter.failure

    @property
    def params(self) -> dict[str, Any]:
        """The guard's configuration, JSON-friendly, for the ledger to store and diff."""
        return {
            "on_failure": self.on_failure,
            "monitor": self.monitor,
            "mode": self.mode,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "window": self.window,
            "detectors": [{"name": type(d).__name__, **d.params} for d in self._detectors],
        }

    @property
    def detectors(self) -> tuple[Detector, ...]:
        """The detectors the guard runs."""
        return self._detectors

    @property
    def history(self) -> tuple[Symptom, ...]:
        """Every symptom reported so far, in order."""
        return tuple(self._history)

    @property
    def best_value(self) -> float | None:
        """Best value of ``monitor`` so far (``None`` before one)."""
        return self._best_value

    @property
    def best_step(self) -> int | None:
        """Step of :attr:`best_value`."""
        return self._best_step

    def update(
        self,
        step: int,
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
    ) -> Verdict:
        """Feed one step's signals (any may be ``None``) and return the verdict.

        ``memory`` is host memory in bytes, ``gpu_memory`` the share of GPU memory in
        use and ``elapsed`` the seconds since training began; a ``resources`` monitor
        fills them in when they are not passed.
        """
        if self.resources is not None:
            sample = self.resources.poll()
            if sample is not None:
                memory = sample.memory if memory is None else memory
                gpu_memory = sample.gpu_memory if gpu_memory is None else gpu_memory
                elapsed = sample.elapsed if elapsed is None else elapsed
        state = self.state.update(
            step,
            loss=loss,
            val_loss=val_loss,
            metrics=metrics,
            grad_norms=grad_norms,
            lr=lr,
            activations=activations,
            throughput=throughput,
            memory=memory,
            gpu_memory=gpu_memory,
            elapsed=elapsed,
        )
        due: set[int] = set()
        for signal in state.updated:
            due.update(self._by_signal.get(signal, ()))
        new: list[Symptom] = []
        for i in sorted(due):
            symptom = self._detectors[i].check(state)
            if symptom is None:
                self._active.discard(i)
            elif i not in self._active:
                self._active.add(i)
                new.append(symptom)
        # Buffered steps (record) can make a later detector's symptom the earlier one:
        # report in the order they showed, detector order within a step.
        new.sort(key=lambda sym: sym.step)
        if logger.isEnabledFor(logging.WARNING):
            for symptom in new:
                logger.warning("%s", symptom.to_text())
        self._history.extend(new)

        reasons = []
        stopping: list[Symptom] = []
        if self.on_failure == "stop":
            stopping = [s for s in new if s.severity == "stop"]
            reasons = [f"{s.kind}: {s.likely_cause}" for s in stopping]
        if new:
            self.reporter.report(
                new,
                stopping[0] if stopping else None,
                "; ".join(reasons) or None,
                state,
                self._history,
                self.params,
            )
        self._improved = False
        early = self._early_stop(step, loss, val_loss, metrics)
        improved = self._improved
        if early is not None:
            reasons.append(early)
        return Verdict(
            step=int(step),
            stop=bool(reasons),
            symptoms=tuple(new),
            reason="; ".join(reasons) if reasons else None,
            early_stop=early is not None,
            improved=improved,
        )

    def record(
        self,
        steps: Sequence[int] | Any,
        *,
        loss: Sequence[float] | Any = None,
        lr: Sequence[float] | Any = None,
        throughput: Sequence[float] | Any = None,
    ) -> None:
        """Store many steps' loss, learning rate and throughput now; check them later.

        For a training loop that buffers its cheap per-step signals and calls
        :meth:`update` every few steps (as the PyTorch watch does): the detectors see
        every recorded value at that next update, which reports the step where a
        symptom first showed. Early stopping counts only updates, not recorded steps.
        """
        self.state.extend(steps, loss=loss, lr=lr, throughput=throughput)

    def _early_stop(
        self,
        step: int,
        loss: float | None,
        val_loss: float | None,
        metrics: Mapping[str, float] | None,
    ) -> str | None:
        if self.monitor == "loss":
            value = loss
        elif self.monitor == "val_loss":
            value = val_loss
        else:
            value = metrics.get(self.monitor) if metrics is not None else None
        if value is None or not math.isfinite(float(value)):
            return None
        x = float(value)
        best = self._best_value
        if best is None or (
            x < best - self.min_delta if self.mode == "min" else x > best + self.min_delta
        ):
            self._best_value, self._best_step, self._wait = x, int(step), 0
            self._improved = True
            return None
        self._wait += 1
        if self.patience is None or self._wait < self.patience:
            return None
        return (
            f"early stopping: {self.monitor} has not improved by more than {self.min_delta:g} "
            f"for {self._wait} evaluations; best {best:.6g} at step {self._best_step}"
        )
