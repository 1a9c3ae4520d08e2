"""Overfitting: validation loss rises while training loss falls, or drifts far above it."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from hindsight._validation import Interval
from hindsight.training._stats import ls_fit
from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["Overfitting"]


def _slope_t(
    x: npt.NDArray[np.int64], y: npt.NDArray[np.float64], slope: float, intercept: float
) -> float:
    """t-statistic of a least-squares slope: slope / its standard error (inf on a perfect
    fit with a non-zero slope)."""
    xf = x.astype(np.float64)
    resid = y - (intercept + slope * xf)
    xc = xf - float(xf.sum()) / xf.size
    sxx = float(xc @ xc)
    dof = y.size - 2
    if sxx == 0.0 or dof < 1:
        return 0.0
    se = math.sqrt(float(resid @ resid) / dof / sxx)
    if se == 0.0:
        return 0.0 if slope == 0.0 else math.copysign(math.inf, slope)
    return slope / se


class Overfitting(Detector):
    """Reports a validation loss that rises while the training loss falls.

    Over the last ``window`` validation losses, the least-squares slopes of validation
    and training loss (over the same steps) are compared: validation rising by more than
    ``min_rise`` (relative, over the window's span) while training falls is overfitting.
    The rise must also be significant: the t-statistic of the validation slope (slope over
    its standard error from the fit's residuals) must exceed ``min_t``, so a flat but
    noisy validation curve whose fitted line happens to tilt up does not count. With
    ``max_ratio`` set, a validation loss above ``max_ratio`` x the recent training loss
    also counts.

    Parameters
    ----------
    window
        Validation losses to fit (>= 3, default 10).
    min_rise
        Relative rise of validation loss over the window that counts (> 0, default 0.02).
    max_ratio
        Validation / training loss ratio that counts (> 1), or ``None`` (default) to skip.
    min_t
        t-statistic of the validation slope that counts as a real rise (> 0, default 3,
        about the one-sided 1% level of a 10-point fit).
    severity
        ``"stop"`` (default) or ``"warn"``.

    Examples
    --------
    >>> from hindsight.training import TrainingState
    >>> state, detector = TrainingState(), Overfitting(window=5)
    >>> for s in range(10):
    ...     found = detector.check(state.update(s, loss=1 - 0.05 * s, val_loss=1 + 0.02 * s))
    >>> found.kind, round(found.evidence["val_slope"], 3)
    ('overfitting', 0.02)
    """

    kind = "overfitting"
    default_severity = "stop"
    signals = frozenset({"val_loss"})
    _constraints = {
        "window": Interval(int, 3, None, "left"),
        "min_rise": Interval(float, 0.0, None, "neither"),
        "max_ratio": Interval(float, 1.0, None, "neither", allow_none=True),
        "min_t": Interval(float, 0.0, None, "neither"),
    }

    window: int
    min_rise: float
    max_ratio: float | None
    min_t: float

    def __init__(
        self,
        window: int = 10,
        min_rise: float = 0.02,
        *,
        max_ratio: float | None = None,
        min_t: float = 3.0,
        severity: Severity = "stop",
    ) -> None:
        self._set_params(
            window=window, min_rise=min_rise, max_ratio=max_ratio, min_t=min_t, severity=severity
        )

    def check(self, state: TrainingState) -> Symptom | None:
        if "val_loss" not in state.updated or len(state.loss) == 0:
            return None
        val = state.val_loss[-self.window :]
        val_steps = state.val_loss_steps[-self.window :]
        train_all, train_steps_all = state.loss, state.loss_steps
        keep = (train_steps_all >= val_steps[0]) & np.isfinite(train_all)
        train, train_steps = train_all[keep], train_steps_all[keep]
        current_val = float(val[-1])
        if not math.isfinite(current_val) or train.size == 0:
            return None
        recent_train = float(train[-1])
        evidence: dict[str, object] = {
            "val_loss": current_val,
            "train_loss": recent_train,
            "window": self.window,
            "min_rise": self.min_rise,
            "max_ratio": self.max_ratio,
        }
        fired = False
        if self.max_ratio is not None and recent_train > 0:
            ratio = current_val / recent_train
            evidence["ratio"] = ratio
            fired = ratio > self.max_ratio
        if val.size >= self.window and np.all(np.isfinite(val)) and train.size >= 2:
            val_slope, val_intercept = ls_fit(val_steps, val)
            train_slope, _ = ls_fit(train_steps, train)
            span = float(val_steps[-1] - val_steps[0])
            level = abs(float(val.sum())) / val.size
            rise = val_slope * span / level if level else 0.0
            t = _slope_t(val_steps, val, val_slope, val_intercept)
            evidence.update(
                val_slope=val_slope, train_slope=train_slope, relative_rise=rise, slope_t=t
            )
            fired = fired or (
                train_slope < 0 < val_slope and rise > self.min_rise and t > self.min_t
            )
        if not fired:
            return None
        evidence["val_window"] = val.copy()
        return self._symptom(
            state,
            evidence,
            "The model memorises the training set: too much capacity or too little "
            "regularisation or data.",
            (
                "Stop early at the best validation step and keep that checkpoint.",
                "Add regularisation: weight decay, dropout, data augmentation.",
                "Get more training data or reduce model capacity.",
                "Check for leakage between training and validation splits.",
            ),
        )
