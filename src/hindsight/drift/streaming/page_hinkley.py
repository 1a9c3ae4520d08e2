"""Page-Hinkley test: a cumulative sum of deviations from the running mean (Page, 1954).

For each value the deviation from the mean of the values so far is added to two sums,
one shifted down by ``delta`` (it climbs when the mean rises) and one shifted up (it
falls when the mean drops), each first multiplied by the forgetting factor ``alpha``:

    m_t = alpha * m_{t-1} + (x_t - mean_t - delta)
    M_t = alpha * M_{t-1} + (x_t - mean_t + delta)

An increase is detected when ``m_t - min(m)`` exceeds ``threshold``, a decrease when
``max(M) - M_t`` does. ``delta`` and ``threshold`` are in the units of ``x``.
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np
from scipy.signal import lfilter

from hindsight._validation import Interval, Options
from hindsight.drift.streaming.base import Param, StreamingDetector, non_finite_error, to_float

__all__ = ["PageHinkley"]

_ONE = np.ones(1)


class PageHinkley(StreamingDetector):
    """Page-Hinkley test for a change in the mean of a stream.

    Parameters are those of River's ``PageHinkley`` (and MOA's), with the same
    defaults. ``delta`` is the magnitude of change tolerated, ``threshold`` (lambda)
    the alarm level, both in the units of ``x``: the defaults suit values whose noise
    has a standard deviation of about 0.25 or less (on such a stream fewer than one
    false alarm in 10,000 values); scale both with the noise of your stream. The
    test only fires once ``min_instances`` values were seen since the last restart.
    ``mode`` picks the direction: ``"up"``, ``"down"`` or ``"both"``.

    After a drift every statistic restarts (mean, both sums and their extremes), as
    River does; the extremes start at plus and minus infinity.

    >>> import random
    >>> rng = random.Random(7)
    >>> stream = [rng.gauss(0, 0.25) for _ in range(1000)]
    >>> stream += [rng.gauss(1, 0.25) for _ in range(1000)]
    >>> ph = PageHinkley()
    >>> for i, x in enumerate(stream):
    ...     if ph.update(x).drift_detected:
    ...         print(f"change detected at {i}")
    change detected at 1051
    >>> PageHinkley().update_many(stream).tolist()
    [1051]
    """

    __slots__ = (
        "_alpha",
        "_dec",
        "_delta",
        "_down",
        "_inc",
        "_max_dec",
        "_min_inc",
        "_min_instances",
        "_sum",
        "_threshold",
        "_up",
    )

    name = "page_hinkley"
    _constraints = {
        "min_instances": Interval(int, 1, None),
        "delta": Interval(float, 0.0, None),
        "threshold": Interval(float, 0.0, None, closed="neither"),
        "alpha": Interval(float, 0.0, 1.0, closed="right"),
        "mode": Options(("up", "down", "both")),
    }

    min_instances = Param[int]()
    delta = Param[float]()
    threshold = Param[float]()
    alpha = Param[float]()
    mode = Param[str]()

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: str = "both",
    ) -> None:
        self._set_params(
            min_instances=min_instances, delta=delta, threshold=threshold, alpha=alpha, mode=mode
        )

    def _clear(self) -> None:
        p = self._params
        self._min_instances = int(p["min_instances"])
        self._delta = float(p["delta"])
        self._threshold = float(p["threshold"])
        self._alpha = float(p["alpha"])
        self._up = p["mode"] in ("up", "both")
        self._down = p["mode"] in ("down", "both")
        self._sum = 0.0
        self._inc = 0.0
        self._dec = 0.0
        self._min_inc = math.inf
        self._max_dec = -math.inf

    @property
    def mean(self) -> float:
        """The mean of the values since the last restart (0 before any)."""
        return self._sum / self._n if self._n else 0.0

    @property
    def sum_increase(self) -> float:
        """The sum that climbs when the mean rises (``m_t`` above)."""
        return self._inc

    @property
    def sum_decrease(self) -> float:
        """The sum that falls when the mean drops (``M_t`` above)."""
        return self._dec

    @property
    def statistic(self) -> float:
        """The larger of the watched excursions (``m_t - min m``, ``max M - M_t``); 0 before any."""
        if not self._n:
            return 0.0
        up = self._inc - self._min_inc if self._up else 0.0
        down = self._max_dec - self._dec if self._down else 0.0
        return max(up, down)

    def update(self, x: float) -> Self:
        """Feed one value; read :attr:`drift_detected` afterwards."""
        if type(x) is not float:
            x = to_float("PageHinkley", x)
        if x - x:
            raise non_finite_error("PageHinkley", x)
        n = self._n + 1
        self._n = n
        s = self._sum + x
        self._sum = s
        dev = x - s / n
        alpha = self._alpha
        inc = alpha * self._inc + (dev - self._delta)
        dec = alpha * self._dec + (dev + self._delta)
        self._inc = inc
        self._dec = dec
        if inc < self._min_inc:
            self._min_inc = inc
        if dec > self._max_dec:
            self._max_dec = dec
        if n >= self._min_instances and (
            (self._up and inc - self._min_inc > self._threshold)
            or (self._down and self._max_dec - dec > self._threshold)
        ):
            self._restart()
        return self

    def _scan(self, chunk: np.ndarray) -> int:
        # The same operations as update, in the same order, so the sums agree to the bit:
        # cumsum and lfilter accumulate sequentially, running extremes are exact.
        n0 = self._n
        n = np.arange(n0 + 1, n0 + chunk.size + 1, dtype=np.float64)
        sums = np.cumsum(np.concatenate(([self._sum], chunk)))[1:]
        dev = chunk - sums / n
        alpha = self._alpha
        a = np.array([1.0, -alpha])
        inc = lfilter(_ONE, a, dev - self._delta, zi=[alpha * self._inc])[0]
        dec = lfilter(_ONE, a, dev + self._delta, zi=[alpha * self._dec])[0]
        min_inc = np.minimum.accumulate(np.concatenate(([self._min_inc], inc)))[1:]
        max_dec = np.maximum.accumulate(np.concatenate(([self._max_dec], dec)))[1:]
        fired = np.zeros(chunk.size, dtype=bool)
        if self._up:
            fired |= inc - min_inc > self._threshold
        if self._down:
            fired |= max_dec - dec > self._threshold
        fired &= n >= self._min_instances
        hits = np.flatnonzero(fired)
        if hits.size:
            i = int(hits[0])
            self._n = n0 + i + 1
            self._restart()
            return i
        self._n = n0 + chunk.size
        self._sum = float(sums[-1])
        self._inc = float(inc[-1])
        self._dec = float(dec[-1])
        self._min_inc = float(min_inc[-1])
        self._max_dec = float(max_dec[-1])
        return -1
