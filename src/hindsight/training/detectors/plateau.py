"""Plateau: the training loss has not improved by a relative margin for a while."""

from __future__ import annotations

import math

from hindsight._validation import Interval
from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["Plateau"]


class Plateau(Detector):
    """Reports ``patience`` steps without a relative improvement of at least ``min_delta``.

    A loss improves when it is below ``best - min_delta * |best|``; the detector clears
    as soon as one does.

    Parameters
    ----------
    patience
        Steps without improvement before reporting (>= 1, default 200).
    min_delta
        Relative improvement that counts (in [0, 1), default 1e-3).
    severity
        ``"warn"`` (default) or ``"stop"``.

    Examples
    --------
    >>> from hindsight.training import TrainingState
    >>> state, detector = TrainingState(), Plateau(patience=5)
    >>> losses = [1.0, 0.8, 0.7] + [0.7] * 6
    >>> [s for s, x in enumerate(losses) if detector.check(state.update(s, loss=x))]
    [7, 8]
    """

    kind = "plateau"
    signals = frozenset({"loss"})
    _constraints = {
        "patience": Interval(int, 1, None, "left"),
        "min_delta": Interval(float, 0.0, 1.0, "left"),
    }

    patience: int
    min_delta: float

    def __init__(
        self, patience: int = 200, min_delta: float = 1e-3, *, severity: Severity = "warn"
    ) -> None:
        self._set_params(patience=patience, min_delta=min_delta, severity=severity)

    def reset(self) -> None:
        self.best_ = math.inf
        self.best_step_: int | None = None

    def check(self, state: TrainingState) -> Symptom | None:
        if "loss" not in state.updated or state.step is None:
            return None
        loss = float(state.loss[-1])
        if not math.isfinite(loss):
            return None
        if self.best_step_ is None or loss < self.best_ - self.min_delta * abs(self.best_):
            self.best_ = loss
            self.best_step_ = state.step
            return None
        waited = state.step - self.best_step_
        if waited < self.patience:
            return None
        return self._symptom(
            state,
            {
                "loss": loss,
                "best_loss": self.best_,
                "best_step": self.best_step_,
                "steps_without_improvement": waited,
                "patience": self.patience,
                "min_delta": self.min_delta,
            },
            "The optimiser is stuck: the learning rate is too low or too high to make "
            "progress, or the model has reached its capacity on this data.",
            (
                "Reduce the learning rate on plateau (e.g. x0.1) or use a schedule.",
                "If the loss is still high, raise capacity or check the features.",
                "Stop early if the validation metric has also stopped improving.",
            ),
        )
