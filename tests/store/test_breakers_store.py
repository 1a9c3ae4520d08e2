"""Circuit-breaker events in the store, on SQLite and PostgreSQL: batched inserts, each
tier's newest state in one query, the recent history, and the per-service counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import event

from hindsight.errors import ConfigError, StoreError
from hindsight.store import Store, open_store
from hindsight.store.listing_services import breaker_counts, known_services
from hindsight.store.schema import SCHEMA_VERSION


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()


def _row(service: str, tier: str, previous: str, state: str, at: float, *,
         reason: str | None = None, position: int = 0, **snap: Any) -> dict[str, Any]:
    return {
        "service": service, "tier": tier, "state": state, "previous": previous,
        "reason": reason if reason is not None else f"{previous} -> {state} at {at}",
        "snapshot": {"state": state, "calls": 0, "error_rate": 0.0, "position": position,
                     **snap},
        "at": at, "schema_version": SCHEMA_VERSION,
    }


def _started(service: str, tiers: list[str], at: float) -> list[dict[str, Any]]:
    return [_row(service, t, "closed", "closed", at, reason="service started", position=i)
            for i, t in enumerate(tiers)]


def _selects(store: Store) -> tuple[list[str], Any]:
    seen: list[str] = []

    def listen(_c: object, _cur: object, sql: str, *_a: object) -> None:
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append(sql)

    return seen, listen


def test_newest_event_per_tier_matches_a_python_reference(store: Store) -> None:
    """Random histories of three tiers (ties in time included): each tier's newest row,
    by time then insertion, is what breaker_states returns, in one statement."""
    rng = np.random.default_rng(3)
    tiers = ["model", "previous", "rules"]
    rows = _started("loans", tiers, 1000.0)
    states = dict.fromkeys(tiers, "closed")
    for i in range(300):
        tier = str(rng.choice(tiers))
        new = str(rng.choice([s for s in ("closed", "open", "half_open") if s != states[tier]]))
        at = 1000.0 + float(rng.integers(1, 200))  # many equal times: the id breaks ties
        rows.append(_row("loans", tier, states[tier], new, at, reason=f"change {i}",
                         calls=int(rng.integers(0, 50)), error_rate=float(rng.random())))
        states[tier] = new
    # Another service's rows must not leak in.
    rows += [*_started("other", ["model"], 5000.0), _row("other", "model", "closed", "open", 6000.0)]
    for k in range(0, len(rows), 64):
        store.append_breaker_events(rows[k:k + 64])

    expected: dict[str, dict[str, Any]] = {}
    for i, r in enumerate(rows):
        if r["service"] != "loans":
            continue
        best = expected.get(r["tier"])
        if best is None or (r["at"], i) >= (best["at"], best["_i"]):
            expected[r["tier"]] = {**r, "_i": i}

    seen, listen = _selects(store)
    event.listen(store.engine, "before_cursor_execute", listen)
    try:
        got = store.breaker_states("loans")
    finally:
        event.remove(store.engine, "before_cursor_execute", listen)
    assert len(seen) == 1, seen
    assert [g["tier"] for g in got] == tiers  # chain order (snapshot position)
    for g in got:
        want = expected[g["tier"]]
        assert (g["state"], g["previous"], g["reason"]) == (
            want["state"], want["previous"], want["reason"])
        assert g["at"] == pytest.approx(want["at"])
        assert g["snapshot"]["error_rate"] == pytest.approx(want["snapshot"]["error_rate"])
        assert g["configured_at"] == pytest.approx(1000.0) and g["current"] is True
    assert store.breaker_states("nope") == []


def test_history_is_newest_first_limited_and_by_tier(store: Store) -> None:
    store.append_breaker_events(_started("loans", ["model", "rules"], 100.0))
    store.append_breaker_events([
        _row("loans", "model", "closed", "open", 110.0, reason="error rate 0.80 >= 0.50"),
        _row("loans", "model", "open", "half_open", 115.0, reason="open for 5 s"),
        _row("loans", "model", "half_open", "closed", 116.0, reason="all 3 probes succeeded"),
        _row("loans", "rules", "closed", "open", 120.0, reason="slow"),
    ])
    history = store.breaker_events("loans")
    assert [(e["tier"], e["previous"], e["state"]) for e in history] == [
        ("rules", "closed", "open"), ("model", "half_open", "closed"),
        ("model", "open", "half_open"), ("model", "closed", "open"),
        ("rules", "closed", "closed"), ("model", "closed", "closed"),  # a tie: newest id first
    ]
    assert [e["reason"] for e in store.breaker_events("loans", "model", limit=2)] == [
        "all 3 probes succeeded", "open for 5 s"]
    assert [e["at"] for e in store.breaker_events("loans", "model", limit=2, offset=2)] == [
        110.0, 100.0]
    assert store.count_breaker_events("loans") == 6
    assert store.count_breaker_events("loans", "rules") == 2
    assert store.count_breaker_events("loans", "cache") == 0
    assert store.breaker_events("loans", limit=0) == []


def test_a_tier_left_out_of_the_latest_start_is_not_current(store: Store) -> None:
    """A restart with another chain: the old tier keeps its last row, flagged not current,
    and is not counted as open now."""
    store.append_breaker_events(_started("loans", ["model-v1", "rules"], 100.0))
    store.append_breaker_events([_row("loans", "model-v1", "closed", "open", 150.0)])
    store.append_breaker_events(_started("loans", ["model-v2", "rules"], 200.0))
    store.append_breaker_events([_row("loans", "model-v2", "closed", "open", 250.0),
                                 _row("loans", "model-v2", "open", "half_open", 260.0)])
    got = {g["tier"]: g for g in store.breaker_states("loans")}
    assert {t: (g["state"], g["current"]) for t, g in got.items()} == {
        "model-v1": ("open", False), "model-v2": ("half_open", True), "rules": ("closed", True)}
    assert [g["tier"] for g in store.breaker_states("loans")] == ["model-v2", "rules", "model-v1"]
    assert breaker_counts(store) == {
        "loans": {"closed": 1, "open": 0, "half_open": 1, "tiers": 2}}


def test_counts_per_service_in_one_query(store: Store) -> None:
    store.append_breaker_events(_started("a", ["m", "r"], 10.0) + _started("b", ["m", "p", "r"], 10.0))
    store.append_breaker_events([
        _row("a", "m", "closed", "open", 11.0),
        _row("b", "m", "closed", "open", 11.0), _row("b", "p", "closed", "open", 12.0),
        _row("b", "p", "open", "half_open", 13.0),
    ])
    seen, listen = _selects(store)
    event.listen(store.engine, "before_cursor_execute", listen)
    try:
        counts = breaker_counts(store)
    finally:
        event.remove(store.engine, "before_cursor_execute", listen)
    assert len(seen) == 1
    assert counts == {"a": {"closed": 1, "open": 1, "half_open": 0, "tiers": 2},
                      "b": {"closed": 1, "open": 1, "half_open": 1, "tiers": 3}}
    assert breaker_counts(store, service="a") == {"a": counts["a"]}
    # A service known only by its breakers is a known service.
    assert known_services(store) == {"a": None, "b": None}


def test_rows_without_a_recorded_start_are_all_current(store: Store) -> None:
    store.append_breaker_events([_row("x", "m", "closed", "open", 5.0)])
    (got,) = store.breaker_states("x")
    assert (got["state"], got["configured_at"], got["current"]) == ("open", None, True)


def test_bad_rows_are_refused_and_an_empty_batch_is_nothing(store: Store) -> None:
    store.append_breaker_events([])
    with pytest.raises(ConfigError, match="needs snapshot"):
        store.append_breaker_events([{k: v for k, v in _row("s", "t", "closed", "open", 1.0).items()
                                      if k != "snapshot"}])
    assert store.count_breaker_events("s") == 0
    # The batch is one transaction: nothing of a failing batch is kept.
    ok = _row("s", "t", "closed", "open", 1.0)
    with pytest.raises(StoreError, match="refused"):  # the backend's own NOT NULL
        store.append_breaker_events([ok, {**ok, "tier": None}])
    assert store.count_breaker_events("s") == 0
