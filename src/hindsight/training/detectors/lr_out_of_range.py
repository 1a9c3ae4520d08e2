"""Learning rate out of range: below ``low`` or above ``high``."""

from __future__ import annotations

import math

from hindsight._validation import Interval
from hindsight.errors import ConfigError
from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["LearningRateOutOfRange"]


class LearningRateOutOfRange(Detector):
    """Reports a learning rate outside ``[low, high]`` (default ``[1e-6, 1]``).

    Parameters
    ----------
    low
        Smallest sensible learning rate (> 0, default 1e-6).
    high
        Largest sensible learning rate (> low, default 1.0).
    severity
        ``"warn"`` (default) or ``"stop"``.

    Examples
    --------
    >>> from hindsight.training import TrainingState
    >>> state, detector = TrainingState(), LearningRateOutOfRange()
    >>> detector.check(state.update(0, lr=3e-4)) is None
    True
    >>> detector.check(state.update(1, lr=5.0)).evidence["direction"]
    'high'
    """

    kind = "lr_out_of_range"
    signals = frozenset({"lr"})
    _constraints = {
        "low": Interval(float, 0.0, None, "neither"),
        "high": Interval(float, 0.0, None, "neither"),
    }

    low: float
    high: float

    def __init__(
        self, low: float = 1e-6, high: float = 1.0, *, severity: Severity = "warn"
    ) -> None:
        if isinstance(low, (int, float)) and isinstance(high, (int, float)) and high <= low:
            raise ConfigError(
                f"The 'high' parameter of LearningRateOutOfRange must be a float > low={low!r}. "
                f"Got {high!r}."
            )
        self._set_params(low=low, high=high, severity=severity)

    def check(self, state: TrainingState) -> Symptom | None:
        if "lr" not in state.updated:
            return None
        lr = float(state.lr[-1])
        if math.isfinite(lr) and self.low <= lr <= self.high:
            return None
        high = not lr <= self.low
        return self._symptom(
            state,
            {"lr": lr, "low": self.low, "high": self.high, "direction": "high" if high else "low"},
            "The learning rate is far too high, so updates overshoot and diverge."
            if high
            else "The learning rate is far too low, so the weights barely move.",
            (
                "Lower the learning rate into [1e-5, 1e-1] (e.g. 1e-3 for Adam).",
                "Check the schedule: warm-up and decay factors, units (per-sample vs per-batch).",
            )
            if high
            else (
                "Raise the learning rate into [1e-5, 1e-1] (e.g. 1e-3 for Adam).",
                "Check the schedule: a decay that reached ~0 or a warm-up that never ends.",
            ),
        )
