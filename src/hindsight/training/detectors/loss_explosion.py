"""Loss explosion: the loss jumps far above the best loss seen so far."""

from __future__ import annotations

import math

from hindsight.training._validation import Interval
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
        if "loss" not in state.updated or len(state.loss) <= self.min_steps:
            return None
        loss = float(state.loss[-1])
        best = state.previous_best_loss
        if not math.isfinite(loss) or not math.isfinite(best) or best <= 0.0:
            return None
        ratio = loss / best
        initial = state.initial_loss
        threshold = self.factor * best
        if math.isfinite(initial):
            threshold = max(threshold, initial)
        if loss <= threshold:
            return None
        return self._symptom(
            state,
            {
                "loss": loss,
                "best_loss": best,
                "best_step": state.best_loss_step,
                "ratio": ratio,
                "factor": self.factor,
                "initial_loss": initial,
                "threshold": threshold,
                "window": state.loss[-20:].copy(),
            },
            "The optimiser overshot: the learning rate is too high for this model and "
            "data, or the gradients exploded.",
            (
                "Lower the learning rate (e.g. 10x) or add warm-up.",
                "Clip gradients (e.g. clip_grad_norm_ at 1.0).",
                "Normalise the inputs and check for outliers in the batch.",
                "Add normalisation layers (BatchNorm / LayerNorm).",
            ),
        )
