"""EDDM, the Early Drift Detection Method for a stream of 0/1 errors (Baena-García et al., 2006).

EDDM watches the distance between consecutive errors rather than the error rate: its
mean ``p'`` and standard deviation ``s'`` shrink when errors come closer together.
With ``(p'_max + 2 s'_max)`` the largest ``p' + 2 s'`` seen, the level
``(p' + 2 s') / (p'_max + 2 s'_max)`` below ``alpha`` is a warning and below ``beta``
a drift. The level is judged only from the ``warm_start``-th error on.
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np

from hindsight._validation import Interval
from hindsight.drift.streaming.base import Param, StreamingDetector, not_binary_error
from hindsight.errors import ConfigError

__all__ = ["EDDM"]

_sqrt = math.sqrt


class EDDM(StreamingDetector):
    """Early Drift Detection Method: the distance between errors, against its largest spread.

    Feed 1 for an error (the model was wrong) and 0 for a correct prediction. The
    statistics change only at errors, so the warning state holds between them.
    Parameters and defaults are River's: ``alpha`` (warning) and ``beta`` (drift) are
    the paper's 0.95 and 0.9; the maximum is tracked once more than ``warm_start``
    values were seen and the level judged once more than ``warm_start`` errors were,
    as in River and MOA. The standard deviation of the distances is the sample one
    (River's), computed from exact running sums.

    EDDM reacts to errors coming closer together, not to fewer errors. It is quick but
    alarm-prone: on stationary streams of 100,000 values with an error rate of 0.1 it
    raises about 6 false alarms per 10,000 (from 0 to 15 by stream, more on short
    streams; River's raises the same ones), as a maximum set early, from a few errors
    far apart, is later undercut with no change. Prefer DDM where alarms are costly.

    After a drift every statistic restarts (distances, maximum, warning), as River does;
    the first distance after it is counted from the drift.

    Lower levels than the defaults (River's example uses these too) calm it down:

    >>> import random
    >>> rng = random.Random(3)
    >>> errors = [int(rng.random() < 0.1) for _ in range(2000)]
    >>> errors += [int(rng.random() < 0.4) for _ in range(1000)]
    >>> eddm = EDDM(alpha=0.8, beta=0.75)
    >>> start = None
    >>> for i, e in enumerate(errors):
    ...     if eddm.update(e).drift_detected:
    ...         print(f"warning zone from {start}, drift at {i}")
    ...     start = (start if start is not None else i) if eddm.warning_detected else None
    warning zone from 2190, drift at 2283
    """

    __slots__ = (
        "_alpha",
        "_beta",
        "_last",
        "_max",
        "_n_errors",
        "_sum_d",
        "_sum_d2",
        "_warm",
        "_warning",
    )

    name = "eddm"
    has_warning = True
    binary = True
    _constraints = {
        "warm_start": Interval(int, 1, None),
        "alpha": Interval(float, 0.0, 1.0, closed="neither"),
        "beta": Interval(float, 0.0, 1.0, closed="neither"),
    }

    warm_start = Param[int]()
    alpha = Param[float]()
    beta = Param[float]()

    def __init__(self, warm_start: int = 30, alpha: float = 0.95, beta: float = 0.9) -> None:
        self._set_params(warm_start=warm_start, alpha=alpha, beta=beta)
        if beta > alpha:
            raise ConfigError(
                "The 'beta' parameter of EDDM (the drift level) must be at most 'alpha' "
                f"(the warning level). Got beta={beta!r}, alpha={alpha!r}."
            )

    def _clear(self) -> None:
        p = self._params
        self._warm = int(p["warm_start"])
        self._alpha = float(p["alpha"])
        self._beta = float(p["beta"])
        self._last = 0
        self._n_errors = 0
        self._sum_d = 0.0
        self._sum_d2 = 0.0
        self._max = -math.inf
        self._warning = False

    @property
    def warning_detected(self) -> bool:
        """Whether the level was in the warning zone at the last error."""
        return self._warning

    @property
    def n_errors(self) -> int:
        """Errors seen since the last restart."""
        return self._n_errors

    @property
    def mean_distance(self) -> float:
        """Mean distance between errors since the last restart (0 before any error)."""
        return self._sum_d / self._n_errors if self._n_errors else 0.0

    @property
    def std_distance(self) -> float:
        """Sample standard deviation of those distances (0 before two errors)."""
        ne = self._n_errors
        if ne < 2:
            return 0.0
        mean = self._sum_d / ne
        return _sqrt(max((self._sum_d2 - self._sum_d * mean) / (ne - 1), 0.0))

    def update(self, x: float) -> Self:
        """Feed one error indicator (1 = error, 0 = correct)."""
        if x == 0:
            self._n += 1
            return self
        if x != 1:
            raise not_binary_error("EDDM", x)
        n = self._n + 1
        self._n = n
        ne = self._n_errors + 1
        self._n_errors = ne
        d = float(n - self._last)
        self._last = n
        sd = self._sum_d + d
        sd2 = self._sum_d2 + d * d
        self._sum_d = sd
        self._sum_d2 = sd2
        if n <= self._warm:
            return self
        mean = sd / ne
        var = (sd2 - sd * mean) / (ne - 1) if ne > 1 else 0.0
        m2s = mean + 2.0 * _sqrt(var if var > 0.0 else 0.0)
        if m2s > self._max:
            self._max = m2s
            self._warning = False
        elif ne > self._warm:
            level = m2s / self._max
            if level < self._beta:
                self._restart()
            else:
                self._warning = level < self._alpha
        return self

    def _scan(self, chunk: np.ndarray) -> int:
        n0, size = self._n, chunk.size
        pos = np.flatnonzero(chunk)
        if not pos.size:
            self._n = n0 + size
            return -1
        at = (pos + (n0 + 1)).astype(np.float64)  # the count n at each error
        d = np.diff(at, prepend=float(self._last))
        sd = np.cumsum(np.concatenate(([self._sum_d], d)))[1:]
        sd2 = np.cumsum(np.concatenate(([self._sum_d2], d * d)))[1:]
        ne = np.arange(self._n_errors + 1, self._n_errors + pos.size + 1, dtype=np.float64)
        mean = sd / ne
        var = np.where(ne > 1.0, (sd2 - sd * mean) / np.maximum(ne - 1.0, 1.0), 0.0)
        m2s = mean + 2.0 * np.sqrt(np.where(var > 0.0, var, 0.0))
        tracked = at > self._warm
        run_max = np.maximum.accumulate(
            np.concatenate(([self._max], np.where(tracked, m2s, -np.inf)))
        )
        prev_max, run_max = run_max[:-1], run_max[1:]
        new_max = tracked & (m2s > prev_max)
        judged = tracked & ~new_max & (ne > self._warm)
        with np.errstate(divide="ignore", invalid="ignore"):
            level = m2s / prev_max
        hits = np.flatnonzero(judged & (level < self._beta))
        if hits.size:
            j = int(hits[0])
            self._n = n0 + int(pos[j]) + 1
            self._restart()
            return int(pos[j])
        self._n = n0 + size
        self._n_errors += pos.size
        self._last = int(at[-1])
        self._sum_d = float(sd[-1])
        self._sum_d2 = float(sd2[-1])
        self._max = float(run_max[-1])
        # The warning state is that of the last error that changed it.
        changed = np.flatnonzero(new_max | judged)
        if changed.size:
            j = int(changed[-1])
            self._warning = bool(judged[j] and level[j] < self._alpha)
        return -1
