"""Memory growth: memory use climbs steadily (a leak) or nears its limit."""

from __future__ import annotations

import math

import numpy as np

from hindsight._validation import Interval
from hindsight.training._stats import ls_fit
from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["MemoryGrowth"]

#: Share of non-decreasing steps that makes growth "monotone" despite allocator noise.
_MONOTONE_SHARE = 0.9


class MemoryGrowth(Detector):
    """Reports memory that grows monotonically over a window, or that nears ``limit``.

    Growth counts when, over the last ``window`` readings, at least 90% of steps do not
    decrease, the least-squares slope is positive and the fitted rise over the window is
    more than ``min_growth`` of the first reading. With ``limit`` (bytes), a reading at
    or above ``near_limit`` x ``limit`` also counts.

    Parameters
    ----------
    window
        Readings to fit (>= 3, default 50).
    min_growth
        Relative fitted rise over the window that counts (> 0, default 0.1).
    limit
        Memory available in bytes (> 0), or ``None`` (default).
    near_limit
        Share of ``limit`` that counts as near it (in (0, 1], default 0.95).
    severity
        ``"warn"`` (default) or ``"stop"``.

    Examples
    --------
    >>> from hindsight.training import TrainingState
    >>> state, detector = TrainingState(), MemoryGrowth(window=10)
    >>> for s in range(10):
    ...     found = detector.check(state.update(s, memory=1e9 + 5e7 * s))
    >>> found.evidence["reason"], round(found.evidence["relative_growth"], 2)
    ('growth', 0.45)
    """

    kind = "memory_growth"
    signals = frozenset({"memory"})
    _constraints = {
        "window": Interval(int, 3, None, "left"),
        "min_growth": Interval(float, 0.0, None, "neither"),
        "limit": Interval(float, 0.0, None, "neither", allow_none=True),
        "near_limit": Interval(float, 0.0, 1.0, "right"),
    }

    window: int
    min_growth: float
    limit: float | None
    near_limit: float

    def __init__(
        self,
        window: int = 50,
        min_growth: float = 0.1,
        *,
        limit: float | None = None,
        near_limit: float = 0.95,
        severity: Severity = "warn",
    ) -> None:
        self._set_params(
            window=window,
            min_growth=min_growth,
            limit=limit,
            near_limit=near_limit,
            severity=severity,
        )

    def check(self, state: TrainingState) -> Symptom | None:
        if "memory" not in state.updated:
            return None
        values = state.memory[-self.window :]
        current = float(values[-1])
        if not math.isfinite(current):
            return None
        evidence: dict[str, object] = {
            "memory": current,
            "limit": self.limit,
            "near_limit": self.near_limit,
            "min_growth": self.min_growth,
        }
        if self.limit is not None and current >= self.near_limit * self.limit:
            evidence.update(reason="near_limit", share_of_limit=current / self.limit)
        elif values.size >= self.window and np.all(np.isfinite(values)) and values[0] > 0:
            if values[-1] <= values[0]:
                return None
            steps = state.memory_steps[-self.window :]
            nondecreasing = int(np.count_nonzero(np.diff(values) >= 0)) / (values.size - 1)
            slope, _ = ls_fit(steps, values)
            growth = slope * float(steps[-1] - steps[0]) / float(values[0])
            if nondecreasing < _MONOTONE_SHARE or slope <= 0 or growth <= self.min_growth:
                return None
            evidence.update(
                reason="growth",
                slope_bytes_per_step=slope,
                relative_growth=growth,
                nondecreasing_share=nondecreasing,
                window=values.copy(),
            )
            if self.limit is not None:
                evidence["projected_limit_step"] = float(steps[-1]) + (self.limit - current) / slope
        else:
            return None
        return self._symptom(
            state,
            evidence,
            "Something keeps references across steps: tensors accumulated with their "
            "graph (e.g. total_loss += loss), growing caches or lists of outputs.",
            (
                "Accumulate Python floats (loss.item()) or detached tensors, not graph tensors.",
                "Clear per-step lists and caches; free what evaluation keeps.",
                "Reduce the batch size or use gradient accumulation / checkpointing near the limit.",
            ),
        )
