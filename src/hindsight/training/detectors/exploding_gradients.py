"""Exploding gradients, by AUTOTRAINER's first/last-layer gradient-norm ratio.

Zhang et al., "AUTOTRAINER: An Automatic DNN Training Problem Detection and Repair
System", ICSE 2021. Gradients explode when the gradient norm of the first layer exceeds
that of the last layer by more than ``beta_3`` (70 in the paper's reference settings).
Feed ``grad_norms`` ordered from the first (input-side) layer to the last; AUTOTRAINER
uses the norms of the layers' weight (kernel) gradients.
"""

from __future__ import annotations

import math

from hindsight._validation import Interval
from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["ExplodingGradients"]


class ExplodingGradients(Detector):
    """Reports a first/last-layer gradient-norm ratio above ``max_ratio`` (AUTOTRAINER).

    Parameters
    ----------
    max_ratio
        First/last gradient-norm ratio above which gradients explode (> 1, default 70,
        AUTOTRAINER's threshold).
    severity
        ``"stop"`` (default) or ``"warn"``.

    Examples
    --------
    >>> from hindsight.training import TrainingState
    >>> state, detector = TrainingState(), ExplodingGradients()
    >>> detector.check(state.update(0, grad_norms=[0.5, 0.4, 0.3])) is None
    True
    >>> detector.check(state.update(1, grad_norms=[90.0, 8.0, 1.0])).evidence["ratio"]
    90.0
    """

    kind = "exploding_gradients"
    signals = frozenset({"grad_norms"})
    default_severity = "stop"
    _constraints = {"max_ratio": Interval(float, 1.0, None, "neither")}

    max_ratio: float

    def __init__(self, max_ratio: float = 70.0, *, severity: Severity = "stop") -> None:
        self._set_params(max_ratio=max_ratio, severity=severity)

    def check(self, state: TrainingState) -> Symptom | None:
        if "grad_norms" not in state.updated:
            return None
        last = state.grad_norms[-1]
        if last.size < 2:
            return None
        first, final = float(last[0]), float(last[-1])
        if not (math.isfinite(first) and math.isfinite(final)):
            return None
        ratio = first / final if final > 0 else (math.inf if first > 0 else 1.0)
        if ratio <= self.max_ratio:
            return None
        return self._symptom(
            state,
            {
                "ratio": ratio,
                "first_layer_norm": first,
                "last_layer_norm": final,
                "max_ratio": self.max_ratio,
                "grad_norms": last.copy(),
            },
            "Gradients grow as they flow back to the first layers: a learning rate too "
            "high, poor initialisation, or a deep network without normalisation.",
            (
                "Clip gradients (e.g. clip_grad_norm_ at 1.0).",
                "Lower the learning rate.",
                "Use a scaled initialisation (He / Xavier) and add BatchNorm / LayerNorm.",
                "Add residual connections in deep networks.",
            ),
        )
