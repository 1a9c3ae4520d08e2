"""Vanishing gradients, by AUTOTRAINER's first/last-layer gradient-norm ratio.

Zhang et al., "AUTOTRAINER: An Automatic DNN Training Problem Detection and Repair
System", ICSE 2021. Gradients vanish when the first layer's gradient norm is below
``beta_1`` (1e-3) times the last layer's and itself below ``beta_2`` (1e-4).
"""

from __future__ import annotations

import math

from hindsight._validation import Interval
from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["VanishingGradients"]


class VanishingGradients(Detector):
    """Reports a tiny first/last-layer gradient-norm ratio with a tiny first-layer norm.

    Parameters
    ----------
    min_ratio
        First/last ratio below which gradients vanish (in (0, 1), default 1e-3,
        AUTOTRAINER's ``beta_1``).
    max_first_norm
        First-layer gradient norm below which it is vanishing (> 0, default 1e-4,
        AUTOTRAINER's ``beta_2``).
    severity
        ``"stop"`` (default) or ``"warn"``.

    Examples
    --------
    >>> from hindsight.training import TrainingState
    >>> state, detector = TrainingState(), VanishingGradients()
    >>> detector.check(state.update(0, grad_norms=[0.2, 0.3, 0.4])) is None
    True
    >>> detector.check(state.update(1, grad_norms=[1e-6, 1e-3, 0.5])).evidence["ratio"]
    2e-06
    """

    kind = "vanishing_gradients"
    default_severity = "stop"
    signals = frozenset({"grad_norms"})
    _constraints = {
        "min_ratio": Interval(float, 0.0, 1.0, "neither"),
        "max_first_norm": Interval(float, 0.0, None, "neither"),
    }

    min_ratio: float
    max_first_norm: float

    def __init__(
        self, min_ratio: float = 1e-3, max_first_norm: float = 1e-4, *, severity: Severity = "stop"
    ) -> None:
        self._set_params(min_ratio=min_ratio, max_first_norm=max_first_norm, severity=severity)

    def check(self, state: TrainingState) -> Symptom | None:
        if "grad_norms" not in state.updated:
            return None
        last = state.grad_norms[-1]
        if last.size < 2:
            return None
        first, final = float(last[0]), float(last[-1])
        if not (math.isfinite(first) and math.isfinite(final)):
            return None
        if final <= 0:
            return None
        ratio = first / final
        if ratio >= self.min_ratio or first >= self.max_first_norm:
            return None
        return self._symptom(
            state,
            {
                "ratio": ratio,
                "first_layer_norm": first,
                "last_layer_norm": final,
                "min_ratio": self.min_ratio,
                "max_first_norm": self.max_first_norm,
                "grad_norms": last.copy(),
            },
            "Gradients shrink on their way back to the first layers: saturating "
            "activations (sigmoid/tanh), poor initialisation or a very deep plain network.",
            (
                "Use ReLU-family activations instead of sigmoid/tanh in hidden layers.",
                "Use a scaled initialisation (He for ReLU, Xavier for tanh).",
                "Add BatchNorm / LayerNorm and residual connections.",
                "Use an adaptive optimiser (Adam) or a larger learning rate for early layers.",
            ),
        )
