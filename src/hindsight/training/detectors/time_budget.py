"""Time budget: the run has used its time, or will not finish within it at its pace."""

from __future__ import annotations

import math

from hindsight._validation import Interval
from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["TimeBudget"]


class TimeBudget(Detector):
    """Reports a run that exceeded ``budget_s`` seconds, or is on pace to exceed it.

    The signal is ``elapsed``, the seconds since training began (fed by
    :class:`~hindsight.training.ResourceMonitor` or by hand). The run is over budget when
    ``elapsed >= budget_s``. With ``total_steps`` (the steps the run plans), after
    ``min_steps`` readings the finish is projected from the mean time per step so far:
    ``elapsed / step * total_steps``; a projection above ``(1 + slack) * budget_s`` is
    reported too, so a run that cannot finish stops now instead of at the deadline.

    Parameters
    ----------
    budget_s
        The time the run may take, in seconds (> 0).
    total_steps
        Planned steps (>= 1), or ``None`` (default) to report only an exceeded budget.
    slack
        Relative overrun of the projection tolerated (>= 0, default 0.1).
    min_steps
        Readings before projecting (>= 1, default 20): early steps carry start-up costs.
    severity
        ``"stop"`` (default) or ``"warn"``.

    Examples
    --------
    >>> from hindsight.training import TrainingState
    >>> state, detector = TrainingState(), TimeBudget(100.0, total_steps=1000, min_steps=5)
    >>> for s in range(1, 6):
    ...     found = detector.check(state.update(s, elapsed=0.5 * s))
    >>> found.evidence["reason"], found.evidence["projected_s"]
    ('projected', 500.0)
    """

    kind = "time_budget"
    signals = frozenset({"elapsed"})
    default_severity = "stop"
    _constraints = {
        "budget_s": Interval(float, 0.0, None, "neither"),
        "total_steps": Interval(int, 1, None, "left", allow_none=True),
        "slack": Interval(float, 0.0, None, "left"),
        "min_steps": Interval(int, 1, None, "left"),
    }

    budget_s: float
    total_steps: int | None
    slack: float
    min_steps: int

    def __init__(
        self,
        budget_s: float,
        *,
        total_steps: int | None = None,
        slack: float = 0.1,
        min_steps: int = 20,
        severity: Severity = "stop",
    ) -> None:
        self._set_params(
            budget_s=budget_s,
            total_steps=total_steps,
            slack=slack,
            min_steps=min_steps,
            severity=severity,
        )

    def check(self, state: TrainingState) -> Symptom | None:
        if "elapsed" not in state.updated:
            return None
        elapsed = float(state.elapsed[-1])
        step = state.step if state.step is not None else 0
        if not math.isfinite(elapsed):
            return None
        evidence: dict[str, object] = {
            "elapsed_s": elapsed,
            "budget_s": self.budget_s,
            "total_steps": self.total_steps,
        }
        if elapsed >= self.budget_s:
            evidence["reason"] = "exceeded"
        elif (
            self.total_steps is not None
            and len(state.elapsed) >= self.min_steps
            and step > 0
            and step < self.total_steps
        ):
            projected = elapsed / step * self.total_steps
            if projected <= (1.0 + self.slack) * self.budget_s:
                return None
            evidence.update(reason="projected", projected_s=projected, slack=self.slack)
        else:
            return None
        return self._symptom(
            state,
            evidence,
            "Each step takes longer than the budget allows for the planned steps: the run "
            "will be cut off before it finishes.",
            (
                "Checkpoint now and resume with a longer time limit, or plan fewer steps.",
                "Speed up the step: mixed precision, a larger batch, more DataLoader workers.",
                "Profile the step to find where the time goes (data loading, logging, eval).",
            ),
        )
