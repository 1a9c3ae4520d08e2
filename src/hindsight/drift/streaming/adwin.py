"""ADWIN, the ADaptive WINdowing detector (Bifet & Gavaldà, 2007).

ADWIN keeps the values since its last drift in an exponential histogram: buckets of
1, 2, 4, ... values, at most ``max_buckets`` of each size, two of a size merged into one
of the next as values arrive, so ``W`` values take ``O(max_buckets * log W)`` memory.
Every ``clock`` values (once the window holds more than ``grace_period``) it splits the
window at each bucket boundary into an older part of ``n0`` values and a newer one of
``n1`` and signals a drift when, for some split, the two means differ by more than

    eps = sqrt(2 m v dd) + 2/3 dd m,   m = 1/(n0 - mwl + 1) + 1/(n1 - mwl + 1),
    dd = ln(2 ln(W) / delta)

with ``v`` the variance of the window and ``mwl`` the ``min_window_length`` below which
a part is not judged (the ADWIN2 bound as MOA and River state it).

How this implementation is laid out, and why:

* A bucket keeps the running sum of the window at its end rather than its own total,
  so merging two buckets is dropping a boundary, and the sum of any older part is read
  off directly. The variance comes from the running sums of values and squares (taken
  around the window's first value, so large offsets cost no precision).
* Values wait in a buffer and enter the histogram ``clock`` at a time, in one pass of
  C-level operations per tick; the checks at all boundaries are one set of NumPy
  operations.
* Which boundaries exist depends only on how many values the window holds, so
  :meth:`ADWIN.update_many` computes them for many ticks at once and runs the checks of
  a whole chunk of ticks as 2-D NumPy operations, with the running sums from
  ``cumsum``: the same numbers in the same order as :meth:`ADWIN.update`.
"""

from __future__ import annotations

import bisect
import functools
import math
import operator
from itertools import accumulate
from typing import Any, Self

import numpy as np

from hindsight._validation import Interval
from hindsight.drift.streaming.base import Param, StreamingDetector, non_finite_error, to_float

__all__ = ["ADWIN", "bucket_counts"]

_add = operator.add
_mul = operator.mul
_log = math.log


def bucket_counts(width: int, max_buckets: int) -> list[int]:
    """How many buckets of size ``2**i`` a window of ``width`` values holds, for each ``i``.

    A row that reaches ``max_buckets + 1`` buckets merges its two oldest into one of the
    next row, so after ``L`` arrivals a row keeps ``L`` buckets if ``L <= max_buckets``,
    else ``max_buckets`` or ``max_buckets - 1`` (by the parity of ``L - max_buckets``),
    and passes half the rest on.
    """
    counts = []
    rest = width
    while rest:
        c = rest if rest <= max_buckets else max_buckets - ((rest - max_buckets) & 1)
        counts.append(c)
        rest = (rest - c) >> 1
    return counts


def _ends(counts: list[int]) -> list[int]:
    """Where each bucket ends (values from the oldest), oldest bucket first."""
    sizes: list[int] = []
    for i in range(len(counts) - 1, -1, -1):
        sizes += [1 << i] * counts[i]
    return list(accumulate(sizes))


def _cuts(n0: np.ndarray, sb: np.ndarray, w: Any, sw: Any, v: Any, dd: Any, mwl: float) -> np.ndarray:
    """Whether the ADWIN bound is broken at each split (shared by both paths, bit for bit).

    ``w``, ``sw``, ``v`` and ``dd`` are floats for one tick or ``(ticks, 1)`` arrays.
    """
    n1 = w - n0
    diff = np.abs(sb / n0 - (sw - sb) / n1)
    m = 1.0 / (n0 - (mwl - 1.0)) + 1.0 / (n1 - (mwl - 1.0))
    eps = np.sqrt(2.0 * m * v * dd) + (2.0 / 3.0 * dd) * m
    result: np.ndarray = diff > eps
    return result


