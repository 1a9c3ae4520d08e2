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
* Values wait in a buffer and enter the histogram ``clock`` at a time. That per-value
  state machine is the *core*: compiled (``_adwin_core.c``) where a C compiler was there
  at install time, so that ``update`` costs one C call, else its Python twin
  (``_adwin_py.PyCore``). Both do the same floating-point operations in the same order;
  :data:`COMPILED` says which one runs.
* Which boundaries exist depends only on how many values the window holds, so
  :meth:`ADWIN.update_many` computes them for many ticks at once and runs the checks of
  a whole chunk of ticks as 2-D NumPy operations, with the running sums from
  ``cumsum``: the same numbers in the same order as :meth:`ADWIN.update`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import accumulate
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from hindsight._validation import Interval
from hindsight.drift.streaming._adwin_py import PyCore, as_float, bucket_counts, cuts
from hindsight.drift.streaming.base import Param, StreamingDetector

try:
    from hindsight.drift.streaming._adwin_core import Core as _CCore
except ImportError:  # built without a C compiler: PyCore does the same, more slowly
    _CCore = None  # type: ignore[assignment,misc]

__all__ = ["ADWIN", "COMPILED", "bucket_counts"]

_log = math.log

#: Whether ``ADWIN.update`` runs compiled (the ``_adwin_core`` extension was built).
COMPILED = _CCore is not None


def _ends(counts: list[int]) -> list[int]:
    """Where each bucket ends (values from the oldest), oldest bucket first."""
    sizes: list[int] = []
    for i in range(len(counts) - 1, -1, -1):
        sizes += [1 << i] * counts[i]
    return list(accumulate(sizes))


class _CoreMethod:
    """``ADWIN.update`` on an instance: the core's own ``update``, with no Python frame per value.

    The core returns its owner, so ``detector.update(x)`` still returns the detector. On
    the class it is the plain function (for ``help`` and ``inspect``).
    """

    def __init__(self, func: Callable[..., Any]) -> None:
        self.__func__ = func
        self.__doc__ = func.__doc__

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self.__func__
        return obj._core.update


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

    # The core holds all the state, counters included (the base class's counter slots
    # stay at their reset values); it lives as long as the detector, so an ``update``
    # bound before a reset keeps feeding it.
    __slots__ = ("_core",)

    name = "adwin"
    _max_chunk = 8192
    _constraints = {
        "delta": Interval(float, 0.0, 1.0, closed="neither"),
        "clock": Interval(int, 1, None),
        "max_buckets": Interval(int, 2, None),
        "min_window_length": Interval(int, 1, None),
        "grace_period": Interval(int, 1, None),
    }
    #: The state machine behind ``update``: compiled where the extension was built.
    _core_type: ClassVar[Callable[..., Any]] = PyCore if _CCore is None else _CCore

    delta = Param[float]()
    clock = Param[int]()
    max_buckets = Param[int]()
    min_window_length = Param[int]()
    grace_period = Param[int]()

    _core: Any

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

    def _make_core(self) -> Any:
        p = self._params
        # Past 2**40 a count is never reached by a stream; the compiled core takes int64s.
        big = 1 << 40
        return self._core_type(
            self,
            as_float,
            float(p["delta"]),
            min(int(p["clock"]), big),
            min(int(p["max_buckets"]), big),
            min(int(p["min_window_length"]), big),
            min(int(p["grace_period"]), big),
        )

    def _clear(self) -> None:
        try:
            core = self._core
        except AttributeError:
            self._core = self._make_core()
        else:
            core.reset()

    def __getstate__(self) -> dict[str, Any]:
        return {"params": self._params, "core": self._core.get_state()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._params = dict(state["params"])
        StreamingDetector.reset(self)
        self._core.set_state(state["core"])

    # -- counting: the core counts ------------------------------------------------

    @property
    def drift_detected(self) -> bool:
        """Whether the last value fed completed a drift."""
        detected: bool = self._core.drift_detected
        return detected

    @property
    def n_seen(self) -> int:
        """How many values were fed since the detector was made or :meth:`reset`."""
        n: int = self._core.n_seen
        return n

    @property
    def n_detections(self) -> int:
        """How many drifts were detected since the detector was made or :meth:`reset`."""
        n: int = self._core.n_detections
        return n

    # -- the window ---------------------------------------------------------------

    def _sums(self) -> tuple[int, float, float, float]:
        """(width, shift, shifted sum, shifted sum of squares) including buffered values."""
        buf, _, _, w, c, s, q, *_ = self._core.get_state()
        if not w:
            c = buf[0] if buf else 0.0
        for x in buf:
            y = x - c
            s += y
            q += y * y
        return w + len(buf), c, s, q

    @property
    def width(self) -> int:
        """How many values the window holds (the values since the last drift)."""
        width: int = self._core.width
        return width

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
        return len(self._core.get_state()[1])

    # -- feeding -------------------------------------------------------------------

    if TYPE_CHECKING:

        def update(self, x: float) -> Self:
            """Feed one value; read :attr:`drift_detected` afterwards."""
            ...

    else:

        @_CoreMethod
        def update(self, x):
            """Feed one value; read :attr:`drift_detected` afterwards."""
            return self._core.update(x)

    def _scan(self, chunk: np.ndarray) -> int:
        core = self._core
        buf, old_end_list, old_sum_list, w0, c0, s0, q0, n_before, drift_at, n_det = (
            core.get_state()
        )
        clock, m, mwl = self.clock, self.max_buckets, self.min_window_length
        pending = len(buf)
        vals = np.concatenate((np.asarray(buf, dtype=np.float64), chunk))
        ticks = vals.size // clock
        if not ticks:
            core.set_state(
                (vals.tolist(), old_end_list, old_sum_list, w0, c0, s0, q0,
                 n_before, drift_at, n_det)
            )  # fmt: skip
            return -1
        c = c0 if w0 else float(vals[0])
        used = ticks * clock
        ys = vals[:used] - c
        sums = np.cumsum(np.concatenate(([s0], ys)))  # sums[p - w0]: sum at position p
        sq = np.cumsum(np.concatenate(([q0], ys * ys)))
        at = np.arange(1, ticks + 1) * clock  # offsets of the ticks from w0
        w = w0 + at
        old_ends = np.array(old_end_list, dtype=np.int64)
        old_vals = np.array(old_sum_list, dtype=np.float64)

        def sums_at(pos: np.ndarray) -> np.ndarray:
            out = sums[np.clip(pos - w0, 0, used)]
            old = pos <= w0
            if w0 and old.any():
                out[old] = old_vals[np.searchsorted(old_ends, pos[old])]
            return out

        judged = w > self.grace_period
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
            delta = float(self.delta)
            dd = np.array([_log(2.0 * _log(x) / delta) for x in tw.tolist()])[:, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                cut = cuts(pos.astype(np.float64), sums_at(pos), wf, sw, v, dd, float(mwl))
            fired = (cut & valid).any(axis=1)
            if fired.any():
                hit = first + int(np.argmax(fired))
        if hit >= 0:
            # A drift restarts the window, as the cores do.
            n_before += int(w[hit])
            core.set_state(([], [], [], 0, 0.0, 0.0, 0.0, n_before, n_before, n_det + 1))
            return int(at[hit]) - 1 - pending
        wn = int(w[-1])
        ends = _ends(bucket_counts(wn, m))
        core.set_state(
            (vals[used:].tolist(), ends, sums_at(np.array(ends, dtype=np.int64)).tolist(),
             wn, c, float(sums[used]), float(sq[used]), n_before, drift_at, n_det)
        )  # fmt: skip
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
