"""Windows over the prediction log, and the reference each window is compared with.

A :class:`WindowSpec` cuts logged predictions into time windows (``every="1h"``,
aligned to the UTC epoch plus an optional ``offset``) or into count windows
(``count=10_000`` rows each). :func:`reference_windows` then picks, for one target
window, the windows it should be compared with, so that an expected swing (Monday
morning, the festive sale) is compared with its own kind rather than raising an alarm:

* :class:`FixedReference` -- the windows fully inside a fixed span;
* :class:`TrailingReference` -- the ``n`` windows just before the target;
* :class:`SeasonalReference` -- the same weekday and hour over the last weeks (or the
  same hour over the last days);
* :class:`EventReference` -- the windows of a named past event, or the one window at the
  same point of a past event as the target is in the current one.

Every time is in epoch seconds, UTC. Spans are half-open, ``[start, end)``; an end
given as a date means the first instant of that day, so it is not included.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from hindsight.errors import ConfigError, DataError

__all__ = [
    "EventReference",
    "FixedReference",
    "ReferenceRule",
    "ReferenceSelection",
    "SeasonalReference",
    "TrailingReference",
    "WindowSpec",
    "format_duration",
    "parse_duration",
    "reference_windows",
    "to_epoch_seconds",
]

_UNITS: dict[str, int] = {"s": 1, "min": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")
# Ticks per second of the sub-second datetime64 units handled exactly.
_SUBSECOND = {"ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_COARSE = ("W", "D", "h", "m", "s")


# --------------------------------------------------------------------------- durations


def parse_duration(value: str | int | timedelta, *, allow_zero: bool = False) -> int:
    """Whole seconds in a duration: ``"15min"``, ``"1h"``, ``"7d"``, ``"2w"``, ``90``.

    The grammar is one non-negative integer and one unit: ``s``, ``min``, ``h``, ``d``
    or ``w``. Plain integers are seconds; a :class:`~datetime.timedelta` must be whole
    seconds.
    """
    if isinstance(value, bool):
        raise ConfigError(f"A duration must be a string like '1h' or whole seconds. Got {value!r}.")
    if isinstance(value, timedelta):
        seconds_f = value.total_seconds()
        if seconds_f != int(seconds_f):
            raise ConfigError(
                f"A duration must be whole seconds. Got {value!r}; round it to seconds."
            )
        seconds = int(seconds_f)
    elif isinstance(value, numbers.Integral):
        seconds = int(value)
    elif isinstance(value, str):
        match = _DURATION.match(value.lower())
        if match is None:
            raise ConfigError(
                f"Cannot read the duration {value!r}: write an integer and a unit, "
                "one of s, min, h, d, w (e.g. '15min', '1h', '7d')."
            )
        number, unit = match.groups()
        if unit not in _UNITS:
            hint = " Use 'min' for minutes." if unit in ("m", "mins", "minute", "minutes") else ""
            raise ConfigError(
                f"Unknown unit {unit!r} in the duration {value!r}: use one of "
                f"s, min, h, d, w.{hint}"
            )
        seconds = int(number) * _UNITS[unit]
    else:
        raise ConfigError(
            f"A duration must be a string like '1h', whole seconds or a timedelta. Got {value!r}."
        )
    if seconds < 0 or (seconds == 0 and not allow_zero):
        need = "zero or more" if allow_zero else "more than zero"
        raise ConfigError(f"The duration {value!r} must be {need} seconds.")
    return seconds


def format_duration(seconds: int) -> str:
    """The shortest exact spelling of whole ``seconds``: 3600 -> ``"1h"``, 90 -> ``"90s"``."""
    if seconds == 0:
        return "0s"
    for unit in ("w", "d", "h", "min"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def _to_instant(value: Any, what: str) -> float:
    """Epoch seconds (UTC) from an ISO string, a datetime, a datetime64 or a number."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(
                f"Cannot read {what} {value!r}: write an ISO date or time such as "
                "'2025-12-20' or '2025-12-20T18:00:00+00:00', or give epoch seconds."
            ) from None
        value = parsed
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise ConfigError(f"{what} is NaT: give a real instant.")
        return float(value.astype("datetime64[us]").astype(np.int64)) / 1e6
    if (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    ):
        return float(value)
    raise ConfigError(
        f"{what} must be an ISO date string, a datetime or finite epoch seconds. Got {value!r}."
    )


