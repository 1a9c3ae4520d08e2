"""GPU memory near the limit: the next bigger batch or longer sequence will not fit."""

from __future__ import annotations

import math

import numpy as np

from hindsight._validation import Interval
from hindsight.training.detectors.base import Detector
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["GpuMemoryNearLimit"]


class GpuMemoryNearLimit(Detector):
    """Reports GPU memory use at or above ``near_limit`` of the device for ``sustain`` readings.

    The signal is ``gpu_memory``, the share of the device's memory in use (what
    :class:`~hindsight.training.ResourceMonitor` reads through NVML). One high reading is
    often a transient peak of the caching allocator; ``sustain`` consecutive readings at
    or above the threshold are a run about to fail with an out-of-memory error when a
    longer batch arrives.

    Parameters
    ----------
    near_limit
        Share of the device's memory that counts as near the limit (in (0, 1], default 0.95).
    sustain
        Consecutive readings at or above it before reporting (>= 1, default 3).
    severity
        ``"warn"`` (default) or ``"stop"``.

    Examples
    --------
    >>> from hindsight.training import TrainingState
    >>> state, detector = TrainingState(), GpuMemoryNearLimit(sustain=2)
    >>> detector.check(state.update(0, gpu_memory=0.97)) is None
    True
    >>> found = detector.check(state.update(1, gpu_memory=0.98))
    >>> found.kind, found.evidence["gpu_memory"]
    ('gpu_memory_near_limit', 0.98)
    """

    kind = "gpu_memory_near_limit"
    signals = frozenset({"gpu_memory"})
    _constraints = {
        "near_limit": Interval(float, 0.0, 1.0, "right"),
        "sustain": Interval(int, 1, None, "left"),
    }

    near_limit: float
    sustain: int

    def __init__(
        self, near_limit: float = 0.95, sustain: int = 3, *, severity: Severity = "warn"
    ) -> None:
        self._set_params(near_limit=near_limit, sustain=sustain, severity=severity)

    def check(self, state: TrainingState) -> Symptom | None:
        if "gpu_memory" not in state.updated:
            return None
        recent = state.gpu_memory[-self.sustain :]
        if recent.size < self.sustain or not bool(np.all(recent >= self.near_limit)):
            return None
        current = float(recent[-1])
        if not math.isfinite(current):
            return None
        return self._symptom(
            state,
            {
                "gpu_memory": current,
                "near_limit": self.near_limit,
                "sustain": self.sustain,
                "window": recent.copy(),
            },
            "The model, batch and activations fill the GPU; a longer batch or a memory "
            "spike will end the run with CUDA out of memory.",
            (
                "Lower the batch size and keep the effective batch with gradient accumulation.",
                "Use mixed precision (bf16) and activation checkpointing.",
                "Free what evaluation keeps (run it under torch.no_grad()) and check other "
                "processes on the GPU (nvidia-smi).",
            ),
        )