class ADWIN(StreamingDetector):
    """Adaptive windowing: a drift when two parts of the recent window have different means.

    Parameters and defaults are River's: ``delta`` is the confidence (smaller, fewer
    false alarms and later detections), the cut is checked every ``clock`` values once
    the window holds more than ``grace_period``, at most ``max_buckets`` buckets of a
    size are kept, and a part shorter than ``min_window_length`` is not judged.

    After a drift the window is emptied, as River does (the paper instead keeps the
    part after the cut); ``width``, ``mean`` and ``variance`` describe the values since.

    >>> import random
    >>> rng = random.Random(12345)
    >>> stream = [rng.gauss(0, 1) for _ in range(1000)]
    >>> stream += [rng.gauss(1, 1) for _ in range(1000)]
    >>> adwin = ADWIN()
    >>> for i, x in enumerate(stream):
    ...     if adwin.update(x).drift_detected:
    ...         print(f"change detected at {i}")
    change detected at 1055
    >>> adwin.width
    944
    """

    __slots__ = (
        "_buf",
        "_c",
        "_clock",
        "_delta",
        "_grace",
        "_m",
        "_mwl",
        "_pos",
        "_q",
        "_rows",
        "_s",
        "_w",
    )

    name = "adwin"
    _max_chunk = 8192
    _constraints = {
        "delta": Interval(float, 0.0, 1.0, closed="neither"),
        "clock": Interval(int, 1, None),
        "max_buckets": Interval(int, 2, None),
        "min_window_length": Interval(int, 1, None),
        "grace_period": Interval(int, 1, None),
    }

    delta = Param[float]()
    clock = Param[int]()
    max_buckets = Param[int]()
    min_window_length = Param[int]()
    grace_period = Param[int]()

    _buf: list[float]
    _rows: list[list[float]]
    _pos: list[list[int]]

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        self._set_params(
            delta=delta,
            clock=clock,
            max_buckets=max_buckets,
            min_window_length=min_window_length,
            grace_period=grace_period,
        )

    def _clear(self) -> None:
        p = self._params
        self._delta = float(p["delta"])
        self._clock = int(p["clock"])
        self._m = int(p["max_buckets"])
        self._mwl = int(p["min_window_length"])
        self._grace = int(p["grace_period"])
        self._buf = []
        self._rows = []
        self._pos = []
        self._w = 0
        self._c = 0.0
        self._s = 0.0
        self._q = 0.0

    # -- counting: values wait in the buffer between ticks ------------------------

    @property
    def drift_detected(self) -> bool:
        """Whether the last value fed completed a drift."""
        return self._drift_at == self._n_before + self._w + len(self._buf)

    @property
    def n_seen(self) -> int:
        """How many values were fed since the detector was made or :meth:`reset`."""
        return self._n_before + self._w + len(self._buf)

    # -- the window ---------------------------------------------------------------

    def _sums(self) -> tuple[int, float, float, float]:
        """(width, shift, shifted sum, shifted sum of squares) including buffered values."""
        buf = self._buf
        c = self._c if self._w else (buf[0] if buf else 0.0)
        s, q = self._s, self._q
        for x in buf:
            y = x - c
            s += y
            q += y * y
        return self._w + len(buf), c, s, q

    @property
    def width(self) -> int:
        """How many values the window holds (the values since the last drift)."""
        return self._w + len(self._buf)

    @property
    def mean(self) -> float:
        """Mean of the window (0 when empty)."""
        w, c, s, _ = self._sums()
        return c + s / w if w else 0.0

    @property
    def variance(self) -> float:
        """Population variance of the window (0 when empty)."""
        w, _, s, q = self._sums()
        return max((q - s * s / w) / w, 0.0) if w else 0.0

    @property
    def n_buckets(self) -> int:
        """How many buckets the histogram holds (values still buffered not counted)."""
        return sum(map(len, self._rows))

    # -- feeding -------------------------------------------------------------------

    def update(self, x: float) -> Self:
        """Feed one value; read :attr:`drift_detected` afterwards."""
        if type(x) is not float:
            x = to_float("ADWIN", x)
        if x - x:
            raise non_finite_error("ADWIN", x)
        buf = self._buf
        buf.append(x)
        if len(buf) == self._clock:
            self._tick()
        return self

    def _tick(self) -> None:
        """Move the buffered values into the histogram and check for a cut."""
        buf = self._buf
        w0 = self._w
        if not w0:
            self._c = buf[0]
        c = self._c
        ys = [x - c for x in buf]
        ends = list(accumulate(ys, _add, initial=self._s))
        s = ends[-1]
        q = functools.reduce(_add, map(_mul, ys, ys), self._q)
        w = w0 + len(buf)
        self._w = w
        self._s = s
        self._q = q
        self._n = w
        self._buf = []
        self._absorb(ends[1:], list(range(w0 + 1, w + 1)))
        if w > self._grace and self._cut(w, s, q):
            self._restart()

    def _absorb(self, sums: list[float], positions: list[int]) -> None:
        """Add buckets of one value (their end sums and positions) and merge full rows."""
        rows, rows_pos = self._rows, self._pos
        if not rows:
            rows.append([])
            rows_pos.append([])
        row, row_pos = rows[0], rows_pos[0]
        row.extend(sums)
        row_pos.extend(positions)
        m = self._m
        i = 0
        while len(row) > m:
            k = 2 * ((len(row) - m + 1) // 2)
            moved = row[1:k:2]  # a merged pair ends where its newer bucket did
            moved_pos = row_pos[1:k:2]
            del row[:k]
            del row_pos[:k]
            i += 1
            if i == len(rows):
                rows.append([])
                rows_pos.append([])
            row, row_pos = rows[i], rows_pos[i]
            row.extend(moved)
            row_pos.extend(moved_pos)

    def _cut(self, w: int, s: float, q: float) -> bool:
        """Whether some boundary splits the window into parts with different means."""
        flat_pos: list[int] = []
        for row_pos in reversed(self._pos):
            flat_pos += row_pos
        mwl = self._mwl
        lo = bisect.bisect_left(flat_pos, mwl)
        hi = bisect.bisect_right(flat_pos, w - mwl)
        if lo >= hi:
            return False
        flat: list[float] = []
        for row in reversed(self._rows):
            flat += row
        v = (q - s * s / w) / w
        v = v if v > 0.0 else 0.0
        dd = _log(2.0 * _log(w) / self._delta)
        n0 = np.array(flat_pos[lo:hi], dtype=np.float64)
        sb = np.array(flat[lo:hi])
        return bool(_cuts(n0, sb, float(w), s, v, dd, float(mwl)).any())

    def _scan(self, chunk: np.ndarray) -> int:
        clock, m, mwl = self._clock, self._m, self._mwl
        pending = len(self._buf)
        vals = np.concatenate((np.asarray(self._buf, dtype=np.float64), chunk))
        ticks = vals.size // clock
        if not ticks:
            self._buf = vals.tolist()
            return -1
        w0 = self._w
        if not w0:
            self._c = float(vals[0])
        used = ticks * clock
        ys = vals[:used] - self._c
        sums = np.cumsum(np.concatenate(([self._s], ys)))  # sums[p - w0]: sum at position p
        sq = np.cumsum(np.concatenate(([self._q], ys * ys)))
        at = np.arange(1, ticks + 1) * clock  # offsets of the ticks from w0
        w = w0 + at
        old_ends = np.array([p for row in reversed(self._pos) for p in row], dtype=np.int64)
        old_vals = np.array([x for row in reversed(self._rows) for x in row], dtype=np.float64)

        def sums_at(pos: np.ndarray) -> np.ndarray:
            out = sums[np.clip(pos - w0, 0, used)]
            old = pos <= w0
            if w0 and old.any():
                out[old] = old_vals[np.searchsorted(old_ends, pos[old])]
            return out

        judged = w > self._grace
        hit = -1
        if judged.any():
            first = int(np.argmax(judged))
            tw = w[first:]
            pos, valid = _boundaries(tw, m)
            valid &= (pos >= mwl) & (tw[:, None] - pos >= mwl)
            sw = sums[at[first:]][:, None]
            wf = tw.astype(np.float64)[:, None]
            v = (sq[at[first:]][:, None] - sw * sw / wf) / wf
            v = np.where(v > 0.0, v, 0.0)
            dd = np.array([_log(2.0 * _log(x) / self._delta) for x in tw.tolist()])[:, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                cut = _cuts(pos.astype(np.float64), sums_at(pos), wf, sw, v, dd, float(mwl))
            fired = (cut & valid).any(axis=1)
            if fired.any():
                hit = first + int(np.argmax(fired))
        if hit >= 0:
            self._n = int(w[hit])
            self._w = int(w[hit])
            self._restart()
            return int(at[hit]) - 1 - pending
        wn = int(w[-1])
        counts = bucket_counts(wn, m)
        ends = _ends(counts)
        flat = sums_at(np.array(ends, dtype=np.int64)).tolist()
        rows: list[list[float]] = []
        rows_pos: list[list[int]] = []
        start = len(flat)
        for c in counts:  # rows from the newest (size 1), which sit at the end of flat
            rows.append(flat[start - c : start])
            rows_pos.append(ends[start - c : start])
            start -= c
        self._rows = rows
        self._pos = rows_pos
        self._w = wn
        self._n = wn
        self._s = float(sums[used])
        self._q = float(sq[used])
        self._buf = vals[used:].tolist()
        return -1


def _boundaries(w: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Bucket end positions for windows of each width in ``w`` (one row each), and a mask.

    Columns run over rows of the histogram from the largest buckets down, ``m`` slots
    each; the window's own end is left out of the mask.
    """
    counts = []
    rest = w.astype(np.int64)
    while rest.any():
        c = np.where(rest <= m, rest, m - ((rest - m) & 1))
        counts.append(c)
        rest = (rest - c) >> 1
    slot = np.arange(1, m + 1, dtype=np.int64)
    offset = np.zeros(w.size, dtype=np.int64)
    pos_parts, mask_parts = [], []
    for i in range(len(counts) - 1, -1, -1):
        pos_parts.append(offset[:, None] + (slot << i)[None, :])
        mask_parts.append(slot[None, :] <= counts[i][:, None])
        offset = offset + (counts[i] << i)
    pos = np.concatenate(pos_parts, axis=1)
    mask = np.concatenate(mask_parts, axis=1) & (pos < w[:, None])
    return pos, mask
