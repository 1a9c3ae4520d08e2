"""Shared types and the demo's success criteria."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

#: Hit rate at 10 over existing users' held-out clicks that a model must reach (``ctr``).
CTR_TARGET = 0.65
#: Hit rate at 10 over cold-start users that a model must reach (``ctr_new_users``).
CTR_NEW_USERS_TARGET = 0.55
#: p99 latency of one online request (one user against the whole catalogue), milliseconds.
LATENCY_P99_MS_TARGET = 50.0

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

#: ``progress(step, metrics)``: called once per epoch (ALS sweep) with the 1-based epoch number.
ProgressCallback = Callable[[int, dict[str, float]], None]
