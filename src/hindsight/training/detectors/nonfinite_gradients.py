"""Non-finite (NaN or infinite) gradient norms."""

from __future__ import annotations

import numpy as np

from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["NonFiniteGradients"]


class NonFiniteGradients(Detector):
    """Reports NaN or infinite gradient norms in any layer.

    Parameters
    ----------
    severity
        ``"stop"`` (default) or ``"warn"``.

    Examples
    --------
    >>> from hindsight.training import TrainingState
    >>> state, detector = TrainingState(), NonFiniteGradients()
    >>> detector.check(state.update(0, grad_norms=[0.1, 0.2])) is None
    True
    >>> detector.check(state.update(1, grad_norms=[float("inf"), 0.2])).evidence["layers"]
    [0]
    """

    kind = "nonfinite_gradients"
    signals = frozenset({"grad_norms"})
    default_severity = "stop"

    def __init__(self, *, severity: Severity = "stop") -> None:
        self._set_params(severity=severity)

    def check(self, state: TrainingState) -> Symptom | None:
        if "grad_norms" not in state.updated:
            return None
        last = state.grad_norms[-1]
        bad = ~np.isfinite(last)
        if not bad.any():
            return None
        return self._symptom(
            state,
            {"layers": np.flatnonzero(bad).tolist(), "grad_norms": last.copy()},
            "Gradients overflowed: a learning rate that is too high, exploding gradients, "
            "or NaN/inf in the inputs, labels or loss.",
            (
                "Clip gradients (e.g. clip_grad_norm_ at 1.0).",
                "Lower the learning rate (e.g. 10x) or add warm-up.",
                "Check inputs and labels for NaN/inf and normalise the inputs.",
                "With mixed precision, use loss scaling or bfloat16.",
            ),
        )
