"""DDM, the Drift Detection Method for a stream of 0/1 errors (Gama et al., 2004).

The error rate ``p`` of the values seen so far is a binomial proportion with standard
deviation ``s = sqrt(p (1 - p) / n)``. DDM remembers ``p_min`` and ``s_min`` where
``p + s`` was lowest and signals a warning once ``p + s >= p_min + 2 s_min`` and a
drift once ``p + s >= p_min + 3 s_min`` (River and MOA compare with ``>``; the two
differ only on exact ties).
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np

from hindsight._validation import Interval
from hindsight.drift.streaming.base import Param, StreamingDetector, not_binary_error

__all__ = ["DDM"]

_sqrt = math.sqrt


class DDM(StreamingDetector):
    """Drift Detection Method: a warning and a drift level over the lowest ``p + s`` seen.

    Feed 1 for an error (the model was wrong) and 0 for a correct prediction.
    Parameters and defaults are River's: the levels are judged only after
    ``warm_start`` values, at ``warning_threshold`` and ``drift_threshold`` standard
    deviations.

    One departure from River and MOA: the minimum is recorded only once ``s > 0``, that
    is once the stream has had both an error and a success. With a flawless warm-up
    River records ``p_min = s_min = 0`` and the first error after it is a drift.

    On stationary streams with an error rate of 0.1 it raises about one false alarm
    per 80,000 values, most soon after a restart, while the minimum is still noisy.

    After a drift every statistic restarts (error rate, minimum, warning), as River does.

    >>> import random
    >>> rng = random.Random(1)
    >>> errors = [int(rng.random() < 0.1) for _ in range(2000)]
    >>> errors += [int(rng.random() < 0.3) for _ in range(2000)]
    >>> ddm = DDM()
    >>> start = None
    >>> for i, e in enumerate(errors):
    ...     if ddm.update(e).drift_detected:
    ...         print(f"warning zone from {start}, drift at {i}")
    ...     start = (start if start is not None else i) if ddm.warning_detected else None
    warning zone from 1990, drift at 2073
    """

    __slots__ = (
        "_drift_level",
        "_drift_t",
        "_k",
        "_p_min",
        "_ps_min",
        "_s_min",
        "_warm",
        "_warn_level",
        "_warn_t",
        "_warning",
    )

    name = "ddm"
    has_warning = True
    binary = True
    _constraints = {
        "warm_start": Interval(int, 1, None),
        "warning_threshold": Interval(float, 0.0, None, closed="neither"),
        "drift_threshold": Interval(float, 0.0, None, closed="neither"),
    }

    warm_start = Param[int]()
    warning_threshold = Param[float]()
    drift_threshold = Param[float]()

    def __init__(
        self, warm_start: int = 30, warning_threshold: float = 2.0, drift_threshold: float = 3.0
    ) -> None:
        self._set_params(
            warm_start=warm_start,
            warning_threshold=warning_threshold,
            drift_threshold=drift_threshold,
        )

    def _clear(self) -> None:
        p = self._params
        self._warm = int(p["warm_start"])
        self._warn_t = float(p["warning_threshold"])
        self._drift_t = float(p["drift_threshold"])
        self._k = 0
        self._p_min = math.inf
        self._s_min = math.inf
        self._ps_min = math.inf
        self._drift_level = math.inf
        self._warn_level = math.inf
        self._warning = False

    @property
    def warning_detected(self) -> bool:
        """Whether the error rate is in the warning zone after the last value."""
        return self._warning

    @property
    def error_rate(self) -> float:
        """The error rate since the last restart (0 before any value)."""
        return self._k / self._n if self._n else 0.0

    @property
    def p_min(self) -> float | None:
        """The error rate where ``p + s`` was lowest (``None`` before it is recorded)."""
        return None if self._p_min == math.inf else self._p_min

    @property
    def s_min(self) -> float | None:
        """The standard deviation where ``p + s`` was lowest (``None`` before it is recorded)."""
        return None if self._s_min == math.inf else self._s_min

    def update(self, x: float) -> Self:
        """Feed one error indicator (1 = error, 0 = correct)."""
        if x == 1:
            k = self._k + 1
            self._k = k
        elif x == 0:
            k = self._k
        else:
            raise not_binary_error("DDM", x)
        n = self._n + 1
        self._n = n
        if n > self._warm:
            p = k / n
            v = p * (1.0 - p) / n
            if p <= self._ps_min:  # else p + s > ps_min already
                s = _sqrt(v)
                if p + s <= self._ps_min and s > 0.0:
                    self._record(p, s)
            # p + s >= level, without the square root: s >= level - p.
            t = self._drift_level - p
            if t <= 0.0 or v >= t * t:
                self._restart()
            else:
                t = self._warn_level - p
                self._warning = t <= 0.0 or v >= t * t
        return self

    def _record(self, p: float, s: float) -> None:
        self._p_min = p
        self._s_min = s
        self._ps_min = p + s
        self._drift_level = p + self._drift_t * s
        self._warn_level = p + self._warn_t * s

    def _scan(self, chunk: np.ndarray) -> int:
        n0, size = self._n, chunk.size
        n = np.arange(n0 + 1, n0 + size + 1, dtype=np.float64)
        k = np.cumsum(chunk) + float(self._k)  # exact: small integers in float64
        judged = n > self._warm
        if not judged.any():
            self._n = n0 + size
            self._k = int(k[-1])
            return -1
        p = k / n
        s = np.sqrt(p * (1.0 - p) / n)
        ps = p + s
        eligible = judged & (s > 0.0)
        # The running minimum of p + s, and the latest position that reached it (the
        # recorded p_min, s_min): update records on ``ps <= ps_min``, so ties move it.
        run_min = np.minimum.accumulate(
            np.concatenate(([self._ps_min], np.where(eligible, ps, np.inf)))
        )[1:]
        record = eligible & (ps == run_min)
        last = np.maximum.accumulate(np.where(record, np.arange(size), -1))
        have = last >= 0
        at = np.where(have, last, 0)
        p_min = np.where(have, p[at], self._p_min)
        s_min = np.where(have, s[at], self._s_min)
        drift_level = np.where(have, p_min + self._drift_t * s_min, self._drift_level)
        warn_level = np.where(have, p_min + self._warn_t * s_min, self._warn_level)
        v = p * (1.0 - p) / n
        t = drift_level - p
        fired = judged & ((t <= 0.0) | (v >= t * t))
        hits = np.flatnonzero(fired)
        if hits.size:
            i = int(hits[0])
            self._n = n0 + i + 1
            self._restart()
            return i
        self._n = n0 + size
        self._k = int(k[-1])
        self._p_min = float(p_min[-1])
        self._s_min = float(s_min[-1])
        self._ps_min = float(run_min[-1])
        self._drift_level = float(drift_level[-1])
        self._warn_level = float(warn_level[-1])
        if judged[-1]:
            t_last = warn_level[-1] - p[-1]
            self._warning = bool(t_last <= 0.0 or v[-1] >= t_last * t_last)
        return -1
