"""Non-finite (NaN or infinite) training loss."""

from __future__ import annotations

import math

import numpy as np

from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["NonFiniteLoss"]


class NonFiniteLoss(Detector):
    """Reports a NaN or infinite training loss, the surest sign of a doomed run.

    Parameters
    ----------
    severity
        ``"stop"`` (default) or ``"warn"``.

    Examples
    --------
    >>> from hindsight.training import TrainingState
    >>> state, detector = TrainingState(), NonFiniteLoss()
    >>> detector.check(state.update(0, loss=0.7)) is None
    True
    >>> detector.check(state.update(1, loss=float("nan"))).evidence["loss"]
    nan
    """

    kind = "nonfinite_loss"
    signals = frozenset({"loss"})
    default_severity = "stop"

    def __init__(self, *, severity: Severity = "stop") -> None:
        self._set_params(severity=severity)

    def check(self, state: TrainingState) -> Symptom | None:
        if "loss" not in state.updated:
            return None
        window = state.loss
        k = max(1, min(state.fresh("loss"), window.size))
        fresh = window[-k:]
        bad = ~np.isfinite(fresh)
        if not bad.any():
            return None
        first = int(np.argmax(bad)) + window.size - k  # the first non-finite fresh value
        loss = float(window[first])
        finite = window[:first][np.isfinite(window[:first])]
        return self._symptom(
            state,
            {
                "loss": loss,
                "last_finite_loss": float(finite[-1]) if finite.size else math.nan,
                "best_loss": state.best_loss,
                "window": window[max(0, first - 19) : first + 1].copy(),
            },
            "Numerical overflow: a learning rate that is too high, exploding gradients, "
            "log/division of zero in the loss, or NaN/inf in the inputs or labels.",
            (
                "Lower the learning rate (e.g. 10x) or add warm-up.",
                "Clip gradients (e.g. clip_grad_norm_ at 1.0).",
                "Check inputs and labels for NaN/inf and normalise the inputs.",
                "Use a numerically stable loss (log-softmax / logits-based loss) or add an epsilon.",
                "With mixed precision, use loss scaling or bfloat16.",
            ),
            step=int(state.loss_steps[first]),
        )
