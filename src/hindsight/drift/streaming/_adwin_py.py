"""ADWIN's per-value state machine in Python: the twin of the compiled ``_adwin_core.c``.

:class:`PyCore` is what ``ADWIN.update`` runs where the C extension was not built (no
compiler at install time). Both cores keep the same state and do the same floating-point
operations in the same order, so their detections and state are bit for bit the same,
and those of ``ADWIN.update_many``; :func:`bucket_counts` and :func:`cuts` are shared
with that vectorised path. The tests run every stream through both cores.

Each core is made with its owner (what ``update`` returns: the detector), the slow-path
converter for values that are not finite floats, and ADWIN's parameters; it exposes
``update``, ``drift_detected``, ``n_seen``, ``n_detections``, ``width``, ``reset`` and
``get_state``/``set_state`` (a :data:`State` tuple, for ``update_many``, pickling and
the properties).
"""

from __future__ import annotations

import bisect
import functools
import math
import operator
from collections.abc import Callable
from itertools import accumulate
from typing import Any

import numpy as np

from hindsight.drift.streaming.base import non_finite_error, to_float

__all__ = ["PyCore", "State", "as_float", "bucket_counts", "cuts"]

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


def cuts(n0: np.ndarray, sb: np.ndarray, w: Any, sw: Any, v: Any, dd: Any, mwl: float) -> np.ndarray:
    """Whether the ADWIN bound is broken at each split (PyCore, update_many; C does the same).

    ``w``, ``sw``, ``v`` and ``dd`` are floats for one tick or ``(ticks, 1)`` arrays.
    """
    n1 = w - n0
    diff = np.abs(sb / n0 - (sw - sb) / n1)
    m = 1.0 / (n0 - (mwl - 1.0)) + 1.0 / (n1 - (mwl - 1.0))
    eps = np.sqrt(2.0 * m * v * dd) + (2.0 / 3.0 * dd) * m
    result: np.ndarray = diff > eps
    return result


def as_float(x: Any) -> float:
    """``x`` as a finite float, or ADWIN's error (the slow path of ``update`` in both cores)."""
    if type(x) is not float:
        x = to_float("ADWIN", x)
    if x - x:
        raise non_finite_error("ADWIN", x)
    return x


# A state as both cores export it: (buffer, bucket ends and the running sums there, oldest
# first, width, shift, shifted sum, shifted sum of squares, n_before, drift_at, n_detections).
State = tuple[list[float], list[int], list[float], int, float, float, float, int, int, int]


class PyCore:
    """ADWIN's per-value state machine in Python: the twin of the compiled ``_adwin_core.Core``.

    Used where the extension was not built. The histogram is kept as rows of buckets of
    one size (row ``i`` holds buckets of ``2**i`` values, oldest first), each a list of
    end sums and one of end positions.
    """

    __slots__ = (
        "_buf",
        "_c",
        "_clock",
        "_convert",
        "_delta",
        "_drift_at",
        "_grace",
        "_m",
        "_mwl",
        "_n_before",
        "_n_detections",
        "_owner",
        "_pos",
        "_q",
        "_rows",
        "_s",
        "_w",
    )

    _buf: list[float]
    _rows: list[list[float]]
    _pos: list[list[int]]

    def __init__(
        self,
        owner: Any,
        convert: Callable[[Any], float],
        delta: float,
        clock: int,
        max_buckets: int,
        min_window_length: int,
        grace_period: int,
    ) -> None:
        self._owner = owner
        self._convert = convert
        self._delta = delta
        self._clock = clock
        self._m = max_buckets
        self._mwl = min_window_length
        self._grace = grace_period
        self.reset()

    def reset(self) -> None:
        self._n_before = 0
        self._drift_at = -1
        self._n_detections = 0
        self._clear_window()

    def _clear_window(self) -> None:
        self._buf = []
        self._rows = []
        self._pos = []
        self._w = 0
        self._c = 0.0
        self._s = 0.0
        self._q = 0.0

    @property
    def drift_detected(self) -> bool:
        return self._drift_at == self._n_before + self._w + len(self._buf)

    @property
    def n_seen(self) -> int:
        return self._n_before + self._w + len(self._buf)

    @property
    def n_detections(self) -> int:
        return self._n_detections

    @property
    def width(self) -> int:
        return self._w + len(self._buf)

    def get_state(self) -> State:
        ends = [p for row in reversed(self._pos) for p in row]
        sums = [x for row in reversed(self._rows) for x in row]
        return (
            list(self._buf), ends, sums, self._w, self._c, self._s, self._q,
            self._n_before, self._drift_at, self._n_detections,
        )  # fmt: skip

    def set_state(self, state: State) -> None:
        buf, ends, sums, w, c, s, q, n_before, drift_at, n_detections = state
        rows: list[list[float]] = []
        rows_pos: list[list[int]] = []
        start = len(ends)
        for count in bucket_counts(w, self._m):  # rows from the newest, at the end of ends
            rows.append(list(sums[start - count : start]))
            rows_pos.append(list(ends[start - count : start]))
            start -= count
        self._buf = list(buf)
        self._rows, self._pos = rows, rows_pos
        self._w, self._c, self._s, self._q = w, c, s, q
        self._n_before, self._drift_at, self._n_detections = n_before, drift_at, n_detections

    def update(self, x: Any) -> Any:
        if type(x) is not float or x - x:
            x = self._convert(x)
        buf = self._buf
        buf.append(x)
        if len(buf) == self._clock:
            self._tick()
        return self._owner

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
        self._buf = []
        self._absorb(ends[1:], list(range(w0 + 1, w + 1)))
        if w > self._grace and self._cut(w, s, q):
            self._n_before += w
            self._drift_at = self._n_before
            self._n_detections += 1
            self._clear_window()

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
        return bool(cuts(n0, sb, float(w), s, v, dd, float(mwl)).any())
