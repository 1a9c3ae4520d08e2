"""The production monitor's window profiles, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from hindsight.data.profile import DatasetProfile, ProfileOptions, profile_table
from hindsight.errors import ConfigError, DataError
from hindsight.ledger import Ledger
from hindsight.monitor.core import Monitor, WindowDrift
from hindsight.monitor.windows import SeasonalReference, TrailingReference

HOUR = 3600
DAY = 86_400
WEEK = 7 * DAY
# 2025-01-04 00:00 UTC, a Saturday.
SATURDAY = 1_735_948_800
OPTS = ProfileOptions(threads=1)


def _batch(rng: np.random.Generator, n: int, base: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3.0, 0.5, n),
            "channel": rng.choice(["web", "app", "store"], n),
            "ts": base + rng.uniform(0, 3 * HOUR, n),
        }
    )


def _without_moments(d: dict[str, Any]) -> dict[str, Any]:
    """A profile's dict without the float moments merging may round differently."""
    out = dict(d)
    out["columns"] = [
        {k: v for k, v in col.items() if k not in ("mean", "m2")} for col in d["columns"]
    ]
    return out


# --------------------------------------------------------------------------- merging


def test_one_call_or_three_match_profiling_each_window_at_once(any_ledger: Ledger) -> None:
    rng = np.random.default_rng(1)
    frame = _batch(rng, 900, 100 * HOUR)
    preds = rng.integers(0, 2, len(frame))
    conf = rng.uniform(0.5, 1.0, len(frame))

    whole = Monitor("whole", ledger=any_ledger, options=OPTS)
    touched = whole.log(frame, predictions=preds, confidence=conf, timestamps="ts")
    assert touched == [100.0 * HOUR, 101.0 * HOUR, 102.0 * HOUR]

    parts = Monitor("parts", ledger=any_ledger, options=OPTS)
    for idx in np.array_split(np.arange(len(frame)), 3):
        parts.log(frame.iloc[idx], predictions=preds[idx], confidence=conf[idx], timestamps="ts")
    assert whole.windows() == parts.windows() == touched

    full = frame.drop(columns="ts").assign(prediction=preds, confidence=conf)
    window_of = np.floor(frame["ts"].to_numpy() / HOUR) * HOUR
    for start in touched:
        rows = pa.Table.from_pandas(full[window_of == start], preserve_index=False)
        direct = profile_table(rows, OPTS)
        # Logged in one call, a window's rows are profiled at once, in input order.
        assert whole.window_profile(start).to_bytes() == direct.to_bytes()
        # Merged across calls: every count and exact quantile summary is the same;
        # the mean and m2 merge in floating point, so they agree to rounding only.
        merged = parts.window_profile(start)
        assert merged.n_rows == direct.n_rows > 0
        assert _without_moments(merged.to_dict()) == _without_moments(direct.to_dict())
        for name in ("amount", "prediction", "confidence"):
            got, want = merged.to_dict()["columns"], direct.to_dict()["columns"]
            col_got = next(c for c in got if c["name"] == name)
            col_want = next(c for c in want if c["name"] == name)
            assert col_got["mean"] == pytest.approx(col_want["mean"], rel=1e-12)
            assert col_got["m2"] == pytest.approx(col_want["m2"], rel=1e-9)


def _window_rows(ledger: Ledger) -> list[Any]:
    from sqlalchemy import select

    from hindsight.store import schema as t

    with ledger.store.read() as conn:
        return list(conn.execute(select(t.monitor_windows)))


def test_a_window_is_one_row_merged_in_place(any_ledger: Ledger) -> None:
    mon = Monitor("versions", ledger=any_ledger, options=OPTS)
    for k in range(3):
        mon.log({"x": np.arange(10.0) + k}, timestamps=np.full(10, 5.0 * HOUR + k))
    assert mon.window_profile(5 * HOUR).n_rows == 30
    rows = _window_rows(any_ledger)
    assert [(r.monitor, r.window_start, r.window_end, r.n_rows) for r in rows] == [
        ("versions", 5.0 * HOUR, 6.0 * HOUR, 30)
    ]


