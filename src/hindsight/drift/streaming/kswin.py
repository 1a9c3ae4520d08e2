"""KSWIN: a Kolmogorov-Smirnov test inside a sliding window (Raab, Heusinger & Schleif, 2020).

The last ``window_size`` values are kept. Once the window is full, every new value
tests its last ``stat_size`` values against ``stat_size`` values drawn at random
(without replacement) from the older part, with the two-sample KS test; a p-value at
or below ``alpha`` is a drift.

Both samples have ``r = stat_size`` values, so the statistic is ``j / r`` for an integer
``j`` and the exact p-value (SciPy's ``ks_2samp(method="exact")``, which River uses too)
depends on ``j`` alone: ``p <= alpha`` is ``j >= j_crit`` for one ``j_crit`` found once.
Whether ``j >= j_crit`` needs no statistic either: with both samples sorted, the empirical
CDFs differ by ``j`` or more exactly when ``R[i] > S[i + j - 1]`` (or ``S[i] > R[i + j - 1]``)
for some ``i``, which is two passes of C-level comparisons per value instead of a call to
SciPy. The statistic and p-value themselves are computed when read.
"""

from __future__ import annotations

import bisect
import functools
import operator
from typing import Self

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import stats

from hindsight._validation import Interval
from hindsight.drift.streaming.base import Param, StreamingDetector, non_finite_error, to_float
from hindsight.errors import ConfigError

__all__ = ["KSWIN", "ks_exact_pvalue"]

# Random samples are drawn in blocks of this many tests.
_BLOCK = 512
_gt = operator.gt


@functools.lru_cache(maxsize=1024)
def ks_exact_pvalue(j: int, r: int) -> float:
    """The exact two-sided p-value of a KS statistic ``j / r`` between two samples of ``r``."""
    if j <= 0:
        return 1.0
    base = np.arange(r, dtype=np.float64)
    # Two samples whose empirical CDFs differ by exactly j / r at most.
    return float(stats.ks_2samp(base, base + j, method="exact").pvalue)


@functools.lru_cache(maxsize=64)
def _critical_j(alpha: float, r: int) -> int:
    """The smallest ``j`` whose exact p-value is at most ``alpha`` (``r + 1`` if none)."""
    lo, hi = 1, r + 1  # the p-value falls as j grows
    while lo < hi:
        mid = (lo + hi) // 2
        if ks_exact_pvalue(mid, r) <= alpha:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _ks_j(s: list[float], rec: list[float]) -> int:
    """``r`` times the KS statistic of two sorted samples of ``r`` values (ties exact)."""
    br = bisect.bisect_right
    up = max(k + 1 - br(rec, v) for k, v in enumerate(s))
    down = max(k + 1 - br(s, v) for k, v in enumerate(rec))
    return max(up, down, 0)


