"""Windowing and reference selection for the production monitor."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hindsight.errors import ConfigError, DataError
from hindsight.monitor.windows import (
    EventReference,
    FixedReference,
    SeasonalReference,
    TrailingReference,
    WindowSpec,
    format_duration,
    parse_duration,
    reference_windows,
    to_epoch_seconds,
)

HOUR = 3600
DAY = 86_400
WEEK = 7 * DAY


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h", 3600),
        ("15min", 900),
        ("1d", 86_400),
        ("7d", 604_800),
        ("2w", 1_209_600),
        ("45s", 45),
        (" 3 H ", 10_800),
        (120, 120),
        (timedelta(minutes=5), 300),
    ],
)
def test_parse_duration_good(text: object, seconds: int) -> None:
    assert parse_duration(text) == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("1m", "Use 'min' for minutes"),
        ("1.5h", "'1.5h'"),
        ("h", "'h'"),
        ("-1h", "'-1h'"),
        ("1 fortnight", "'fortnight'"),
        ("", "''"),
        ("0h", "'0h'"),
        (-5, "-5"),
        (True, "True"),
        (timedelta(milliseconds=1500), "whole seconds"),
        (1.5, "1.5"),
    ],
)
def test_parse_duration_bad_names_the_input(text: object, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(text)  # type: ignore[arg-type]
    assert needle in str(info.value)


def test_zero_duration_allowed_only_when_asked() -> None:
    assert parse_duration("0h", allow_zero=True) == 0
    with pytest.raises(ConfigError, match="more than zero"):
        parse_duration("0s")


@pytest.mark.parametrize("seconds", [0, 45, 60, 900, 3600, 5400, 86_400, 604_800, 90_061])
def test_format_duration_round_trips(seconds: int) -> None:
    text = format_duration(seconds)
    assert parse_duration(text, allow_zero=True) == seconds


def test_format_duration_uses_the_largest_exact_unit() -> None:
    got = [format_duration(s) for s in (0, 45, 60, 5400, 86_400, 604_800, 90_061)]
    assert got == ["0s", "45s", "1min", "90min", "1d", "1w", "90061s"]


# ---------------------------------------------------------------- window spec


def test_spec_needs_exactly_one_mode() -> None:
    with pytest.raises(ConfigError, match="exactly one of every="):
        WindowSpec()
    with pytest.raises(ConfigError, match="exactly one of every="):
        WindowSpec(every="1h", count=10)
    with pytest.raises(ConfigError, match="'count' parameter of WindowSpec"):
        WindowSpec(count=0)
    with pytest.raises(ConfigError, match="offset= only applies"):
        WindowSpec(count=10, offset="1h")


def test_spec_to_dict_and_offset_normalised() -> None:
    spec = WindowSpec(every="1d", offset="30h")
    assert spec.width_s == DAY
    assert spec.offset_s == 6 * HOUR
    assert spec.to_dict() == {"kind": "time", "every": "1d", "offset": "6h"}
    assert WindowSpec(count=500).to_dict() == {"kind": "count", "count": 500}


def brute_force(ts: list[float], width: int, offset: int) -> tuple[list[int], list[float]]:
    ids, starts = [], []
    for t in ts:
        k = math.floor((t - offset) / width)
        while k * width + offset > t:
            k -= 1
        while (k + 1) * width + offset <= t:
            k += 1
        ids.append(k)
        starts.append(float(k * width + offset))
    return ids, starts


WIDTHS_OFFSETS = [
    ("15min", 0),
    ("1h", 0),
    ("1h", 1800),
    ("1d", 0),
    ("1d", 5 * HOUR),
    ("7d", 0),
    ("7d", 3 * DAY),
]


@pytest.mark.parametrize(("every", "offset"), WIDTHS_OFFSETS)
def test_assign_matches_brute_force_on_floats(every: str, offset: int) -> None:
    rng = np.random.default_rng(7)
    spec = WindowSpec(every=every, offset=offset)
    width = spec.width_s
    base = epoch("2026-01-01T00:00:00")
    random_ts = base + rng.uniform(-60 * DAY, 60 * DAY, size=2000)
    aligned = (base // width) * width + offset
    on_boundaries = aligned + width * rng.integers(-50, 50, size=200)
    # The float just below a boundary: plain division rounds it up into the next window.
    below = np.nextafter(on_boundaries.astype(np.float64), -np.inf)
    ts = np.concatenate([random_ts, below, on_boundaries.astype(np.float64)])
    ids, starts = spec.assign(ts)
    want_ids, want_starts = brute_force(ts.tolist(), width, offset)
    assert ids.dtype == np.int64
    assert starts.dtype == np.float64
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(starts, want_starts)
    # A timestamp exactly on a boundary opens the window starting there.
    np.testing.assert_array_equal(starts[-200:], on_boundaries)
    np.testing.assert_array_equal(starts[-400:-200], on_boundaries - width)


@pytest.mark.parametrize(("every", "offset"), WIDTHS_OFFSETS)
@pytest.mark.parametrize("unit", ["ns", "us", "ms", "s"])
def test_assign_datetime64_is_exact(every: str, offset: int, unit: str) -> None:
    rng = np.random.default_rng(11)
    spec = WindowSpec(every=every, offset=offset)
    width = spec.width_s
    per_s = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    base = int(epoch("2026-03-01T00:00:00"))
    seconds = base + rng.integers(-40 * DAY, 40 * DAY, size=1500)
    ticks = seconds.astype(np.int64) * per_s + rng.integers(0, per_s, size=seconds.size)
    aligned = (base // width) * width + offset
    boundary = (aligned + width * rng.integers(-20, 20, size=100)).astype(np.int64) * per_s
    # One tick before each boundary still belongs to the earlier window.
    ticks = np.concatenate([ticks, boundary, boundary - 1])
    values = ticks.astype(f"datetime64[{unit}]")
    ids, starts = spec.assign(values)
    # Brute force in Python integers: floor of whole ticks over the width in ticks.
    want = [(int(t) - offset * per_s) // (width * per_s) for t in ticks.tolist()]
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_array_equal(starts, np.asarray(want, dtype=np.int64) * width + offset)
    n = boundary.size
    np.testing.assert_array_equal(ids[-2 * n : -n] - ids[-n:], np.ones(n, dtype=np.int64))


def test_assign_datetime64_ns_beats_float_precision() -> None:
    # 1 ns before midnight: float epoch seconds round it up to midnight.
    just_before = np.array(["2026-05-01T23:59:59.999999999"], dtype="datetime64[ns]")
    _, starts = WindowSpec(every="1d").assign(just_before)
    assert starts[0] == epoch("2026-05-01T00:00:00")
    assert to_epoch_seconds(just_before)[0] == pytest.approx(epoch("2026-05-02T00:00:00"))


def test_assign_coarse_datetime64_units() -> None:
    days = np.array(["2026-01-05", "2026-01-06"], dtype="datetime64[D]")
    _, starts = WindowSpec(every="1h").assign(days)
    np.testing.assert_array_equal(
        starts, [epoch("2026-01-05T00:00:00"), epoch("2026-01-06T00:00:00")]
    )
    with pytest.raises(DataError, match="unit 'M'"):
        WindowSpec(every="1h").assign(np.array(["2026-01"], dtype="datetime64[M]"))


def test_assign_float_rounding_next_to_zero() -> None:
    # -5e-324 / 3600 rounds to -0.0; floor alone would put it in the window from 0.
    tiny = np.array([np.nextafter(0.0, -np.inf), -1e-320, 0.0, np.nextafter(0.0, np.inf)])
    ids, starts = WindowSpec(every="1h").assign(tiny)
    np.testing.assert_array_equal(ids, [-1, -1, 0, 0])
    np.testing.assert_array_equal(starts, [-3600.0, -3600.0, 0.0, 0.0])


def test_assign_integer_epoch_seconds() -> None:
    ts = np.array([0, 3599, 3600, -1, -3600, -3601], dtype=np.int64)
    ids, starts = WindowSpec(every="1h").assign(ts)
    np.testing.assert_array_equal(ids, [0, 0, 1, -1, -1, -2])
    np.testing.assert_array_equal(starts, [0.0, 0.0, 3600.0, -3600.0, -3600.0, -7200.0])


def test_assign_pandas_and_arrow_timestamps_in_utc() -> None:
    local = pd.Series(
        pd.to_datetime(["2026-02-01T10:30:00+01:00", "2026-02-01T11:00:00+01:00"], utc=True)
    ).dt.tz_convert("Europe/Paris")
    spec = WindowSpec(every="1h")
    _, starts = spec.assign(local)
    np.testing.assert_array_equal(
        starts, [epoch("2026-02-01T09:00:00"), epoch("2026-02-01T10:00:00")]
    )
    _, from_index = spec.assign(pd.DatetimeIndex(local))
    np.testing.assert_array_equal(from_index, starts)
    ns = int(epoch("2026-02-01T09:59:59")) * 10**9 + 999_999_999
    arrow = pa.array([ns], type=pa.timestamp("ns", tz="Asia/Kolkata"))
    _, arrow_starts = spec.assign(arrow)
    assert arrow_starts[0] == epoch("2026-02-01T09:00:00")
    _, chunked = spec.assign(pa.chunked_array([arrow]))
    assert chunked[0] == epoch("2026-02-01T09:00:00")


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        (np.array([1.0, np.nan]), "NaN or infinite"),
        (np.array(["2026-01-01", "NaT"], dtype="datetime64[s]"), "NaT"),
        (np.array(["a", "b"]), "dtype <U1"),
        (np.zeros((2, 2)), "1-D"),
    ],
)
def test_assign_rejects_unusable_timestamps(values: np.ndarray, needle: str) -> None:
    with pytest.raises(DataError, match=needle):
        WindowSpec(every="1h").assign(values)


def test_count_windows_by_position() -> None:
    spec = WindowSpec(count=4)
    ids, starts = spec.assign(np.zeros(10))
    np.testing.assert_array_equal(ids, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(starts, [0, 0, 0, 0, 4, 4, 4, 4, 8, 8])
    assert spec.bounds(2) == (8.0, 12.0)
    ids_empty, _ = spec.assign(np.zeros(0))
    assert ids_empty.size == 0


def test_bounds_of_time_windows() -> None:
    spec = WindowSpec(every="1d", offset="6h")
    start, end = spec.bounds(3)
    assert (start, end) == (3 * DAY + 6 * HOUR, 4 * DAY + 6 * HOUR)
    with pytest.raises(ConfigError, match="window id must be an int"):
        spec.bounds(1.5)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    ts=st.lists(
        st.floats(min_value=-2e9, max_value=4e9, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=50,
    ),
    width=st.sampled_from([1, 60, 900, 3600, 86_400, 604_800]),
    offset=st.integers(min_value=0, max_value=10**7),
)
def test_every_timestamp_lies_in_its_window(ts: list[float], width: int, offset: int) -> None:
    spec = WindowSpec(every=width, offset=offset)
    arr = np.asarray(ts)
    ids, starts = spec.assign(arr)
    assert np.all(starts <= arr)
    assert np.all(arr < starts + width)
    for i, t in zip(ids.tolist()[:5], ts[:5], strict=False):
        lo, hi = spec.bounds(i)
        assert lo <= t < hi


@settings(max_examples=100, deadline=None)
@given(
    ticks=st.lists(st.integers(min_value=-(2**62), max_value=2**62), min_size=1, max_size=30),
    width=st.sampled_from([1, 900, 3600, 86_400, 604_800]),
)
def test_every_datetime64_ns_lies_in_its_window(ticks: list[int], width: int) -> None:
    values = np.asarray(ticks, dtype=np.int64).astype("datetime64[ns]")
    ids, _ = WindowSpec(every=width).assign(values)
    t = np.asarray(ticks, dtype=object)
    starts_ns = np.asarray(ids.tolist(), dtype=object) * width * 10**9
    assert all(starts_ns <= t)
    assert all(t < starts_ns + width * 10**9)


# ---------------------------------------------------------------- references


@pytest.fixture
def calendar() -> np.ndarray:
    """Hourly window starts over six weeks from Monday 2026-10-05, shuffled."""
    start = epoch("2026-10-05T00:00:00")
    starts = start + HOUR * np.arange(6 * 7 * 24, dtype=np.float64)
    return np.random.default_rng(3).permutation(starts)


HOURLY = WindowSpec(every="1h")


def test_seasonal_picks_same_weekday_and_hour(calendar: np.ndarray) -> None:
    target = epoch("2026-11-13T10:00:00")  # a Friday, in the sixth week
    sel = reference_windows(target, calendar, SeasonalReference(period="7d", weeks=4), spec=HOURLY)
    picked = calendar[sel.indices]
    assert sel.complete and sel.found == 4 and sel.expected == 4
    np.testing.assert_array_equal(picked, target - WEEK * np.array([4, 3, 2, 1]))
    for s in picked:
        moment = datetime.fromtimestamp(s, tz=UTC)
        assert (moment.weekday(), moment.hour, moment.minute) == (4, 10, 0)
    assert sel.description == "same weekday and hour over the last 4 weeks: 4 of 4 windows found"


def test_seasonal_reports_missing_weeks(calendar: np.ndarray) -> None:
    target = epoch("2026-11-13T10:00:00")
    gone = {target - WEEK, target - 3 * WEEK}
    available = calendar[~np.isin(calendar, list(gone))]
    sel = reference_windows(target, available, SeasonalReference(weeks=4), spec=HOURLY)
    assert not sel.complete
    assert (sel.found, sel.expected) == (2, 4)
    assert set(available[sel.indices]) == {target - 2 * WEEK, target - 4 * WEEK}
    assert sel.missing == (target - 3 * WEEK, target - WEEK)
    assert sel.description == (
        "same weekday and hour over the last 4 weeks: 2 of 4 windows found "
        "(2026-10-23 10:00, 2026-11-06 10:00 missing)"
    )
    # Asking further back than the calendar reaches reports the weeks before it.
    deep = reference_windows(target, calendar, SeasonalReference(weeks=8), spec=HOURLY)
    assert (deep.found, deep.expected, deep.complete) == (5, 8, False)


def test_seasonal_daily_period(calendar: np.ndarray) -> None:
    target = epoch("2026-11-13T10:00:00")
    sel = reference_windows(
        target, calendar, SeasonalReference(period="1d", periods=3), spec=HOURLY
    )
    np.testing.assert_array_equal(calendar[sel.indices], target - DAY * np.array([3, 2, 1]))
    assert sel.description.startswith("same hour over the last 3 days: 3 of 3")


def test_seasonal_rejects_period_not_a_whole_number_of_windows(calendar: np.ndarray) -> None:
    with pytest.raises(ConfigError, match="width divides the period"):
        reference_windows(
            0.0, calendar, SeasonalReference(period="1d"), spec=WindowSpec(every="7h")
        )
    with pytest.raises(ConfigError, match="different values"):
        SeasonalReference(periods=2, weeks=3)


def test_fixed_reference_whole_windows_only(calendar: np.ndarray) -> None:
    rule = FixedReference("2026-10-12T00:30:00", "2026-10-12T06:30:00")
    sel = reference_windows(epoch("2026-11-01T00:00:00"), calendar, rule, spec=HOURLY)
    want = epoch("2026-10-12T01:00:00") + HOUR * np.arange(5)
    np.testing.assert_array_equal(calendar[sel.indices], want)
    assert sel.complete and sel.expected == 5
    # Without spec the width is inferred from the starts.
    inferred = reference_windows(epoch("2026-11-01T00:00:00"), calendar, rule)
    np.testing.assert_array_equal(inferred.indices, sel.indices)
    # A hole in the span is reported.
    holed = calendar[calendar != epoch("2026-10-12T03:00:00")]
    partial = reference_windows(0.0, holed, rule, spec=HOURLY)
    assert (partial.found, partial.complete) == (4, False)
    assert "(2026-10-12 03:00 missing)" in partial.description
    with pytest.raises(ConfigError, match="end after it starts"):
        FixedReference("2026-10-12", "2026-10-11")
    with pytest.raises(ConfigError, match="Cannot read The start"):
        FixedReference("12/10/2026", "2026-10-13")


def test_trailing_reference(calendar: np.ndarray) -> None:
    target = epoch("2026-10-20T05:00:00")
    sel = reference_windows(target, calendar, TrailingReference(24), spec=HOURLY)
    np.testing.assert_array_equal(calendar[sel.indices], target - HOUR * np.arange(24, 0, -1))
    assert sel.complete
    early = reference_windows(epoch("2026-10-05T03:00:00"), calendar, TrailingReference(24))
    assert (early.found, early.complete) == (3, False)
    assert early.description == "the 24 windows before 2026-10-05 03:00: 3 of 24 found"
    with pytest.raises(ConfigError, match="'n_windows' parameter"):
        TrailingReference(0)


def test_trailing_on_count_windows_names_rows() -> None:
    spec = WindowSpec(count=100)
    _, starts = spec.assign(np.zeros(1000))
    available = np.unique(starts)
    sel = reference_windows(500.0, available, TrailingReference(3), spec=spec)
    np.testing.assert_array_equal(available[sel.indices], [200.0, 300.0, 400.0])
    assert "before row 500" in sel.description


@pytest.fixture
def two_sales() -> tuple[np.ndarray, dict[str, tuple[str, str]]]:
    events = {
        "festive-sale-2025": ("2025-12-20", "2026-01-02"),
        "festive-sale-2026": ("2026-12-19", "2027-01-01"),
    }
    hourly = np.arange(epoch("2025-12-01T00:00:00"), epoch("2027-01-10T00:00:00"), HOUR)
    return hourly, events


def test_event_reference_whole_past_event(
    two_sales: tuple[np.ndarray, dict[str, tuple[str, str]]],
) -> None:
    starts, events = two_sales
    sel = reference_windows(
        epoch("2026-12-25T12:00:00"),
        starts,
        EventReference(events=events, name="festive-sale-2025"),
        spec=HOURLY,
    )
    picked = starts[sel.indices]
    assert picked.min() == epoch("2025-12-20T00:00:00")
    assert picked.max() == epoch("2026-01-01T23:00:00")
    assert sel.found == 13 * 24 and sel.complete


def test_event_mapping_across_two_years(
    two_sales: tuple[np.ndarray, dict[str, tuple[str, str]]],
) -> None:
    starts, events = two_sales
    rule = EventReference(events=events, past="festive-sale-2025", current="festive-sale-2026")
    target = epoch("2026-12-22T15:00:00")  # 3 days 15 hours into this year's sale
    assert rule.event_offset_for(target) == epoch("2025-12-23T15:00:00")
    sel = reference_windows(target, starts, rule, spec=HOURLY)
    np.testing.assert_array_equal(starts[sel.indices], [epoch("2025-12-23T15:00:00")])
    assert sel.complete and "87 hours into the event" in sel.description
    # A hole in last year's log is reported, not silently filled.
    holed = starts[starts != epoch("2025-12-23T15:00:00")]
    missing = reference_windows(target, holed, rule, spec=HOURLY)
    assert missing.indices.size == 0 and not missing.complete
    assert "(2025-12-23 15:00 missing)" in missing.description
    # Outside this year's sale there is nothing to map to.
    outside = reference_windows(epoch("2026-11-01T00:00:00"), starts, rule, spec=HOURLY)
    assert outside.indices.size == 0 and not outside.complete
    with pytest.raises(ConfigError, match="outside the current event"):
        rule.event_offset_for(epoch("2026-11-01T00:00:00"))


def test_event_mapping_with_unaligned_event_start() -> None:
    events = {
        "past": (epoch("2025-06-01T10:30:00"), epoch("2025-06-03T00:00:00")),
        "now": (epoch("2026-06-01T08:00:00"), epoch("2026-06-03T00:00:00")),
    }
    starts = np.arange(epoch("2025-05-31T00:00:00"), epoch("2026-06-04T00:00:00"), HOUR)
    rule = EventReference(events=events, past="past", current="now")
    # 2h into 'now' maps to 12:30 in 'past': the window 12:00-13:00 contains it.
    sel = reference_windows(epoch("2026-06-01T10:00:00"), starts, rule, spec=HOURLY)
    np.testing.assert_array_equal(starts[sel.indices], [epoch("2025-06-01T12:00:00")])


def test_event_reference_validation() -> None:
    events = {"a": ("2025-01-01", "2025-01-05")}
    with pytest.raises(ConfigError, match="'b' is not in events; known events: 'a'"):
        EventReference(events=events, name="b")
    with pytest.raises(ConfigError, match="needs past="):
        EventReference(events=events)
    with pytest.raises(ConfigError, match="must end after it starts"):
        EventReference(events={"a": ("2025-01-05", "2025-01-01")}, name="a")
    with pytest.raises(ConfigError, match="event_offset_for needs current="):
        EventReference(events=events, name="a").event_offset_for(0.0)


def test_to_dict_of_rules_and_selection(calendar: np.ndarray) -> None:
    rule = SeasonalReference(period="1d", periods=2)
    assert rule.to_dict() == {"rule": "seasonal", "period": "1d", "periods": 2}
    assert TrailingReference(3).to_dict() == {"rule": "trailing", "n_windows": 3}
    fixed = FixedReference("2026-10-05", 1_791_331_200.0)
    assert fixed.to_dict() == {
        "rule": "fixed",
        "start": epoch("2026-10-05T00:00:00"),
        "end": 1_791_331_200.0,
    }
    sel = reference_windows(epoch("2026-10-07T00:00:00"), calendar, rule, spec=HOURLY)
    out = sel.to_dict()
    assert out["found"] == 2 and out["complete"] is True and len(out["indices"]) == 2
    assert all(isinstance(i, int) for i in out["indices"])