def test_actions_are_counted_per_segment_and_merge(any_ledger: Ledger) -> None:
    mon = Monitor("fraud", ledger=any_ledger, options=OPTS, segments=["kind"])
    kinds = np.array(["genuine", "genuine", "fraud", "genuine", None], dtype=object)
    acts = np.array(["approve", "block", "block", "approve", "approve"])
    for _ in range(2):
        mon.log({"amount": np.arange(5.0), "kind": kinds}, predictions=acts,
                timestamps=np.full(5, 10.0))  # fmt: skip
    assert mon.window_counts(0) == {
        "kind": {
            "genuine": {"approve": 4, "block": 2},
            "fraud": {"block": 2},
            "(missing)": {"approve": 2},
        }
    }
    with pytest.raises(DataError, match="pass predictions="):
        mon.log({"amount": [1.0], "kind": ["a"]}, timestamps=[1.0])
    with pytest.raises(DataError, match="segment column 'kind'"):
        mon.log({"amount": [1.0]}, predictions=["a"], timestamps=[1.0])
    with pytest.raises(ConfigError, match="list of column names"):
        Monitor("m", ledger=any_ledger, segments="kind")


# --------------------------------------------------------------------------- windows


def test_rows_are_assigned_to_hourly_windows_boundaries_included(any_ledger: Ledger) -> None:
    mon = Monitor("bounds", ledger=any_ledger, options=OPTS)
    ts = np.array([HOUR, 2 * HOUR - 1e-3, 2 * HOUR, 2 * HOUR, 3 * HOUR - 1, 7 * HOUR])
    touched = mon.log({"x": np.arange(6.0)}, timestamps=ts)
    assert touched == [HOUR, 2.0 * HOUR, 7.0 * HOUR]
    assert mon.windows() == touched
    counts = {s: mon.window_profile(s).n_rows for s in touched}
    assert counts == {HOUR: 2, 2.0 * HOUR: 3, 7.0 * HOUR: 1}
    # Any instant inside a window names that window.
    assert mon.window_profile(2 * HOUR + 1800).n_rows == 3
    assert mon.window_profile(2 * HOUR).to_dict()["columns"][0]["min"] == 2.0

    # datetime64 timestamps land in the same windows.
    more = Monitor("bounds64", ledger=any_ledger, options=OPTS)
    stamps = (ts * 1e9).astype("int64").astype("datetime64[ns]")
    assert more.log({"x": np.arange(6.0)}, timestamps=stamps) == touched


def test_window_and_monitor_name_are_checked(any_ledger: Ledger) -> None:
    with pytest.raises(ConfigError, match="without ':'"):
        Monitor("a:b", ledger=any_ledger)
    with pytest.raises(ConfigError, match="unit"):
        Monitor("m", ledger=any_ledger, window="1hour")
    mon = Monitor("m", ledger=any_ledger, options=OPTS)
    with pytest.raises(DataError, match="no rows in the window"):
        mon.window_profile(0)


# --------------------------------------------------------------------------- bad input


def _bad_calls() -> list[tuple[dict[str, Any], type[Exception], str]]:
    x = {"x": np.arange(4.0), "t": np.arange(4.0)}
    return [
        ({"features": x, "timestamps": np.arange(3.0)}, DataError, "3 timestamps for 4 rows"),
        ({"features": x, "timestamps": None}, DataError, "timestamps= is missing"),
        ({"features": x, "timestamps": "when"}, DataError, "not a column"),
        (
            {"features": x, "timestamps": np.array([0.0, np.nan, 1.0, 2.0])},
            DataError,
            "NaN",
        ),
        (
            {"features": x, "timestamps": "t", "predictions": np.arange(5)},
            DataError,
            "5 prediction values for 4 rows",
        ),
        (
            {"features": {**x, "confidence": np.ones(4)}, "timestamps": "t", "confidence": [1] * 4},
            DataError,
            "already have a column 'confidence'",
        ),
        (
            {"features": {"t": np.arange(4.0)}, "timestamps": "t"},
            DataError,
            "Nothing to profile",
        ),
    ]


@pytest.mark.parametrize("case", range(len(_bad_calls())))
def test_bad_input_raises_and_writes_nothing(any_ledger: Ledger, case: int) -> None:
    kwargs, error, message = _bad_calls()[case]
    mon = Monitor("bad", ledger=any_ledger, options=OPTS)
    with pytest.raises(error, match=message):
        mon.log(kwargs.pop("features"), **kwargs)
    assert mon.windows() == []
    assert _window_rows(any_ledger) == []


