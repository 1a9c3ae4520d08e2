"""Throughput collapse: samples per second fall far below their recent median."""

from __future__ import annotations

import math

import numpy as np

from hindsight._validation import Interval
from hindsight.training._stats import median
from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["ThroughputCollapse"]

_MIN_REFERENCE = 5


class ThroughputCollapse(Detector):
    """Reports throughput that stays below ``fraction`` x the median of the ``window`` before.

    The median of the last ``sustain`` throughputs is compared, so it fires once most of
    them are slow, and one slow step (a garbage-collection pause, a checkpoint, an
    evaluation) is not a collapse. Checked
    once at least five earlier throughputs are there; clears on recovery.

    Parameters
    ----------
    fraction
        Share of the median below which throughput collapsed (in (0, 1), default 0.5).
    window
        Previous throughputs whose median is the reference (>= 5, default 50).
    sustain
        Latest throughputs whose median must have collapsed (>= 1, default 5).
    severity
        ``"warn"`` (default) or ``"stop"``.

    Examples
    --------
    >>> from hindsight.training import TrainingState
    >>> state, detector = TrainingState(), ThroughputCollapse()
    >>> for s in range(10):
    ...     assert detector.check(state.update(s, throughput=1000.0 + s)) is None
    >>> detector.check(state.update(10, throughput=200.0)) is None  # one slow step
    True
    >>> detector.check(state.update(11, throughput=200.0)) is None  # two of the last five
    True
    >>> round(detector.check(state.update(12, throughput=200.0)).evidence["ratio"], 4)
    0.1993
    """

    kind = "throughput_collapse"
    signals = frozenset({"throughput"})
    _constraints = {
        "fraction": Interval(float, 0.0, 1.0, "neither"),
        "window": Interval(int, _MIN_REFERENCE, None, "left"),
        "sustain": Interval(int, 1, None, "left"),
    }

    fraction: float
    window: int
    sustain: int

    def __init__(
        self,
        fraction: float = 0.5,
        *,
        window: int = 50,
        sustain: int = 5,
        severity: Severity = "warn",
    ) -> None:
        self._set_params(fraction=fraction, window=window, sustain=sustain, severity=severity)

    def check(self, state: TrainingState) -> Symptom | None:
        if "throughput" not in state.updated:
            return None
        values = state.throughput
        latest = values[-self.sustain :]
        if latest.size < self.sustain or not np.isfinite(latest).all():
            return None
        current = median(latest)
        ref = values[-self.window - self.sustain : -self.sustain]
        ref = ref[np.isfinite(ref)]
        if ref.size < _MIN_REFERENCE or not math.isfinite(current):
            return None
        med = median(ref)
        if med <= 0 or current >= self.fraction * med:
            return None
        return self._symptom(
            state,
            {
                "throughput": current,
                "sustain": self.sustain,
                "median": med,
                "ratio": current / med,
                "fraction": self.fraction,
                "window": ref.copy(),
            },
            "The input pipeline or the device slowed down: data-loader starvation, "
            "host-device syncs, swapping, thermal throttling or a noisy neighbour.",
            (
                "Profile the input pipeline; raise data-loader workers and enable prefetching.",
                "Remove per-step host syncs (.item(), .cpu()) and logging in the hot loop.",
                "Check memory: swapping or a growing cache slows every step.",
            ),
        )
