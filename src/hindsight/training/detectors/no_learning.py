"""No learning: after a number of steps the loss has barely moved from where it started."""

from __future__ import annotations

import math

import numpy as np

from hindsight._validation import Interval
from hindsight.training._stats import median
from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["NoLearning"]


class NoLearning(Detector):
    """Reports a run whose loss improved by less than ``min_improvement`` after ``steps``.

    The improvement is relative, ``(initial - recent) / |initial|``, where ``initial`` is
    the first finite loss and ``recent`` the median of the last ``smoothing`` finite
    losses (robust to noise). Checked from step ``steps`` on; it clears if learning starts.

    Parameters
    ----------
    steps
        The step from which to check (>= 1, default 200).
    min_improvement
        Relative improvement below which nothing was learned (in (0, 1), default 0.01).
    smoothing
        Recent losses whose median stands for the current loss (>= 1, default 10).
    severity
        ``"stop"`` (default) or ``"warn"``.

    Examples
    --------
    >>> import numpy as np
    >>> from hindsight.training import TrainingState
    >>> rng = np.random.default_rng(2)
    >>> state, detector = TrainingState(), NoLearning(steps=50)
    >>> found = [detector.check(state.update(s, loss=2.3 + 0.01 * rng.normal()))
    ...          for s in range(51)]
    >>> found[-1].step, found[-2]
    (50, None)
    """

    kind = "no_learning"
    signals = frozenset({"loss"})
    default_severity = "stop"
    _constraints = {
        "steps": Interval(int, 1, None, "left"),
        "min_improvement": Interval(float, 0.0, 1.0, "neither"),
        "smoothing": Interval(int, 1, None, "left"),
    }

    steps: int
    min_improvement: float
    smoothing: int

    def __init__(
        self,
        steps: int = 200,
        min_improvement: float = 0.01,
        *,
        smoothing: int = 10,
        severity: Severity = "stop",
    ) -> None:
        self._set_params(
            steps=steps, min_improvement=min_improvement, smoothing=smoothing, severity=severity
        )

    def check(self, state: TrainingState) -> Symptom | None:
        if "loss" not in state.updated or state.step is None or state.step < self.steps:
            return None
        initial = state.initial_loss
        if not math.isfinite(initial) or initial == 0.0:
            return None
        recent = state.loss[-self.smoothing :]
        if not math.isfinite(float(recent.sum())):
            recent = recent[np.isfinite(recent)]
        if recent.size == 0:
            return None
        current = median(recent)
        improvement = (initial - current) / abs(initial)
        if improvement >= self.min_improvement:
            return None
        return self._symptom(
            state,
            {
                "initial_loss": initial,
                "recent_loss": current,
                "improvement": improvement,
                "min_improvement": self.min_improvement,
                "steps": self.steps,
                "window": state.loss[-self.smoothing :].copy(),
            },
            "The model is not learning: a learning rate far too low (or too high), "
            "frozen or disconnected parameters, a bug in the labels or loss, or dead units.",
            (
                "Try a learning-rate range test; raise the learning rate if it is tiny.",
                "Check that the optimiser holds the model's parameters and they require grad.",
                "Check that labels match inputs (e.g. overfit a single batch first).",
                "Normalise the inputs and check the initialisation.",
            ),
        )
