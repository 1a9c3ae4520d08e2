"""Dying ReLU: a large share of a layer's units output zero for every input."""

from __future__ import annotations

from hindsight._validation import Interval
from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["DyingReLU"]


class DyingReLU(Detector):
    """Reports layers whose share of dead units exceeds ``threshold``.

    Feed ``activations={"dead": [...]}``: per layer, the share of units that were
    zero on the whole batch. The default follows AUTOTRAINER's dying-ReLU threshold
    ``gamma = 0.7`` (Zhang et al., "AUTOTRAINER: An Automatic DNN Training Problem
    Detection and Repair System", ICSE 2021), applied per layer.

    Parameters
    ----------
    threshold
        Share of dead units in a layer that counts (in (0, 1), default 0.7).
    severity
        ``"stop"`` (default) or ``"warn"``.

    Examples
    --------
    >>> from hindsight.training import TrainingState
    >>> state, detector = TrainingState(), DyingReLU()
    >>> detector.check(state.update(0, activations={"dead": [0.1, 0.2]})) is None
    True
    >>> detector.check(state.update(1, activations={"dead": [0.1, 0.9]})).evidence["layers"]
    [1]
    """

    kind = "dying_relu"
    default_severity = "stop"
    signals = frozenset({"dead"})
    _constraints = {"threshold": Interval(float, 0.0, 1.0, "neither")}

    threshold: float

    def __init__(self, threshold: float = 0.7, *, severity: Severity = "stop") -> None:
        self._set_params(threshold=threshold, severity=severity)

    def check(self, state: TrainingState) -> Symptom | None:
        if "dead" not in state.updated:
            return None
        return self._layers_over(
            state,
            "dead",
            state.dead_share,
            self.threshold,
            "ReLU units got pushed to always-negative inputs, usually by a learning rate "
            "that is too high or a poor initialisation or bias.",
            (
                "Lower the learning rate.",
                "Use Leaky ReLU, ELU or GELU instead of ReLU.",
                "Use He initialisation and add BatchNorm before the activation.",
            ),
        )
