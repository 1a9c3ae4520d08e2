"""Loss explosion: the loss jumps far above the best loss seen so far."""

from __future__ import annotations

import math

import numpy as np

from hindsight._validation import Interval
from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["LossExplosion"]


class LossExplosion(Detector):
    """Reports a finite loss above ``factor`` x the best loss seen before it.

    Only positive best losses are compared (a ratio to a loss <= 0 means nothing), and
    only after ``min_steps`` losses, so a noisy first step does not count. Once the loss
    has fallen more than ``factor``-fold, it must also climb back above the initial (first
    finite) loss: a ratio to a near-zero best minibatch loss is ill-conditioned, and
    minibatch noise alone moves a converged loss tenfold. The threshold is therefore
    ``max(factor * best, initial)``.

    Parameters
    ----------
    factor
        How many times the best loss counts as an explosion (> 1, default 10).
    min_steps
        Losses to see before checking (>= 1, default 5).
    severity
        ``"stop"`` (default) or ``"warn"``.

    Examples
    --------
    >>> from hindsight.training import TrainingState
    >>> state, detector = TrainingState(), LossExplosion(factor=10)
    >>> for step, loss in enumerate([2.0, 1.5, 1.0, 0.8, 0.7, 0.6]):
    ...     assert detector.check(state.update(step, loss=loss)) is None
    >>> round(detector.check(state.update(6, loss=50.0)).evidence["ratio"], 6)
    83.333333
    """

    kind = "loss_explosion"
    signals = frozenset({"loss"})
    default_severity = "stop"
    _constraints = {
        "factor": Interval(float, 1.0, None, "neither"),
        "min_steps": Interval(int, 1, None, "left"),
    }

    factor: float
    min_steps: int

    def __init__(
        self, factor: float = 10.0, *, min_steps: int = 5, severity: Severity = "stop"
    ) -> None:
        self._set_params(factor=factor, min_steps=min_steps, severity=severity)

    def check(self, state: TrainingState) -> Symptom | None:
        losses = state.loss
        if "loss" not in state.updated or losses.size <= self.min_steps:
            return None
        # Every fresh loss is judged against the best before it (several arrive at once
        # when the caller buffers steps); the first that climbs too high is reported.
        k = max(1, min(state.fresh("loss"), losses.size - self.min_steps))
        initial = state.initial_loss
        if k == 1:  # one loss per update: plain floats, the common case
            i, loss, best = 0, float(losses[-1]), state.best_loss_before_fresh
            if not math.isfinite(loss) or not math.isfinite(best) or best <= 0.0:
                return None
            threshold_i = self.factor * best
            if math.isfinite(initial):
                threshold_i = max(threshold_i, initial)
            if loss <= threshold_i:
                return None
        else:
            fresh = losses[-k:]
            finite = np.isfinite(fresh)
            running = np.minimum.accumulate(np.where(finite, fresh, np.inf))
            before = np.minimum(
                state.best_loss_before_fresh, np.concatenate(([np.inf], running[:-1]))
            )
            threshold = self.factor * before
            if math.isfinite(initial):
                threshold = np.maximum(threshold, initial)
            with np.errstate(invalid="ignore"):
                hit = finite & np.isfinite(before) & (before > 0.0) & (fresh > threshold)
            if not hit.any():
                return None
            i = int(np.argmax(hit))
            loss, best, threshold_i = float(fresh[i]), float(before[i]), float(threshold[i])
        ratio = loss / best
        at = losses.size - k + i
        return self._symptom(
            state,
            {
                "loss": loss,
                "best_loss": best,
                "best_step": state.best_loss_step,
                "ratio": ratio,
                "factor": self.factor,
                "initial_loss": initial,
                "threshold": threshold_i,
                "window": losses[max(0, at - 19) : at + 1].copy(),
            },
            "The optimiser overshot: the learning rate is too high for this model and "
            "data, or the gradients exploded.",
            (
                "Lower the learning rate (e.g. 10x) or add warm-up.",
                "Clip gradients (e.g. clip_grad_norm_ at 1.0).",
                "Normalise the inputs and check for outliers in the batch.",
                "Add normalisation layers (BatchNorm / LayerNorm).",
            ),
            step=int(state.loss_steps[at]),
        )