def _fmt_time(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M")


# --------------------------------------------------------------------------- timestamps


def _time_array(values: Any) -> np.ndarray:
    """A 1-D float64 (epoch seconds), int64 (epoch seconds) or datetime64 array."""
    module = type(values).__module__
    if module.startswith("pyarrow"):
        values = values.to_numpy(zero_copy_only=False) if hasattr(values, "type") else values
    elif module.startswith("pandas"):
        tz = getattr(getattr(values, "dtype", None), "tz", None)
        if tz is not None:  # to UTC, then naive: the int values stay the same
            values = values.array.tz_convert(None)
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(f"Timestamps must be a 1-D array. Got an array of shape {arr.shape}.")
    kind = arr.dtype.kind
    if kind == "M":
        if np.isnat(arr).any():
            raise DataError(
                f"{int(np.isnat(arr).sum())} timestamps are NaT: drop or fill them first."
            )
        return arr
    if kind in "iu":
        return arr.astype(np.int64)
    if kind == "f":
        out = arr.astype(np.float64)
        bad = ~np.isfinite(out)
        if bad.any():
            raise DataError(
                f"{int(bad.sum())} timestamps are NaN or infinite: drop or fill them first."
            )
        return out
    raise DataError(
        f"Cannot read timestamps of dtype {arr.dtype}: pass epoch seconds as numbers or a "
        "datetime64 array, e.g. np.asarray(ts, dtype='datetime64[ns]')."
    )


def _ticks(arr: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer ticks since the epoch and ticks per second of a datetime64 array."""
    unit, step = np.datetime_data(arr.dtype)
    if unit in _COARSE:
        return arr.astype("datetime64[s]").astype(np.int64), 1
    if unit in _SUBSECOND:
        return arr.view(np.int64) * np.int64(step), _SUBSECOND[unit]
    raise DataError(
        f"Cannot window datetime64 values in unit {unit!r}: convert them to "
        "'datetime64[ns]' (or s, ms, us) first."
    )


def to_epoch_seconds(values: Any) -> np.ndarray:
    """Float epoch seconds (UTC) from numbers, datetime64, pandas or Arrow timestamps.

    Floats cannot hold nanoseconds at today's epoch exactly; :meth:`WindowSpec.assign`
    therefore windows datetime64 input in integer ticks, not through this function.
    """
    arr = _time_array(values)
    if arr.dtype.kind != "M":
        return arr.astype(np.float64)
    ticks, per_second = _ticks(arr)
    whole, frac = np.divmod(ticks, per_second)
    return whole.astype(np.float64) + frac.astype(np.float64) / per_second


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class WindowSpec:
    """Time windows (``every``, aligned to the UTC epoch plus ``offset``) or count windows.

    ``WindowSpec(every="1h")`` windows start on the hour; ``WindowSpec(every="1d",
    offset="6h")`` windows run 06:00-06:00 UTC. ``WindowSpec(count=10_000)`` cuts the
    log into blocks of 10,000 rows in logged order; its starts and bounds are row
    positions.
    """

    every: str | int | timedelta | None = None
    count: int | None = None
    offset: str | int | timedelta = 0
    width_s: int = field(init=False)
    offset_s: int = field(init=False)

    def __post_init__(self) -> None:
        if (self.every is None) == (self.count is None):
            raise ConfigError(
                "A WindowSpec needs exactly one of every= (time windows, e.g. '1h') or "
                f"count= (rows per window). Got every={self.every!r}, count={self.count!r}."
            )
        if self.count is not None:
            if (
                isinstance(self.count, bool)
                or not isinstance(self.count, numbers.Integral)
                or self.count < 1
            ):
                raise ConfigError(
                    f"The 'count' parameter of WindowSpec must be an int >= 1. Got {self.count!r}."
                )
            if parse_duration(self.offset, allow_zero=True) != 0:
                raise ConfigError(
                    "offset= only applies to time windows; drop it or use every= instead of count=."
                )
            object.__setattr__(self, "width_s", int(self.count))
            object.__setattr__(self, "offset_s", 0)
            return
        assert self.every is not None
        width = parse_duration(self.every)
        object.__setattr__(self, "width_s", width)
        object.__setattr__(self, "offset_s", parse_duration(self.offset, allow_zero=True) % width)

    @property
    def is_count(self) -> bool:
        return self.count is not None

    def assign(self, timestamps: Any) -> tuple[np.ndarray, np.ndarray]:
        """Each row's window id (int64) and its window's start (float), in input order.

        Time windows take epoch seconds (numbers), datetime64 of any unit from D to ns,
        or pandas / Arrow timestamps (tz-aware ones are taken in UTC); datetime64 input
        is windowed in integer ticks, so nanoseconds next to a boundary are exact. A
        timestamp on a boundary belongs to the window starting there. Count windows only
        use the number of rows.
        """
        if self.is_count:
            n = len(timestamps)
            ids = np.arange(n, dtype=np.int64) // self.width_s
            return ids, (ids * self.width_s).astype(np.float64)
        width, off = self.width_s, self.offset_s
        arr = _time_array(timestamps)
        if arr.dtype.kind in "Mi":
            ticks, per_second = _ticks(arr) if arr.dtype.kind == "M" else (arr, 1)
            ids = np.floor_divide(ticks - np.int64(off * per_second), np.int64(width * per_second))
        else:
            ids = np.floor((arr - off) / width).astype(np.int64)
            # Division can round across a boundary; one step either way puts it right.
            starts = ids.astype(np.float64) * width + off
            ids = ids - (arr < starts) + (arr >= starts + width)
        return ids, (ids * width + off).astype(np.float64)

    def bounds(self, window_id: int) -> tuple[float, float]:
        """``(start, end)`` of a window: epoch seconds, or row positions for count windows."""
        if isinstance(window_id, bool) or not isinstance(window_id, numbers.Integral):
            raise ConfigError(f"A window id must be an int. Got {window_id!r}.")
        start = int(window_id) * self.width_s + self.offset_s
        return float(start), float(start + self.width_s)

    def to_dict(self) -> dict[str, Any]:
        if self.is_count:
            return {"kind": "count", "count": self.width_s}
        return {
            "kind": "time",
            "every": format_duration(self.width_s),
            "offset": format_duration(self.offset_s),
        }


# --------------------------------------------------------------------------- rules


def _positive_int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"The {name!r} parameter of {owner} must be an int >= 1. Got {value!r}.")
    return int(value)


@dataclass(frozen=True)
class FixedReference:
    """The windows fully inside ``[start, end)`` (ISO strings, datetimes or epoch seconds)."""

    start: str | float | datetime
    end: str | float | datetime
    start_s: float = field(init=False)
    end_s: float = field(init=False)

    def __post_init__(self) -> None:
        start = _to_instant(self.start, "The start of FixedReference")
        end = _to_instant(self.end, "The end of FixedReference")
        if end <= start:
            raise ConfigError(
                f"FixedReference must end after it starts. Got start={self.start!r}, "
                f"end={self.end!r}; swap them or widen the span."
            )
        object.__setattr__(self, "start_s", start)
        object.__setattr__(self, "end_s", end)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": "fixed", "start": self.start_s, "end": self.end_s}


@dataclass(frozen=True)
class TrailingReference:
    """The ``n_windows`` latest windows that start before the target."""

    n_windows: int

    def __post_init__(self) -> None:
        _positive_int("TrailingReference", "n_windows", self.n_windows)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": "trailing", "n_windows": int(self.n_windows)}


@dataclass(frozen=True)
class SeasonalReference:
    """The windows starting at ``target - k * period`` for ``k = 1..periods``.

    ``period="7d"`` gives the same weekday and hour over the last weeks, ``"1d"`` the
    same hour over the last days. ``weeks=`` is another name for ``periods=``.
    """

    period: str | int | timedelta = "7d"
    periods: int | None = None
    weeks: int | None = None
    period_s: int = field(init=False)
    n_periods: int = field(init=False)

    def __post_init__(self) -> None:
        if self.periods is not None and self.weeks is not None and self.periods != self.weeks:
            raise ConfigError(
                "SeasonalReference got both periods= and weeks= with different values; "
                "give one of them."
            )
        chosen = self.periods if self.periods is not None else self.weeks
        n = 4 if chosen is None else _positive_int("SeasonalReference", "periods", chosen)
        object.__setattr__(self, "period_s", parse_duration(self.period))
        object.__setattr__(self, "n_periods", n)

    def describe(self) -> str:
        n = self.n_periods
        if self.period_s == _UNITS["w"]:
            return f"same weekday and hour over the last {n} week{'s' * (n != 1)}"
        if self.period_s == _UNITS["d"]:
            return f"same hour over the last {n} day{'s' * (n != 1)}"
        return f"same point of the {format_duration(self.period_s)} period over the last {n}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": "seasonal",
            "period": format_duration(self.period_s),
            "periods": self.n_periods,
        }


@dataclass(frozen=True)
class EventReference:
    """Windows of a named past event, or the same point of it as of the current event.

    ``events`` maps names to ``(start, end)`` spans (ISO strings or epoch seconds, UTC,
    half-open). With only ``past`` (or its other name, ``name``), the reference is every
    window fully inside that event. With ``current`` too, a target inside the current
    event is compared with the one window of the past event at the same offset from its
    start (see :meth:`event_offset_for`), and with ``around=k`` the ``k`` windows either
    side of it too (more rows, the same part of the event). A target outside the current
    event uses the ``otherwise`` rule (say the trailing day), so one monitor can judge
    ordinary weeks and the event alike; without it such a target has no reference.
    """

    events: Mapping[str, tuple[Any, Any]]
    name: str | None = None
    current: str | None = None
    past: str | None = None
    around: int = 0
    otherwise: Any = None
    spans: dict[str, tuple[float, float]] = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.events, Mapping) or not self.events:
            raise ConfigError(
                "EventReference needs events={'name': (start, end), ...} with at least one event."
            )
        spans: dict[str, tuple[float, float]] = {}
        for key, span in self.events.items():
            if not isinstance(span, tuple | list) or len(span) != 2:
                raise ConfigError(f"Event {key!r} must be a (start, end) pair. Got {span!r}.")
            start = _to_instant(span[0], f"The start of event {key!r}")
            end = _to_instant(span[1], f"The end of event {key!r}")
            if end <= start:
                raise ConfigError(f"Event {key!r} must end after it starts. Got {span!r}.")
            spans[str(key)] = (start, end)
        object.__setattr__(self, "spans", spans)
        if self.name is not None and self.past is not None and self.name != self.past:
            raise ConfigError(
                "EventReference got name= and past= naming different events; give one."
            )
        past = self.past_event
        if past is None:
            raise ConfigError("EventReference needs past= (or name=): the event to compare with.")
        roles: tuple[tuple[str, str | None], ...] = (("past", past), ("current", self.current))
        for role, event in roles:
            if event is not None and event not in spans:
                raise ConfigError(
                    f"The {role} event {event!r} is not in events; known events: "
                    f"{', '.join(repr(k) for k in spans)}."
                )
        if self.current == past:
            raise ConfigError("current= and past= name the same event; name two different ones.")
        if isinstance(self.around, bool) or not isinstance(self.around, int) or self.around < 0:
            raise ConfigError(f"around= must be an int >= 0 (windows). Got {self.around!r}.")
        if self.otherwise is not None and (
            not isinstance(self.otherwise, FixedReference | TrailingReference | SeasonalReference)
        ):
            raise ConfigError(
                "otherwise= must be a FixedReference, TrailingReference or SeasonalReference. "
                f"Got {type(self.otherwise).__name__}."
            )

    @property
    def past_event(self) -> str | None:
        return self.past if self.past is not None else self.name

    def event_offset_for(self, target_start: float) -> float:
        """The instant in the past event at the target's offset into the current event."""
        if self.current is None:
            raise ConfigError(
                "event_offset_for needs current=: the event the target lies in this time."
            )
        cur_start, cur_end = self.spans[self.current]
        if not cur_start <= target_start < cur_end:
            raise ConfigError(
                f"The target {_fmt_time(target_start)} is outside the current event "
                f"{self.current!r} ({_fmt_time(cur_start)} to {_fmt_time(cur_end)}); "
                "pick a target inside it, or drop current= to compare with the whole past event."
            )
        assert self.past_event is not None
        return self.spans[self.past_event][0] + (target_start - cur_start)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": "event",
            "events": {k: list(v) for k, v in self.spans.items()},
            "past": self.past_event,
            "current": self.current,
            "around": self.around,
            "otherwise": None if self.otherwise is None else self.otherwise.to_dict(),
        }


ReferenceRule = FixedReference | TrailingReference | SeasonalReference | EventReference


@dataclass(frozen=True, eq=False)
class ReferenceSelection:
    """The reference windows chosen for one target window.

    ``indices`` point into the ``available_starts`` given, in order of start;
    ``missing`` are the starts the rule expected but did not find (none for trailing
    references, which take the latest windows available).
    """

    indices: np.ndarray
    description: str
    complete: bool
    expected: int
    found: int
    missing: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "indices": [int(i) for i in self.indices],
            "description": self.description,
            "complete": self.complete,
            "expected": self.expected,
            "found": self.found,
            "missing": list(self.missing),
        }