def test_a_batch_that_cannot_merge_writes_none_of_its_windows(any_ledger: Ledger) -> None:
    mon = Monitor("atomic", ledger=any_ledger, options=OPTS)
    mon.log({"x": np.arange(3.0)}, timestamps=[0.0, 1.0, 2.0])
    before = mon.window_profile(0).to_bytes()
    # Window 0 cannot take a new column; window 1h is new but must not be written either.
    with pytest.raises(DataError, match="same columns"):
        mon.log(
            {"x": np.arange(2.0), "y": np.arange(2.0)},
            timestamps=[HOUR + 5.0, 10.0],
        )
    assert mon.windows() == [0.0]
    assert mon.window_profile(0).to_bytes() == before


# --------------------------------------------------------------------------- seasonal


def _seasonal_log(mon: Monitor) -> None:
    """Five weeks of hourly traffic; Saturday evenings (17:00-22:00) are busier and
    spend more. On the last Saturday, 21:00-22:00 also brings a new ``score``."""
    rng = np.random.default_rng(7)
    start = SATURDAY - 4 * WEEK - DAY  # the Friday before the first Saturday
    frames = []
    for hour in range(start, SATURDAY + DAY, HOUR):
        offset = (hour - SATURDAY) % WEEK
        evening = 17 * HOUR <= offset < 22 * HOUR
        n = 120 if evening else 30
        score = rng.normal(0.0, 1.0, n)
        if hour == SATURDAY + 21 * HOUR:
            score = rng.normal(1.5, 1.0, n)
        frames.append(
            pd.DataFrame(
                {
                    "amount": rng.lognormal(4.0 if evening else 3.0, 0.5, n),
                    "score": score,
                    "channel": rng.choice(["web", "app"], n),
                    "ts": hour + rng.uniform(0, HOUR, n),
                }
            )
        )
    data = pd.concat(frames, ignore_index=True)
    assert len(data) <= 40_000
    # Predictions as labels: numeric columns cost most to profile, and 700 windows add up.
    labels = np.where(data["amount"].to_numpy() > 150.0, "review", "approve")
    mon.log(data, predictions=labels, timestamps="ts")


def test_seasonal_reference_expects_the_saturday_swing(any_ledger: Ledger) -> None:
    mon = Monitor("shop", ledger=any_ledger, options=OPTS)
    _seasonal_log(mon)
    swing = SATURDAY + 20 * HOUR

    trailing = mon.drift(swing, TrailingReference(24))
    assert isinstance(trailing, WindowDrift)
    assert "amount" in trailing.report.drifted_columns
    assert trailing.reference_description.startswith("the 24 windows before")

    seasonal = mon.drift(swing, SeasonalReference(period="7d", weeks=4))
    assert seasonal.reference_description.startswith(
        "same weekday and hour over the last 4 weeks: 4 of 4"
    )
    assert seasonal.report.n_reference == 4 * 120
    assert seasonal.report.drifted_columns == []
    assert not seasonal.drift_detected

    # A real change on that Saturday is flagged against its own kind.
    change = mon.drift(SATURDAY + 21 * HOUR, SeasonalReference(period="7d", weeks=4))
    assert change.report.drifted_columns == ["score"]

    payload = json.loads(json.dumps(change.to_dict()))
    assert payload["window_start"] == SATURDAY + 21 * HOUR
    assert payload["reference_description"] == change.reference_description


def test_reference_profile_rules(any_ledger: Ledger) -> None:
    mon = Monitor("refs", ledger=any_ledger, options=OPTS)
    rng = np.random.default_rng(3)
    for k in range(3):
        mon.log({"x": rng.normal(size=50)}, timestamps=np.full(50, k * HOUR + 1.0))
    ref, sel = mon.reference_profile(2 * HOUR, TrailingReference(2))
    assert ref.n_rows == 100 and sel.found == 2
    assert (
        ref.to_bytes()
        == DatasetProfile.merge([mon.window_profile(0), mon.window_profile(HOUR)]).to_bytes()
    )

    training = profile_table(pa.table({"x": rng.normal(size=80)}), OPTS)
    same, fixed = mon.reference_profile(2 * HOUR, training)
    assert same is training and "fixed profile of 80 rows" in fixed.description
    assert mon.drift(2 * HOUR, training).report.n_reference == 80

    with pytest.raises(DataError, match=r"'rule': 'seasonal'.*0 of 4 windows found"):
        mon.reference_profile(2 * HOUR, SeasonalReference(period="7d", weeks=4))
    with pytest.raises(DataError, match=r"'rule': 'trailing'"):
        mon.reference_profile(0, TrailingReference(3))
