"""Two-sided tabular CUSUM: Page's cumulative sums of deviations beyond a slack (Page, 1954).

With target mean ``mu`` and standard deviation ``sigma``, slack ``K = k * sigma`` and
decision interval ``H = h * sigma`` (Montgomery, *Introduction to Statistical Quality
Control*, section 9.1):

    C+_t = max(0, C+_{t-1} + x_t - (mu + K))
    C-_t = max(0, C-_{t-1} + (mu - K) - x_t)

and a drift is signalled when either sum exceeds ``H``. The sums are kept in the closed
form of that recursion, ``C_t = S_t - min(0, S_1, ..., S_t)`` with ``S_t`` the plain
running sum of the increments: the same numbers, and ``update_many`` computes them with
cumulative NumPy operations bit for bit like ``update``.
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np

from hindsight._validation import Interval
from hindsight.drift.streaming.base import Param, StreamingDetector, non_finite_error, to_float

__all__ = ["CUSUM"]


def _estimate(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation of the warm-up values (exactly rounded sums)."""
    n = len(values)
    mean = math.fsum(values) / n
    sd = math.sqrt(math.fsum([(v - mean) ** 2 for v in values]) / (n - 1))
    return mean, sd


class CUSUM(StreamingDetector):
    """Two-sided tabular CUSUM for a shift of the mean, with ``k`` and ``h`` in units of sigma.

    ``target`` (the in-control mean) and ``sigma`` (its standard deviation) are given,
    or, where left ``None``, estimated from the first ``warmup`` values (which are not
    monitored). ``k`` is the slack: half the shift, in sigmas, the chart is tuned to
    find fastest. ``h`` is the decision interval in sigmas.

    The default ``h = 10`` is twice the textbook 5 because a streaming monitor sees
    millions of values: with ``k = 0.5`` and a known target, ``h = 5`` alarms about
    every 465 in-control values, ``h = 10`` about every 70,000, and with a target and
    sigma estimated from 200 warm-up values fewer than one in 10,000 on average. A
    shift of one sigma is still found after about 20 values.

    After a drift both sums restart at zero; a target or sigma that was estimated is
    estimated afresh from the next ``warmup`` values, one that was given is kept. A
    warm-up of identical values gives sigma 0, and then any change of value is a drift.

    >>> import random
    >>> rng = random.Random(3)
    >>> stream = [rng.gauss(10, 2) for _ in range(1000)]
    >>> stream += [rng.gauss(12, 2) for _ in range(1000)]
    >>> cusum = CUSUM()
    >>> for i, x in enumerate(stream):
    ...     if cusum.update(x).drift_detected:
    ...         print(f"change detected at {i}")
    change detected at 1008

    The target and sigma were then estimated afresh, from the 200 values after 1008:

    >>> round(cusum.target_, 2), round(cusum.sigma_, 2)
    (11.88, 2.11)
    """

    _warm: list[float]

    __slots__ = (
        "_h",
        "_hi",
        "_lo",
        "_lo_min",
        "_lo_sum",
        "_mu",
        "_sd",
        "_up_min",
        "_up_sum",
        "_warm",
    )

    name = "cusum"
    _constraints = {
        "target": Interval(float, allow_none=True),
        "sigma": Interval(float, 0.0, None, closed="neither", allow_none=True),
        "k": Interval(float, 0.0, None),
        "h": Interval(float, 0.0, None, closed="neither"),
        "warmup": Interval(int, 2, None),
    }

    target = Param[float | None]()
    sigma = Param[float | None]()
    k = Param[float]()
    h = Param[float]()
    warmup = Param[int]()

    def __init__(
        self,
        target: float | None = None,
        sigma: float | None = None,
        k: float = 0.5,
        h: float = 10.0,
        warmup: int = 200,
    ) -> None:
        self._set_params(target=target, sigma=sigma, k=k, h=h, warmup=warmup)

    def _clear(self) -> None:
        self._up_sum = 0.0
        self._up_min = 0.0
        self._lo_sum = 0.0
        self._lo_min = 0.0
        self._warm = []
        target, sigma = self._params["target"], self._params["sigma"]
        if target is not None and sigma is not None:
            self._monitor(float(target), float(sigma))
        else:
            self._mu = math.nan
            self._sd = math.nan
            self._hi = math.nan
            self._lo = math.nan
            self._h = math.nan

    def _monitor(self, mu: float, sd: float) -> None:
        """Start monitoring around ``mu`` with standard deviation ``sd``."""
        k = float(self._params["k"])
        self._mu = mu
        self._sd = sd
        self._hi = mu + k * sd
        self._lo = mu - k * sd
        self._h = float(self._params["h"]) * sd

    def _end_warmup(self) -> None:
        mean, sd = _estimate(self._warm)
        target, sigma = self._params["target"], self._params["sigma"]
        self._monitor(
            mean if target is None else float(target), sd if sigma is None else float(sigma)
        )
        self._warm = []

    @property
    def warming_up(self) -> bool:
        """Whether the detector is still collecting values to estimate the target or sigma."""
        return self._mu != self._mu

    @property
    def target_(self) -> float | None:
        """The in-control mean in use, given or estimated (``None`` while warming up)."""
        return None if self.warming_up else self._mu

    @property
    def sigma_(self) -> float | None:
        """The standard deviation in use, given or estimated (``None`` while warming up)."""
        return None if self.warming_up else self._sd

    @property
    def cusum_pos(self) -> float:
        """The upper sum ``C+`` (it grows while the mean is above target)."""
        return self._up_sum - self._up_min

    @property
    def cusum_neg(self) -> float:
        """The lower sum ``C-`` (it grows while the mean is below target)."""
        return self._lo_sum - self._lo_min

    def update(self, x: float) -> Self:
        """Feed one value; read :attr:`drift_detected` afterwards."""
        if type(x) is not float:
            x = to_float("CUSUM", x)
        if x - x:
            raise non_finite_error("CUSUM", x)
        self._n += 1
        hi = self._hi
        if hi != hi:  # warming up
            self._warm.append(x)
            if len(self._warm) >= self._params["warmup"]:
                self._end_warmup()
            return self
        up = self._up_sum + (x - hi)
        self._up_sum = up
        if up < self._up_min:
            self._up_min = up
        lo = self._lo_sum + (self._lo - x)
        self._lo_sum = lo
        if lo < self._lo_min:
            self._lo_min = lo
        if up - self._up_min > self._h or lo - self._lo_min > self._h:
            self._restart()
        return self

    def _scan(self, chunk: np.ndarray) -> int:
        start = 0
        if self._hi != self._hi:
            need = int(self._params["warmup"]) - len(self._warm)
            if chunk.size < need:
                self._warm.extend(chunk.tolist())
                self._n += chunk.size
                return -1
            self._warm.extend(chunk[:need].tolist())
            self._n += need
            self._end_warmup()
            start = need
        rest = chunk[start:]
        if not rest.size:
            return -1
        up = np.cumsum(np.concatenate(([self._up_sum], rest - self._hi)))
        lo = np.cumsum(np.concatenate(([self._lo_sum], self._lo - rest)))
        up_min = np.minimum.accumulate(np.concatenate(([self._up_min], up[1:])))
        lo_min = np.minimum.accumulate(np.concatenate(([self._lo_min], lo[1:])))
        fired = (up[1:] - up_min[1:] > self._h) | (lo[1:] - lo_min[1:] > self._h)
        hits = np.flatnonzero(fired)
        if hits.size:
            i = int(hits[0])
            self._n += i + 1
            self._restart()
            return start + i
        self._n += rest.size
        self._up_sum = float(up[-1])
        self._up_min = float(up_min[-1])
        self._lo_sum = float(lo[-1])
        self._lo_min = float(lo_min[-1])
        return -1
