"""What a detector reports: a named training symptom with its evidence and advice."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["SYMPTOM_KINDS", "Severity", "Symptom"]

Severity = Literal["stop", "warn"]

#: Every stable symptom id a built-in detector can report.
SYMPTOM_KINDS = (
    "nonfinite_loss",
    "nonfinite_gradients",
    "loss_explosion",
    "loss_spike",
    "no_learning",
    "plateau",
    "overfitting",
    "oscillation",
    "slow_convergence",
    "exploding_gradients",
    "vanishing_gradients",
    "dying_relu",
    "saturated_activations",
    "lr_out_of_range",
    "throughput_collapse",
    "memory_growth",
    "gpu_memory_near_limit",
    "time_budget",
)


def _plain(value: Any) -> Any:
    """Turn NumPy values into JSON-friendly Python ones (non-finite floats as strings)."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and len(value) > 8:
        head = ", ".join(_short(v) for v in value[-8:])
        return f"[... {head}] ({len(value)} values)"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


@dataclass(frozen=True)
class Symptom:
    """A training problem seen at one step, with the evidence and what to do about it.

    Parameters
    ----------
    kind
        Stable id, e.g. ``"loss_explosion"`` (see :data:`SYMPTOM_KINDS`).
    severity
        ``"stop"`` when the run is doomed, ``"warn"`` when it is only suspicious.
    step
        The step at which the symptom was seen.
    evidence
        Values behind the decision: the observed values, the window, the thresholds.
    likely_cause
        One sentence on the most likely cause.
    recommendations
        Concrete next steps, most promising first.

    Examples
    --------
    >>> s = Symptom("loss_explosion", "stop", 120, {"loss": 512.0, "best_loss": 0.5},
    ...             "The learning rate is too high.", ("Lower the learning rate 10x.",))
    >>> s.to_dict()["kind"]
    'loss_explosion'
    >>> print(s.to_text().splitlines()[0])
    TrainingSymptom: loss_explosion (severity=stop) at step 120
    """

    kind: str
    severity: Severity
    step: int
    evidence: Mapping[str, Any] = field(default_factory=dict)
    likely_cause: str = ""
    recommendations: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (NumPy values become lists and floats)."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "step": int(self.step),
            "evidence": _plain(self.evidence),
            "likely_cause": self.likely_cause,
            "recommendations": list(self.recommendations),
        }

    def to_text(self) -> str:
        """A log-like text naming the symptom, for the ledger to diagnose later."""
        lines = [f"TrainingSymptom: {self.kind} (severity={self.severity}) at step {self.step}"]
        for key, value in _plain(self.evidence).items():
            lines.append(f"  {key} = {_short(value)}")
        if self.likely_cause:
            lines.append(f"Likely cause: {self.likely_cause}")
        lines.extend(f"Recommendation: {r}" for r in self.recommendations)
        return "\n".join(lines)