def _found_text(found: int, expected: int, missing: np.ndarray, fmt: Any) -> str:
    text = f"{found} of {expected} window{'s' * (expected != 1)} found"
    if missing.size:
        shown = ", ".join(fmt(float(m)) for m in missing[:5])
        more = f" and {missing.size - 5} more" if missing.size > 5 else ""
        text += f" ({shown}{more} missing)"
    return text


def _width_and_phase(
    starts: np.ndarray, spec: WindowSpec | None, rule_name: str
) -> tuple[float, float]:
    if spec is not None:
        return float(spec.width_s), float(spec.offset_s)
    distinct = np.unique(starts)
    gaps = np.diff(distinct)
    if gaps.size == 0:
        raise ConfigError(
            f"{rule_name} needs the window width and cannot infer it from fewer than two "
            "windows: pass spec=your WindowSpec."
        )
    width = float(gaps.min())
    return width, float(distinct[0] % width)


def _grid_selection(
    starts: np.ndarray, lo: float, hi: float, width: float, phase: float, fmt: Any, what: str
) -> ReferenceSelection:
    """Windows fully inside ``[lo, hi)``, against the aligned windows expected there."""
    first = math.ceil((lo - phase) / width) * width + phase
    last = math.floor((hi - width - phase) / width) * width + phase
    grid = np.arange(first, last + width / 2, width) if last >= first else np.empty(0)
    inside = np.flatnonzero((starts >= lo) & (starts + width <= hi))
    indices = inside[np.argsort(starts[inside], kind="stable")].astype(np.int64)
    present = np.isin(grid, starts)
    missing = grid[~present]
    found, expected = int(present.sum()), int(grid.size)
    if expected == 0:
        text = f"{what}: no whole window fits inside it"
    else:
        text = f"{what}: {_found_text(found, expected, missing, fmt)}"
    return ReferenceSelection(
        indices=indices,
        description=text,
        complete=expected > 0 and missing.size == 0,
        expected=expected,
        found=found,
        missing=tuple(float(m) for m in missing),
    )


