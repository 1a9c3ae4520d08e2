"""Saturated activations: many units sit on the flat ends of sigmoid / tanh."""

from __future__ import annotations

from hindsight._validation import Interval
from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["SaturatedActivations"]


class SaturatedActivations(Detector):
    """Reports layers whose share of saturated units exceeds ``threshold``.

    Feed ``activations={"saturated": [...]}``: per hidden layer, the share of units in
    the flat region of their activation (e.g. ``|tanh| > 0.98``). An output sigmoid at 0
    or 1 is a confident prediction, not saturation: the PyTorch watch leaves it out.

    Parameters
    ----------
    threshold
        Share of saturated units in a layer that counts (in (0, 1), default 0.5).
    severity
        ``"warn"`` (default) or ``"stop"``. Warn by default: a layer that
        saturates is often a consequence (of a too-high learning rate) rather than the
        cause, and some healthy models saturate by design (BERT's pooler tanh).

    Examples
    --------
    >>> from hindsight.training import TrainingState
    >>> state, detector = TrainingState(), SaturatedActivations()
    >>> detector.check(state.update(0, activations={"saturated": [0.8, 0.1]})).evidence["layers"]
    [0]
    """

    kind = "saturated_activations"
    signals = frozenset({"saturated"})
    _constraints = {"threshold": Interval(float, 0.0, 1.0, "neither")}

    threshold: float

    def __init__(self, threshold: float = 0.5, *, severity: Severity = "warn") -> None:
        self._set_params(threshold=threshold, severity=severity)

    def check(self, state: TrainingState) -> Symptom | None:
        if "saturated" not in state.updated:
            return None
        return self._layers_over(
            state,
            "saturated",
            state.saturated_share,
            self.threshold,
            "Pre-activations are too large: unnormalised inputs, a too-large "
            "initialisation, or a learning rate that is too high.",
            (
                "Normalise the inputs (zero mean, unit variance).",
                "Use Xavier initialisation for sigmoid/tanh, or switch to ReLU-family units.",
                "Add BatchNorm / LayerNorm before the activation.",
                "Lower the learning rate.",
            ),
        )
