"""Loss spikes: a loss far above the recent ones, by a robust z-score."""

from __future__ import annotations

import math

import numpy as np

from hindsight._validation import Interval
from hindsight.training._stats import MAD_SCALE, robust_zscore
from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["LossSpike"]


class LossSpike(Detector):
    """Reports a loss whose robust z-score over the previous losses exceeds ``threshold``.

    ``z = (loss - median) / (1.4826 * MAD)`` over the up to ``window`` finite losses
    before this one; checked once at least ``window // 2`` of them are there.

    Parameters
    ----------
    threshold
        Robust z-score above which a loss is a spike (> 0, default 6).
    window
        How many previous losses form the reference (>= 4, default 50).
    severity
        ``"warn"`` (default) or ``"stop"``.

    Examples
    --------
    >>> import numpy as np
    >>> from hindsight.training import TrainingState
    >>> rng = np.random.default_rng(1)
    >>> state, detector = TrainingState(), LossSpike(threshold=6, window=20)
    >>> for step in range(20):
    ...     assert detector.check(state.update(step, loss=1 + 0.01 * rng.normal())) is None
    >>> round(detector.check(state.update(20, loss=1.5)).evidence["z"])
    80
    """

    kind = "loss_spike"
    signals = frozenset({"loss"})
    _constraints = {
        "threshold": Interval(float, 0.0, None, "neither"),
        "window": Interval(int, 4, None, "left"),
    }

    threshold: float
    window: int

    def __init__(
        self, threshold: float = 6.0, *, window: int = 50, severity: Severity = "warn"
    ) -> None:
        self._set_params(threshold=threshold, window=window, severity=severity)

    def check(self, state: TrainingState) -> Symptom | None:
        if "loss" not in state.updated:
            return None
        losses = state.loss
        # Several fresh losses (a buffering caller): the highest finite one is the
        # candidate spike, judged against the window before them.
        k = max(1, min(state.fresh("loss"), losses.size - 1))
        if k == 1:
            at = losses.size - 1
        else:
            fresh = losses[-k:]
            finite = np.isfinite(fresh)
            if not finite.any():
                return None
            at = losses.size - k + int(np.argmax(np.where(finite, fresh, -np.inf)))
        loss = float(losses[at])
        if not math.isfinite(loss):
            return None
        end = losses.size - k
        ref = losses[max(0, end - self.window) : end]
        if not math.isfinite(float(ref.sum())):
            ref = ref[np.isfinite(ref)]
        if ref.size < self.window // 2:
            return None
        z, med, mad = robust_zscore(loss, ref)
        if z <= self.threshold:
            return None
        return self._symptom(
            state,
            {
                "loss": loss,
                "z": z,
                "median": med,
                "mad": mad,
                "mad_scale": MAD_SCALE,
                "threshold": self.threshold,
                "window": ref.copy(),
            },
            "A bad batch (outliers or mislabelled data) or a learning rate on the edge "
            "of stability.",
            (
                "Clip gradients (e.g. clip_grad_norm_ at 1.0).",
                "Lower the learning rate or add warm-up.",
                "Inspect the batch at this step for outliers or corrupt labels.",
                "Increase the batch size to reduce gradient noise.",
            ),
            step=int(state.loss_steps[at]),
        )