def reference_windows(
    target_start: float,
    available_starts: Any,
    rule: ReferenceRule,
    *,
    spec: WindowSpec | None = None,
) -> ReferenceSelection:
    """The windows among ``available_starts`` to compare the target window with.

    ``available_starts`` are window starts as :meth:`WindowSpec.assign` gives them
    (any order; the returned indices are sorted by start). ``spec`` gives the window
    width and alignment for fixed and event rules; without it they are inferred from
    the smallest gap between starts.
    """
    starts = np.asarray(available_starts, dtype=np.float64)
    if starts.ndim != 1 or not np.isfinite(starts).all():
        raise ConfigError("available_starts must be a 1-D array of finite window starts.")
    target = _to_instant(target_start, "target_start")
    fmt = (lambda s: f"row {int(s)}") if spec is not None and spec.is_count else _fmt_time
    order = np.argsort(starts, kind="stable")

    def by_start(idx: np.ndarray) -> np.ndarray:
        return idx[np.argsort(starts[idx], kind="stable")].astype(np.int64)

    if isinstance(rule, TrailingReference):
        n = int(rule.n_windows)
        before = order[starts[order] < target]
        chosen = before[-n:] if before.size else before
        found = int(chosen.size)
        return ReferenceSelection(
            indices=by_start(chosen),
            description=f"the {n} windows before {fmt(target)}: {found} of {n} found",
            complete=found == n,
            expected=n,
            found=found,
        )
    if isinstance(rule, SeasonalReference):
        if spec is not None and (spec.is_count or rule.period_s % spec.width_s):
            raise ConfigError(
                "A seasonal reference needs time windows whose width divides the period "
                f"({format_duration(rule.period_s)}); got {spec.to_dict()}."
            )
        expected_starts = target - rule.period_s * np.arange(
            1, rule.n_periods + 1, dtype=np.float64
        )
        present = np.isin(expected_starts, starts)
        missing = expected_starts[~present][::-1]
        found = int(present.sum())
        return ReferenceSelection(
            indices=by_start(np.flatnonzero(np.isin(starts, expected_starts))),
            description=f"{rule.describe()}: " + _found_text(found, rule.n_periods, missing, fmt),
            complete=found == rule.n_periods,
            expected=rule.n_periods,
            found=found,
            missing=tuple(float(m) for m in missing),
        )
    if isinstance(rule, FixedReference):
        width, phase = _width_and_phase(starts, spec, "FixedReference")
        what = f"windows from {fmt(rule.start_s)} to {fmt(rule.end_s)}"
        return _grid_selection(starts, rule.start_s, rule.end_s, width, phase, fmt, what)
    if isinstance(rule, EventReference):
        width, phase = _width_and_phase(starts, spec, "EventReference")
        past = rule.past_event
        assert past is not None
        lo, hi = rule.spans[past]
        if rule.current is None:
            return _grid_selection(starts, lo, hi, width, phase, fmt, f"windows of {past!r}")
        cur_lo, cur_hi = rule.spans[rule.current]
        if not cur_lo <= target < cur_hi:
            if rule.otherwise is not None:
                return reference_windows(target, available_starts, rule.otherwise, spec=spec)
            return ReferenceSelection(
                indices=np.empty(0, dtype=np.int64),
                description=f"the target {fmt(target)} is outside {rule.current!r}, "
                "so it has no matching point in "
                f"{past!r}",
                complete=False,
                expected=0,
                found=0,
            )
        mapped = rule.event_offset_for(target)
        into = f"{(target - cur_lo) / 3600:g} hours into the event"
        what = f"same point of {past!r} as of {rule.current!r} ({into})"
        if mapped >= hi:
            return ReferenceSelection(
                indices=np.empty(0, dtype=np.int64),
                description=f"{what}: {past!r} had ended by then",
                complete=False,
                expected=0,
                found=0,
            )
        grid_start = math.floor((mapped - phase) / width) * width + phase
        k = rule.around
        wanted = grid_start + width * np.arange(-k, k + 1, dtype=np.float64)
        wanted = wanted[(wanted >= lo) & (wanted + width <= hi)]
        if wanted.size == 0:  # the mapped window itself straddles the event's edge
            wanted = np.array([grid_start])
        present = np.isin(wanted, starts)
        found = int(present.sum())
        missing = wanted[~present]
        if k:
            what += f", and {k} window{'s' * (k != 1)} either side"
        return ReferenceSelection(
            indices=by_start(np.flatnonzero(np.isin(starts, wanted))),
            description=f"{what}: {_found_text(found, int(wanted.size), missing, fmt)}",
            complete=found == wanted.size,
            expected=int(wanted.size),
            found=found,
            missing=tuple(float(m) for m in missing),
        )
    raise ConfigError(
        f"Unknown reference rule {rule!r}: use FixedReference, TrailingReference, "
        "SeasonalReference or EventReference."
    )
