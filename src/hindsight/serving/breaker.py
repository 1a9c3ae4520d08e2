"""A circuit breaker for one tier of a fallback chain.

A tier that keeps failing, answering slowly or abstaining is taken out of the chain for a
while (the breaker *opens*), then tried again with a few probe calls (*half-open*), and
put back (*closed*) only when every probe succeeds. The chain asks :meth:`allow` before
calling a tier and reports every call it let through with :meth:`record`.

Besides its ``on_change`` hook, a breaker tells any number of listeners
(:meth:`CircuitBreaker.add_listener`) of every change as a :class:`BreakerChange`: the
wall-clock time and the breaker's figures *at* the change, taken under its lock before an
opening clears the window, so they show the rates that tripped it. A :class:`Service`
uses one to record every tier's changes in the store (see :mod:`.breaker_events`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from hindsight._validation import Interval, validate_params
from hindsight.errors import ConfigError

__all__ = ["BreakerChange", "CircuitBreaker"]

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"

# One small int per call in the ring buffer: which ways the call went wrong.
_ERROR: Final = 1
_SLOW: Final = 2
_ABSTAIN: Final = 4

_log = logging.getLogger(__name__)

StateChange = Callable[[str, str, str], Any]


@dataclass(frozen=True)
class BreakerChange:
    """One change of a breaker's state, as its listeners (:meth:`CircuitBreaker.add_listener`) see it.

    ``at`` is wall-clock time (:func:`time.time`), unlike the snapshot's ``opened_at``
    (the breaker's own clock). ``snapshot`` is :meth:`CircuitBreaker.snapshot` taken at
    the change with the new state: on an opening, the window's counts and rates that
    tripped it; on a probe's success or failure, the probes issued and succeeded.
    """

    previous: str
    state: str
    reason: str
    at: float
    snapshot: Mapping[str, Any]


ChangeListener = Callable[[BreakerChange], Any]

# What a state change hands from inside the lock to _notify: old, new, reason and, when
# someone listens, the wall time and figures at the change.
_Change = tuple[str, str, str, float | None, dict[str, Any] | None]


class CircuitBreaker:
    """Take a tier out of service when it fails, is slow or abstains too often.

    Windows are **count-based**: the rates are over the last ``window`` calls recorded,
    however long ago they were, never over a span of time. A call counts as an *error*
    when ``ok`` is false, as *slow* when its latency exceeds ``slow_call_ms``, and as an
    *abstention* when the tier declined to answer (``abstained=True``); a call may be
    several of these. Once at least ``min_calls`` are in the window, the breaker opens
    as soon as any rate reaches its threshold. The window is then cleared, so a tier that
    recovers is judged afresh.

    An open breaker refuses every call for ``open_for_s`` seconds, then goes half-open
    on the next :meth:`allow`: it lets ``half_open_probes`` calls through and refuses the
    rest. If every probe succeeds (no error, and neither slow nor abstaining where those
    are tracked) it closes; the first probe that fails opens it again for ``open_for_s``.
    Every call :meth:`allow` let through must be recorded, a timeout as ``ok=False``,
    or a half-open breaker waits for its probes forever. Outcomes recorded while open
    (calls let through before it opened) are ignored.

    All methods are thread-safe and O(1). ``on_change(old, new, reason)`` is called on
    every change of state, outside the lock, then every listener added with
    :meth:`add_listener`; an exception any of them raises is logged, never passed to the
    caller of :meth:`allow` or :meth:`record`, and does not keep the others from running.

    Parameters
    ----------
    window
        How many of the most recent calls the rates are computed over.
    min_calls
        How many calls the window must hold before the breaker judges it; at most ``window``.
    error_rate
        Open when the share of failed calls in the window reaches this.
    slow_call_ms
        A call slower than this many milliseconds is slow; ``None`` ignores latency.
    slow_rate
        Open when the share of slow calls in the window reaches this.
    abstain_rate
        Open when the share of abstentions in the window reaches this; ``None`` ignores them.
    open_for_s
        Seconds an open breaker refuses calls before it lets probes through.
    half_open_probes
        How many trial calls a half-open breaker lets through; all must succeed to close.
    clock
        Returns the time in seconds; :func:`time.monotonic` unless a test injects one.
    on_change
        Called with ``(old_state, new_state, reason)`` whenever the state changes.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(0)
    >>> now = [0.0]
    >>> breaker = CircuitBreaker(window=20, min_calls=10, open_for_s=5.0, clock=lambda: now[0])
    >>> for i in range(60):  # healthy for 30 calls, then 70% of calls fail
    ...     if breaker.allow():
    ...         ok = rng.random() > (0.1 if i < 30 else 0.7)
    ...         breaker.record(ok=ok, latency_ms=rng.uniform(5, 50))
    >>> breaker.state
    'open'
    >>> breaker.reason
    'error rate 0.50 >= 0.50 over the last 20 calls'
    >>> breaker.allow()
    False
    >>> now[0] += 5.0
    >>> [breaker.allow() for _ in range(4)]
    [True, True, True, False]
    >>> for _ in range(3):
    ...     breaker.record(ok=True, latency_ms=12.0)
    >>> breaker.state
    'closed'
    """

    _constraints: Final = {
        "window": Interval(int, 1, None),
        "error_rate": Interval(float, 0, 1, "right"),
        "slow_call_ms": Interval(float, 0, None, "neither", allow_none=True),
        "slow_rate": Interval(float, 0, 1, "right"),
        "abstain_rate": Interval(float, 0, 1, "right", allow_none=True),
        "open_for_s": Interval(float, 0, None),
        "half_open_probes": Interval(int, 1, None),
    }

    def __init__(
        self,
        *,
        window: int = 100,
        min_calls: int = 20,
        error_rate: float = 0.5,
        slow_call_ms: float | None = None,
        slow_rate: float = 0.5,
        abstain_rate: float | None = None,
        open_for_s: float = 5.0,
        half_open_probes: int = 3,
        clock: Callable[[], float] = time.monotonic,
        on_change: StateChange | None = None,
    ) -> None:
        params = {
            "window": window,
            "error_rate": error_rate,
            "slow_call_ms": slow_call_ms,
            "slow_rate": slow_rate,
            "abstain_rate": abstain_rate,
            "open_for_s": open_for_s,
            "half_open_probes": half_open_probes,
        }
        validate_params("CircuitBreaker", params, self._constraints)
        # A min_calls above the window could never be reached, so the breaker would never open.
        validate_params(
            "CircuitBreaker", {"min_calls": min_calls}, {"min_calls": Interval(int, 1, window)}
        )
        if not callable(clock):
            raise ConfigError(
                f"The 'clock' parameter of CircuitBreaker must be a callable. Got {clock!r}."
            )
        if on_change is not None and not callable(on_change):
            raise ConfigError(
                "The 'on_change' parameter of CircuitBreaker must be a callable or None. "
                f"Got {on_change!r}."
            )
        self._window = window
        self._min_calls = min_calls
        self._error_rate = float(error_rate)
        self._slow_call_ms = None if slow_call_ms is None else float(slow_call_ms)
        self._slow_rate = float(slow_rate)
        self._abstain_rate = None if abstain_rate is None else float(abstain_rate)
        self._open_for_s = float(open_for_s)
        self._half_open_probes = half_open_probes
        self._clock = clock
        self._on_change = on_change
        self._listeners: tuple[ChangeListener, ...] = ()
        self._lock = threading.Lock()
        self._ring = [0] * window  # preallocated; _pos is where the next call goes
        with self._lock:
            self._reset_locked()

    # -- parameters (read-only) ---------------------------------------------------------

    @property
    def window(self) -> int:
        """How many of the most recent calls the rates are computed over."""
        return self._window

    @property
    def min_calls(self) -> int:
        """How many calls the window must hold before the breaker judges it."""
        return self._min_calls

    @property
    def error_rate(self) -> float:
        """The share of failed calls that opens the breaker."""
        return self._error_rate

    @property
    def slow_call_ms(self) -> float | None:
        """The latency above which a call is slow, or ``None``."""
        return self._slow_call_ms

    @property
    def slow_rate(self) -> float:
        """The share of slow calls that opens the breaker."""
        return self._slow_rate

    @property
    def abstain_rate(self) -> float | None:
        """The share of abstentions that opens the breaker, or ``None``."""
        return self._abstain_rate

    @property
    def open_for_s(self) -> float:
        """Seconds an open breaker refuses calls before it lets probes through."""
        return self._open_for_s

    @property
    def half_open_probes(self) -> int:
        """How many trial calls a half-open breaker lets through."""
        return self._half_open_probes

    def params(self) -> dict[str, Any]:
        """The parameters as a JSON-serialisable dict (the clock and callback left out)."""
        return {
            "window": self._window,
            "min_calls": self._min_calls,
            "error_rate": self._error_rate,
            "slow_call_ms": self._slow_call_ms,
            "slow_rate": self._slow_rate,
            "abstain_rate": self._abstain_rate,
            "open_for_s": self._open_for_s,
            "half_open_probes": self._half_open_probes,
        }

    # -- listeners ----------------------------------------------------------------------

    def add_listener(self, listener: ChangeListener) -> None:
        """Also call ``listener(change)`` with a :class:`BreakerChange` on every change.

        Listeners run after ``on_change`` (which stays as it was), in the order added, on
        the thread that caused the change: keep them O(1) (queue, do not write).
        """
        if not callable(listener):
            raise ConfigError(
                f"A CircuitBreaker listener must be a callable taking a BreakerChange. "
                f"Got {listener!r}."
            )
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: ChangeListener) -> None:
        """Stop calling ``listener``; one that was never added is ignored."""
        with self._lock:
            self._listeners = tuple(x for x in self._listeners if x != listener)

    # -- state --------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"``.

        An open breaker turns half-open on the first :meth:`allow` after ``open_for_s``,
        so it may read ``"open"`` for longer when no call asks.
        """
        return self._state

    @property
    def reason(self) -> str | None:
        """Why the breaker opened last, or ``None`` if it has not opened since its reset."""
        return self._reason

    def allow(self) -> bool:
        """Whether the tier may be called now; a ``True`` must be followed by :meth:`record`."""
        change = None
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN:
                opened_at = self._opened_at if self._opened_at is not None else -math.inf
                if self._clock() - opened_at < self._open_for_s:
                    return False
                change = self._move_locked(
                    HALF_OPEN,
                    f"open for {self._open_for_s:g} s; letting "
                    f"{self._half_open_probes} probe call(s) through",
                )
            allowed = self._probes_issued < self._half_open_probes
            if allowed:
                self._probes_issued += 1
        self._notify(change)
        return allowed

    def record(self, *, ok: bool, latency_ms: float, abstained: bool = False) -> None:
        """Record how a call that :meth:`allow` let through went."""
        flags = 0 if ok else _ERROR
        if self._slow_call_ms is not None and latency_ms > self._slow_call_ms:
            flags |= _SLOW
        if abstained:
            flags |= _ABSTAIN
        change = None
        with self._lock:
            if self._state == CLOSED:
                change = self._record_closed_locked(flags)
            elif self._state == HALF_OPEN:
                change = self._record_probe_locked(flags, latency_ms)
            # While open, the outcome belongs to a call let through before the breaker
            # opened; the cleared window must not count it.
        self._notify(change)

    def snapshot(self) -> dict[str, Any]:
        """State, reason, counts and rates, for the status endpoint and the prediction log.

        ``opened_at`` is the clock's reading when the breaker last opened (monotonic
        seconds by default, not wall time); ``retry_in_s`` is how long an open breaker
        still refuses calls.
        """
        with self._lock:
            return self._snapshot_locked()

    def reset(self) -> None:
        """Close the breaker and forget every call, the reason and the count of openings."""
        with self._lock:
            old = self._state
            self._reset_locked()
            change = self._change_locked(old, CLOSED, "reset") if old != CLOSED else None
        self._notify(change)

    def __repr__(self) -> str:
        return f"CircuitBreaker(state={self._state!r}, calls={self._n}, reason={self._reason!r})"

    # -- internals (called with the lock held) ------------------------------------------

    def _snapshot_locked(self) -> dict[str, Any]:
        now = self._clock()
        n = self._n
        retry_in_s = None
        if self._state == OPEN and self._opened_at is not None:
            retry_in_s = max(0.0, self._open_for_s - (now - self._opened_at))
        return {
            "state": self._state,
            "reason": self._reason,
            "opened_at": self._opened_at,
            "retry_in_s": retry_in_s,
            "times_opened": self._times_opened,
            "calls": n,
            "errors": self._errors,
            "slow": self._slow,
            "abstained": self._abstained,
            "error_rate": self._errors / n if n else 0.0,
            "slow_rate": self._slow / n if n else 0.0,
            "abstain_rate": self._abstained / n if n else 0.0,
            "probes_issued": self._probes_issued,
            "probes_succeeded": self._probes_succeeded,
        }

    def _reset_locked(self) -> None:
        self._state: str = CLOSED
        self._reason: str | None = None
        self._opened_at: float | None = None
        self._times_opened = 0
        self._clear_window_locked()
        self._probes_issued = 0
        self._probes_succeeded = 0

    def _clear_window_locked(self) -> None:
        # Stale ring entries need no wiping: only the _n entries behind _pos are read.
        self._pos = 0
        self._n = 0
        self._errors = 0
        self._slow = 0
        self._abstained = 0

    def _record_closed_locked(self, flags: int) -> _Change | None:
        if self._n == self._window:
            self._count_locked(self._ring[self._pos], -1)
        else:
            self._n += 1
        self._ring[self._pos] = flags
        self._pos = (self._pos + 1) % self._window
        self._count_locked(flags, +1)
        if self._n < self._min_calls:
            return None
        reason = self._trip_reason_locked()
        return None if reason is None else self._open_locked(reason)

    def _count_locked(self, flags: int, step: int) -> None:
        if flags & _ERROR:
            self._errors += step
        if flags & _SLOW:
            self._slow += step
        if flags & _ABSTAIN:
            self._abstained += step

    def _trip_reason_locked(self) -> str | None:
        # Division, not count >= threshold * n: 0.7 * 10 is 7.000000000000001 in floats.
        n = self._n
        over = f"over the last {n} calls"
        rate = self._errors / n
        if rate >= self._error_rate:
            return f"error rate {rate:.2f} >= {self._error_rate:.2f} {over}"
        if self._slow_call_ms is not None:
            rate = self._slow / n
            if rate >= self._slow_rate:
                return (
                    f"slow-call rate {rate:.2f} >= {self._slow_rate:.2f} {over} "
                    f"(slower than {self._slow_call_ms:g} ms)"
                )
        if self._abstain_rate is not None:
            rate = self._abstained / n
            if rate >= self._abstain_rate:
                return f"abstention rate {rate:.2f} >= {self._abstain_rate:.2f} {over}"
        return None

    def _record_probe_locked(self, flags: int, latency_ms: float) -> _Change | None:
        if self._probes_succeeded >= self._probes_issued:
            return None  # a straggler from before the breaker opened, not a probe
        failure = None
        if flags & _ERROR:
            failure = "error"
        elif flags & _SLOW:
            failure = f"slow: {latency_ms:g} ms > {self._slow_call_ms:g} ms"
        elif flags & _ABSTAIN and self._abstain_rate is not None:
            failure = "abstained"
        if failure is not None:
            return self._open_locked(f"half-open probe failed ({failure})")
        self._probes_succeeded += 1
        if self._probes_succeeded < self._half_open_probes:
            return None
        return self._move_locked(
            CLOSED, f"all {self._half_open_probes} half-open probe call(s) succeeded"
        )

    def _open_locked(self, reason: str) -> _Change:
        self._reason = reason
        self._opened_at = self._clock()
        self._times_opened += 1
        return self._move_locked(OPEN, reason)

    def _move_locked(self, new: str, reason: str) -> _Change:
        old = self._state
        self._state = new
        # The figures at the change, before the counters below are cleared for the new state.
        change = self._change_locked(old, new, reason)
        self._probes_issued = 0
        self._probes_succeeded = 0
        if new != HALF_OPEN:
            self._clear_window_locked()
        return change

    def _change_locked(self, old: str, new: str, reason: str) -> _Change:
        if not self._listeners:
            return old, new, reason, None, None
        return old, new, reason, time.time(), self._snapshot_locked()

    def _notify(self, change: _Change | None) -> None:
        if change is None:
            return
        old, new, reason, at, snapshot = change
        if self._on_change is not None:
            try:
                self._on_change(old, new, reason)
            except Exception:  # an alert hook must never fail the request it reports on
                _log.exception("on_change callback of %r failed for %s -> %s", self, old, new)
        listeners = self._listeners
        if not listeners or at is None or snapshot is None:
            return
        event = BreakerChange(old, new, reason, at, snapshot)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a recorder must never fail the request either
                _log.exception("A listener of %r failed for %s -> %s", self, old, new)
