"""Bernoulli CUSUM: a log-likelihood-ratio CUSUM for the rate of a 0/1 stream.

Reynolds and Stoumbos ("A CUSUM chart for monitoring a proportion when inspecting
continuously", Journal of Quality Technology 31(1), 1999): with in-control rate ``p0``
and the rate ``p1`` to detect, each value adds its log-likelihood ratio

    w_t = x_t * log(p1 / p0) + (1 - x_t) * log((1 - p1) / (1 - p0))

to ``S_t = max(0, S_{t-1} + w_t)``, and a change is signalled when ``S_t > h``. A normal
CUSUM on a rare event's 0/1 indicators fires on any two events close together (its sigma
is tiny); this one weighs an event by how much more likely it is under ``p1``, so it
keeps its false-alarm rate on rates of 1 % and below. ``mode="both"`` runs a second chart
for a fall to ``p0 / ratio``. Sums are kept in the closed form ``S_t - min(S)``, so
``update_many`` computes them with cumulative NumPy operations like ``update``.
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np

from hindsight._validation import Interval, Options
from hindsight.drift.streaming.base import (
    Param,
    StreamingDetector,
    not_binary_error,
    to_float,
)

__all__ = ["BernoulliCUSUM"]


class BernoulliCUSUM(StreamingDetector):
    """CUSUM of log-likelihood ratios for a 0/1 stream's rate rising ``ratio``-fold.

    ``p0`` is the in-control rate, or, where ``None``, estimated from a warm-up of at
    least ``warmup`` values holding at least ``warmup_events`` events, as ``(events +
    0.5) / (values + 1)``: the estimate's relative error depends on the events seen
    (about ``1 / sqrt(events)``), so a rare event waits for enough of them, and an
    underestimated ``p0`` would make the in-control rate look like a rise. ``ratio`` is the change the chart is
    tuned to find fastest (``p1 = ratio * p0``, capped below 1). ``h`` is the decision
    interval in log-likelihood units; left ``None`` it is set from ``arl0``, the number
    of in-control values wanted between false alarms on average, by Wald's
    approximation ``ARL0 = (e^h - h - 1) / |E0[w]|``. That keeps the false-alarm rate
    where it was asked whatever ``p0`` is (a fixed ``h`` alarms ten times as often at a
    30 % rate as at a 2 % one). At ``p0 = 0.02`` and a doubling, the default
    ``arl0 = 500,000`` gives ``h = 8.1`` and a delay of about 950 values for a true
    doubling (simulated). With ``p0`` estimated from the warm-up the run between false
    alarms is shorter than ``arl0`` (the estimate's error): about 0.35 false alarms per
    100,000 values at rates of 2 % and 10 % (simulated, 5 million values each); give
    ``p0`` where it is known. ``mode`` is ``"up"`` (a rising rate), ``"down"`` or ``"both"``.
    After a drift the sums restart; an estimated ``p0`` is estimated afresh.

    >>> import random
    >>> rng = random.Random(1)
    >>> stream = [float(rng.random() < 0.02) for _ in range(20_000)]
    >>> stream += [float(rng.random() < 0.06) for _ in range(5_000)]
    >>> chart = BernoulliCUSUM(p0=0.02)
    >>> round(chart.h_, 2)
    8.06
    >>> [i for i, x in enumerate(stream) if chart.update(x).drift_detected][:1]
    [20369]
    """

    _warm: list[float]

    __slots__ = ("_dn", "_dn_min", "_events", "_h", "_p0", "_up", "_up_min", "_w", "_warm")

    name = "bernoulli_cusum"
    binary = True
    _constraints = {
        "p0": Interval(float, 0.0, 1.0, closed="neither", allow_none=True),
        "ratio": Interval(float, 1.0, None, closed="neither"),
        "h": Interval(float, 0.0, None, closed="neither", allow_none=True),
        "arl0": Interval(float, 10.0, None),
        "warmup": Interval(int, 10, None),
        "warmup_events": Interval(int, 1, None),
        "mode": Options(("up", "down", "both")),
    }

    p0 = Param[float | None]()
    ratio = Param[float]()
    h = Param[float | None]()
    arl0 = Param[float]()
    warmup = Param[int]()
    warmup_events = Param[int]()
    mode = Param[str]()

    def __init__(
        self,
        p0: float | None = None,
        ratio: float = 2.0,
        h: float | None = None,
        arl0: float = 500_000.0,
        warmup: int = 1000,
        warmup_events: int = 100,
        mode: str = "up",
    ) -> None:
        self._set_params(
            p0=p0,
            ratio=ratio,
            h=h,
            arl0=arl0,
            warmup=warmup,
            warmup_events=warmup_events,
            mode=mode,
        )

    def _clear(self) -> None:
        self._up = self._up_min = 0.0
        self._dn = self._dn_min = 0.0
        self._warm = []
        self._events = 0.0
        p0 = self._params["p0"]
        self._p0 = math.nan
        self._w = (math.nan, math.nan, math.nan, math.nan)
        self._h = math.nan
        if p0 is not None:
            self._monitor(float(p0))

    def _monitor(self, p0: float) -> None:
        ratio = float(self._params["ratio"])
        up1 = min(p0 * ratio, 1.0 - 1e-12)
        dn1 = p0 / ratio
        self._p0 = p0
        # (event, non-event) weights of the rising chart, then of the falling one.
        self._w = (
            math.log(up1 / p0),
            math.log((1.0 - up1) / (1.0 - p0)),
            math.log(dn1 / p0),
            math.log((1.0 - dn1) / (1.0 - p0)),
        )
        h = self._params["h"]
        self._h = float(h) if h is not None else self._wald_h(p0)

    def _wald_h(self, p0: float) -> float:
        """The ``h`` whose Wald ARL0 is ``arl0`` (for the faster-alarming chart in use)."""
        drifts = []
        if self._params["mode"] != "down":
            drifts.append(p0 * self._w[0] + (1 - p0) * self._w[1])
        if self._params["mode"] != "up":
            drifts.append(p0 * self._w[2] + (1 - p0) * self._w[3])
        # Both charts run at once in "both": each gets half the false alarms asked.
        arl = float(self._params["arl0"]) * (2.0 if len(drifts) == 2 else 1.0)
        mean = min(abs(d) for d in drifts)
        h = math.log(arl * mean + 1.0)
        for _ in range(50):  # fixed point of e^h = arl * |E0 w| + h + 1
            nxt = math.log(arl * mean + h + 1.0)
            if abs(nxt - h) < 1e-12:
                break
            h = nxt
        return h

    @property
    def h_(self) -> float | None:
        """The decision interval in use, given or set from ``arl0`` (``None`` while warming up)."""
        return None if self._h != self._h else self._h

    @property
    def p0_(self) -> float | None:
        """The in-control rate in use, given or estimated (``None`` while warming up)."""
        return None if self._p0 != self._p0 else self._p0

    @property
    def statistic_up(self) -> float:
        """The rising chart's ``S_t``."""
        return self._up - self._up_min

    @property
    def statistic_down(self) -> float:
        """The falling chart's ``S_t``."""
        return self._dn - self._dn_min

    def _end_warmup(self) -> None:
        events = math.fsum(self._warm)
        self._monitor((events + 0.5) / (len(self._warm) + 1.0))
        self._warm = []
        self._events = 0.0

    def update(self, x: float) -> Self:
        """Feed one 0/1 value; read :attr:`drift_detected` afterwards."""
        if type(x) is not float:
            x = to_float("BernoulliCUSUM", x)
        if x != 0.0 and x != 1.0:
            raise not_binary_error("BernoulliCUSUM", x)
        self._n += 1
        if self._p0 != self._p0:  # warming up
            self._warm.append(x)
            self._events += x
            if (
                len(self._warm) >= self._params["warmup"]
                and self._events >= self._params["warmup_events"]
            ):
                self._end_warmup()
            return self
        mode = self._params["mode"]
        fired = False
        if mode != "down":
            self._up += self._w[0] if x else self._w[1]
            self._up_min = min(self._up_min, self._up)
            fired = self._up - self._up_min > self._h
        if mode != "up":
            # The falling chart sums the log-likelihood ratio of p0 / ratio against p0.
            self._dn += self._w[2] if x else self._w[3]
            self._dn_min = min(self._dn_min, self._dn)
            fired = fired or self._dn - self._dn_min > self._h
        if fired:
            self._restart()
        return self

    def _scan(self, chunk: np.ndarray) -> int:
        start = 0
        if self._p0 != self._p0:
            # Where both warm-up conditions first hold: enough values and enough events.
            have = len(self._warm)
            events = self._events + np.cumsum(chunk)
            values = have + np.arange(1, chunk.size + 1)
            done = np.flatnonzero(
                (values >= self._params["warmup"]) & (events >= self._params["warmup_events"])
            )
            if not done.size:
                self._warm.extend(chunk.tolist())
                self._events = float(events[-1]) if chunk.size else self._events
                self._n += chunk.size
                return -1
            need = int(done[0]) + 1
            self._warm.extend(chunk[:need].tolist())
            self._n += need
            self._end_warmup()
            start = need
        rest = chunk[start:]
        if not rest.size:
            return -1
        mode = self._params["mode"]
        fired = np.zeros(rest.size, dtype=bool)
        sums: list[tuple[np.ndarray, np.ndarray] | None] = []
        for on, (w1, w0), s, s_min in (
            (mode != "down", self._w[:2], self._up, self._up_min),
            (mode != "up", self._w[2:], self._dn, self._dn_min),
        ):
            if not on:
                sums.append(None)
                continue
            # The same additions, in the same order, as update() makes.
            path = np.cumsum(np.concatenate(([s], np.where(rest > 0.5, w1, w0))))
            low = np.minimum.accumulate(np.concatenate(([s_min], path[1:])))
            fired |= path[1:] - low[1:] > self._h
            sums.append((path, low))
        hits = np.flatnonzero(fired)
        if hits.size:
            i = int(hits[0])
            self._n += i + 1
            self._restart()
            return start + i
        self._n += rest.size
        if sums[0] is not None:
            self._up, self._up_min = float(sums[0][0][-1]), float(sums[0][1][-1])
        if sums[1] is not None:
            self._dn, self._dn_min = float(sums[1][0][-1]), float(sums[1][1][-1])
        return -1
