"""Oscillation: the loss goes up and down step after step instead of settling."""

from __future__ import annotations

import math

import numpy as np

from hindsight._validation import Interval
from hindsight.training._stats import median
from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["Oscillation"]


class Oscillation(Detector):
    """Reports a loss whose first differences change sign in more than ``share`` of steps.

    Independent noise changes sign about 2/3 of the time, so the default ``share`` (0.9)
    only catches a see-saw; ``min_amplitude`` (median ``|diff|`` relative to the median
    loss) ignores tiny wiggles. Checked on full windows.

    Parameters
    ----------
    window
        Losses to look at (>= 4, default 50).
    share
        Share of sign changes of first differences that counts (in (0, 1], default 0.9).
    min_amplitude
        Relative size of the swings that counts (>= 0, default 0.05).
    severity
        ``"stop"`` (default) or ``"warn"``.

    Examples
    --------
    >>> from hindsight.training import TrainingState
    >>> state, detector = TrainingState(), Oscillation(window=10)
    >>> found = [detector.check(state.update(s, loss=1.0 + 0.5 * (-1) ** s)) for s in range(10)]
    >>> found[-1].evidence["sign_change_share"], found[-2]
    (1.0, None)
    """

    kind = "oscillation"
    default_severity = "stop"
    signals = frozenset({"loss"})
    _constraints = {
        "window": Interval(int, 4, None, "left"),
        "share": Interval(float, 0.0, 1.0, "right"),
        "min_amplitude": Interval(float, 0.0, None, "left"),
    }

    window: int
    share: float
    min_amplitude: float

    def __init__(
        self,
        window: int = 50,
        share: float = 0.9,
        *,
        min_amplitude: float = 0.05,
        severity: Severity = "stop",
    ) -> None:
        self._set_params(window=window, share=share, min_amplitude=min_amplitude, severity=severity)

    def check(self, state: TrainingState) -> Symptom | None:
        if "loss" not in state.updated or len(state.loss) < self.window:
            return None
        losses = state.loss[-self.window :]
        if not math.isfinite(float(losses.sum())):
            return None
        diffs = losses[1:] - losses[:-1]
        # A sign change between consecutive differences is a negative product; flat
        # steps (a zero difference) count neither way.
        products = diffs[1:] * diffs[:-1]
        moving = int(np.count_nonzero(products))
        if moving == 0:
            return None
        changes = int(np.count_nonzero(products < 0)) / moving
        if changes < self.share:
            return None
        level = abs(median(losses))
        amplitude = median(np.abs(diffs)) / level if level else math.inf
        if amplitude < self.min_amplitude:
            return None
        return self._symptom(
            state,
            {
                "sign_change_share": changes,
                "share": self.share,
                "amplitude": amplitude,
                "min_amplitude": self.min_amplitude,
                "window": losses.copy(),
            },
            "The learning rate is too high: each step overshoots the minimum.",
            (
                "Lower the learning rate (e.g. 3-10x) or use a decaying schedule.",
                "Increase the batch size or use momentum / Adam to damp the swings.",
                "Normalise the inputs so the loss surface is better conditioned.",
            ),
        )
