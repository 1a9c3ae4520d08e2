"""Slow convergence: at the current pace the loss will not reach its target in budget."""

from __future__ import annotations

import math

import numpy as np

from hindsight._validation import Interval
from hindsight.training._stats import ls_fit, median
from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["SlowConvergence"]


class SlowConvergence(Detector):
    """Reports a run projected to reach ``target`` loss only after ``budget`` steps.

    A log-linear least-squares fit ``log(loss) = a + b * step`` over the last ``window``
    positive losses projects the step where the loss hits ``target``; beyond ``budget``
    (or never, when ``b >= 0``) is too slow. Opt-in: it needs a target and a budget.

    Parameters
    ----------
    target
        The loss the run should reach (> 0).
    budget
        The step by which it should reach it (>= 1).
    window
        Losses to fit (>= 3, default 50).
    severity
        ``"stop"`` (default) or ``"warn"``.

    Examples
    --------
    >>> import numpy as np
    >>> from hindsight.training import TrainingState
    >>> state, detector = TrainingState(), SlowConvergence(target=0.1, budget=1000, window=20)
    >>> for s in range(20):
    ...     found = detector.check(state.update(s, loss=float(np.exp(-0.001 * s))))
    >>> round(found.evidence["projected_step"])
    2303
    """

    kind = "slow_convergence"
    default_severity = "stop"
    signals = frozenset({"loss"})
    _constraints = {
        "target": Interval(float, 0.0, None, "neither"),
        "budget": Interval(int, 1, None, "left"),
        "window": Interval(int, 3, None, "left"),
    }

    target: float
    budget: int
    window: int

    def __init__(
        self, target: float, budget: int, *, window: int = 50, severity: Severity = "stop"
    ) -> None:
        self._set_params(target=target, budget=budget, window=window, severity=severity)

    def check(self, state: TrainingState) -> Symptom | None:
        if "loss" not in state.updated or len(state.loss) < self.window:
            return None
        losses = state.loss[-self.window :]
        steps = state.loss_steps[-self.window :]
        ok = np.isfinite(losses) & (losses > 0)
        if ok.sum() < 3 or median(losses[ok]) <= self.target:
            return None
        slope, intercept = ls_fit(steps[ok], np.log(losses[ok]))
        projected = (math.log(self.target) - intercept) / slope if slope < 0 else math.inf
        if projected <= self.budget:
            return None
        return self._symptom(
            state,
            {
                "projected_step": projected,
                "budget": self.budget,
                "target": self.target,
                "log_slope": slope,
                "log_intercept": intercept,
                "window": losses.copy(),
            },
            "Progress is too slow for the budget: the learning rate is too low, the "
            "optimiser ill-suited, or the model too small for the target.",
            (
                "Raise the learning rate or use a schedule with warm-up (e.g. one-cycle).",
                "Switch to an adaptive optimiser (Adam/AdamW) or add momentum.",
                "Normalise the inputs and add normalisation layers.",
                "Revisit the target or the budget if the model is at capacity.",
            ),
        )