class KSWIN(StreamingDetector):
    """Kolmogorov-Smirnov windowing: the newest values against a random draw of older ones.

    ``window_size`` and ``stat_size`` are River's 100 and 30 (the window must hold at
    least twice ``stat_size``). ``alpha`` defaults to 0.0001, the value River's own
    example uses, rather than River's default 0.005: a test runs at every value, and
    at 0.005 a stationary stream of 10,000 values raises about 13 false alarms (at 0.0001, about 0.6). The
    draws come from ``numpy.random.default_rng(seed)``; :meth:`reset` starts them again.

    After a drift the window is emptied, as River does, and fills again before the
    next test; the random draws go on where they were.

    >>> import random
    >>> rng = random.Random(0)
    >>> stream = [rng.gauss(0, 1) for _ in range(1000)]
    >>> stream += [rng.gauss(1.5, 1) for _ in range(1000)]
    >>> kswin = KSWIN(seed=42)
    >>> for i, x in enumerate(stream):
    ...     if kswin.update(x).drift_detected:
    ...         print(f"change at {i}: statistic {kswin.statistic:.3f}, p {kswin.p_value:.1e}")
    change at 1019: statistic 0.567, p 8.7e-05
    """

    __slots__ = (
        "_jc",
        "_next_draw",
        "_old",
        "_pool",
        "_pool_list",
        "_r",
        "_r_last",
        "_rec",
        "_rng",
        "_s_last",
        "_w",
        "_win",
    )

    name = "kswin"
    _max_chunk = 8192
    _constraints = {
        "alpha": Interval(float, 0.0, 1.0, closed="neither"),
        "window_size": Interval(int, 2, None),
        "stat_size": Interval(int, 1, None),
        "seed": Interval(int, 0, None, allow_none=True),
    }

    alpha = Param[float]()
    window_size = Param[int]()
    stat_size = Param[int]()
    seed = Param[int | None]()

    _win: list[float]
    _rec: list[float]
    _pool_list: list[list[int]] | None
    _s_last: list[float] | None
    _r_last: list[float] | None

    def __init__(
        self,
        alpha: float = 0.0001,
        window_size: int = 100,
        stat_size: int = 30,
        seed: int | None = None,
    ) -> None:
        self._set_params(alpha=alpha, window_size=window_size, stat_size=stat_size, seed=seed)
        if window_size < 2 * stat_size:
            raise ConfigError(
                "The 'window_size' parameter of KSWIN must be at least twice 'stat_size' "
                f"(the older part is sampled without replacement). Got window_size="
                f"{window_size!r}, stat_size={stat_size!r}."
            )

    def reset(self) -> None:
        """Forget everything, and start the random draws again from ``seed``."""
        p = self._params
        self._r = int(p["stat_size"])
        self._w = int(p["window_size"])
        self._old = self._w - self._r
        self._jc = _critical_j(float(p["alpha"]), self._r)
        self._rng = np.random.default_rng(p["seed"])
        self._pool = np.empty((0, self._r), dtype=np.intp)
        self._pool_list = None
        self._next_draw = 0
        self._s_last = None
        self._r_last = None
        super().reset()

    def _clear(self) -> None:
        self._win = []
        self._rec = []

    @property
    def statistic(self) -> float | None:
        """The KS statistic of the last test (``None`` before the first)."""
        if self._s_last is None or self._r_last is None:
            return None
        return _ks_j(self._s_last, self._r_last) / self._r

    @property
    def p_value(self) -> float | None:
        """The exact p-value of the last test (``None`` before the first)."""
        if self._s_last is None or self._r_last is None:
            return None
        return ks_exact_pvalue(_ks_j(self._s_last, self._r_last), self._r)

    @property
    def window(self) -> list[float]:
        """The values in the window, oldest first."""
        return list(self._win)

    def _refill(self, rows: int) -> None:
        """Make at least ``rows`` unused draws available."""
        have = self._pool.shape[0] - self._next_draw
        if have >= rows:
            return
        blocks = [self._pool[self._next_draw :]]
        while have < rows:
            keys = self._rng.random((_BLOCK, self._old))
            blocks.append(np.argpartition(keys, self._r - 1, axis=1)[:, : self._r])
            have += _BLOCK
        self._pool = np.concatenate(blocks)
        self._pool_list = None
        self._next_draw = 0

    def update(self, x: float) -> Self:
        """Feed one value; read :attr:`drift_detected` afterwards."""
        if type(x) is not float:
            x = to_float("KSWIN", x)
        if x - x:
            raise non_finite_error("KSWIN", x)
        self._n += 1
        win = self._win
        rec = self._rec
        win.append(x)
        r = self._r
        if len(win) > r:  # the value leaving the recent part
            del rec[bisect.bisect_left(rec, win[-r - 1])]
        bisect.insort(rec, x)
        if len(win) < self._w:
            return self
        if len(win) > self._w:
            del win[0]
        pos = self._next_draw
        if self._pool_list is None or pos >= len(self._pool_list):
            self._refill(1)
            self._pool_list = self._pool.tolist()
            pos = self._next_draw
        self._next_draw = pos + 1
        s = sorted(map(win.__getitem__, self._pool_list[pos]))
        self._s_last = s
        self._r_last = list(rec)
        j = self._jc
        k = r - j + 1
        if k > 0 and (any(map(_gt, rec[:k], s[j - 1 :])) or any(map(_gt, s[:k], rec[j - 1 :]))):
            self._restart()
        return self

    def _scan(self, chunk: np.ndarray) -> int:
        w, r, old = self._w, self._r, self._old
        m = len(self._win)
        ext = np.concatenate((np.asarray(self._win, dtype=np.float64), chunk))
        first = max(m, w - 1)  # index in ext of the first value that completes a full window
        tests = ext.size - first
        hit = -1
        if tests > 0:
            self._refill(tests)
            windows = sliding_window_view(ext, w)[first - w + 1 :]
            draws = self._pool[self._next_draw : self._next_draw + tests]
            s = np.take_along_axis(windows[:, :old], draws, axis=1)
            s.sort(axis=1)
            rec = np.sort(windows[:, old:], axis=1)
            j = self._jc
            k = r - j + 1
            if k > 0:
                fired = (rec[:, :k] > s[:, j - 1 :]).any(axis=1)
                fired |= (s[:, :k] > rec[:, j - 1 :]).any(axis=1)
                hits = np.flatnonzero(fired)
                hit = int(hits[0]) if hits.size else -1
            last = hit if hit >= 0 else tests - 1
            self._next_draw += last + 1
            self._s_last = s[last].tolist()
            self._r_last = rec[last].tolist()
        if hit >= 0:
            self._n += first + hit - m + 1
            self._restart()
            return first + hit - m
        self._n += chunk.size
        self._win = ext[-w:].tolist()
        self._rec = sorted(self._win[-r:])
        return -1
