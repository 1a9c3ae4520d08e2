"""Circuit-breaker changes of a real Service reach the store through the prediction log's
writer, on SQLite and PostgreSQL: opening with its reason and figures, recovery through
half-open, the state at start, promotion, chaining with ``on_change``, and a store that
fails (serving goes on; the events wait, bounded)."""

from __future__ import annotations

import asyncio
import doctest
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

import hindsight.serving.breaker_events as breaker_events_module
from hindsight.errors import StoreError, StoreUnavailable
from hindsight.serving import (
    BreakerChange,
    CallableBackend,
    CircuitBreaker,
    MockBackend,
    PredictionLog,
    RulesBackend,
    Service,
    Tier,
)
from hindsight.serving.breaker_events import BreakerEvent, BreakerEventQueue
from hindsight.store import Store, open_store
from switch_model import Switch


class FlakyStore(Store):
    """A real store whose breaker and prediction writes can be made to fail or to block."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner.engine, inner.url)
        self.fail: type[Exception] | None = None
        self.gate = threading.Event()
        self.gate.set()
        self.breaker_calls: list[int] = []

    def append_breaker_events(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.gate.wait(30)
        self.breaker_calls.append(len(rows))
        if self.fail is not None:
            raise self.fail("database down (test)")
        super().append_breaker_events(rows)

    def append_predictions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if self.fail is not None:
            raise self.fail("database down (test)")
        super().append_predictions(rows)


@pytest.fixture
def store(store_url: str) -> Iterator[FlakyStore]:
    s = FlakyStore(open_store(store_url))
    try:
        yield s
    finally:
        s.close()


def _service(store: Store, breaker: CircuitBreaker, model: Switch, **kw: Any) -> Service:
    return Service(
        "loans",
        [Tier(CallableBackend(model, name="model", version="3"), breaker=breaker),
         RulesBackend([], "rules-answer", name="rules")],
        store=store, deadline_ms=2000.0, **kw,
    )  # fmt: skip


def _drive(svc: Service, n: int) -> list[Any]:
    async def go() -> list[Any]:
        return [await svc.predict({"i": i}) for i in range(n)]

    return asyncio.run(go())


def _transitions(store: Store, tier: str = "model") -> list[tuple[str, str, str | None]]:
    return [(e["previous"], e["state"], e["reason"])
            for e in reversed(store.breaker_events("loans", tier))]  # fmt: skip


def test_the_module_example_runs() -> None:
    result = doctest.testmod(breaker_events_module)
    assert result.attempted > 0 and result.failed == 0


def test_a_failing_primary_opens_and_recovers_through_half_open(store: FlakyStore) -> None:
    now = [0.0]
    breaker = CircuitBreaker(window=10, min_calls=10, error_rate=0.5, open_for_s=5.0,
                             half_open_probes=2, clock=lambda: now[0])  # fmt: skip
    model = Switch()
    svc = _service(store, breaker, model)
    _drive(svc, 5)  # healthy
    model.down = True
    answers = _drive(svc, 10)
    assert [a.tier for a in answers] == ["rules"] * 10
    assert breaker.state == "open"
    svc.log.flush()  # type: ignore[union-attr]
    # The start of both tiers, then the opening, with the figures that tripped it.
    assert _transitions(store) == [
        ("closed", "closed", "service started"),
        ("closed", "open", "error rate 0.50 >= 0.50 over the last 10 calls"),
    ]
    assert _transitions(store, "rules") == [("closed", "closed", "service started")]
    opened = store.breaker_events("loans", "model", limit=1)[0]
    snap = opened["snapshot"]
    assert (snap["calls"], snap["errors"], snap["error_rate"], snap["times_opened"]) == (
        10, 5, 0.5, 1)
    assert snap["state"] == "open" and snap["position"] == 0
    assert opened["at"] == pytest.approx(time.time(), abs=30)
    states = {s["tier"]: s for s in store.breaker_states("loans")}
    assert (states["model"]["state"], states["rules"]["state"]) == ("open", "closed")

    # Recovery: after open_for_s the next request is a probe; two good probes close it.
    model.down = False
    now[0] += 5.0
    answers = _drive(svc, 3)
    assert [a.tier for a in answers] == ["model"] * 3
    assert breaker.state == "closed"
    svc.close()
    assert _transitions(store)[2:] == [
        ("open", "half_open", "open for 5 s; letting 2 probe call(s) through"),
        ("half_open", "closed", "all 2 half-open probe call(s) succeeded"),
    ]
    closed = store.breaker_events("loans", "model", limit=1)[0]["snapshot"]
    assert (closed["probes_issued"], closed["probes_succeeded"]) == (2, 2)
    assert store.breaker_states("loans")[0]["state"] == "closed"
    # The requests themselves were logged as usual.
    assert len(store.list_predictions(service="loans")) == 18


def test_a_failed_probe_reopens_and_on_change_keeps_working(store: FlakyStore) -> None:
    now = [0.0]
    seen: list[tuple[str, str, str]] = []

    def alert(old: str, new: str, reason: str) -> None:
        seen.append((old, new, reason))
        raise RuntimeError("the alert channel is down")  # must not stop the recording

    breaker = CircuitBreaker(window=4, min_calls=4, open_for_s=1.0, half_open_probes=1,
                             clock=lambda: now[0], on_change=alert)  # fmt: skip
    model = Switch()
    model.down = True
    svc = _service(store, breaker, model)
    _drive(svc, 4)
    now[0] += 1.0
    _drive(svc, 1)  # the probe fails
    svc.close()
    expected = [
        ("closed", "open", "error rate 1.00 >= 0.50 over the last 4 calls"),
        ("open", "half_open", "open for 1 s; letting 1 probe call(s) through"),
        ("half_open", "open", "half-open probe failed (error)"),
    ]
    assert seen == expected
    assert _transitions(store)[1:] == expected
    reopened = store.breaker_events("loans", "model", limit=1)[0]["snapshot"]
    assert (reopened["probes_issued"], reopened["times_opened"]) == (1, 2)


def test_listeners_see_the_figures_at_the_change_and_can_be_removed() -> None:
    got: list[BreakerChange] = []
    breaker = CircuitBreaker(window=5, min_calls=5, error_rate=0.6)

    def broken(_change: BreakerChange) -> None:
        raise RuntimeError("boom")

    breaker.add_listener(broken)  # a failing listener does not stop the next one
    breaker.add_listener(got.append)
    for ok in (True, False, False, True, False):
        breaker.record(ok=ok, latency_ms=1.0)
    assert breaker.state == "open"
    (change,) = got
    assert (change.previous, change.state) == ("closed", "open")
    assert change.reason == "error rate 0.60 >= 0.60 over the last 5 calls"
    # Taken before the opening cleared the window (the breaker's own snapshot is empty now).
    assert (change.snapshot["calls"], change.snapshot["errors"]) == (5, 3)
    assert breaker.snapshot()["calls"] == 0
    breaker.remove_listener(got.append)
    breaker.reset()
    assert len(got) == 1


def test_a_promotion_records_the_new_chain_and_the_old_primary_is_gone(
    store: FlakyStore,
) -> None:
    svc = Service("loans", [MockBackend("a", name="model-v1"), RulesBackend([], "r", name="rules")],
                  store=store, deadline_ms=2000.0)  # fmt: skip
    old_breaker = svc.primary.breaker
    svc.promote(Tier(MockBackend("b", name="model-v2"), name="model-v2"))
    # The old primary's breaker is no longer listened to.
    for _ in range(40):
        old_breaker.record(ok=False, latency_ms=1.0)
    assert old_breaker.state == "open"
    svc.close()
    states = {s["tier"]: (s["state"], s["reason"], s["current"]) for s in store.breaker_states("loans")}
    assert states == {
        "model-v1": ("closed", "service started", False),
        "model-v2": ("closed", "model-v2 promoted to primary", True),
        "rules": ("closed", "model-v2 promoted to primary", True),
    }
    assert store.count_breaker_events("loans", "model-v1") == 1


def test_a_store_that_fails_does_not_break_serving(store: FlakyStore) -> None:
    breaker = CircuitBreaker(window=4, min_calls=4)
    model = Switch()
    svc = _service(store, breaker, model)
    log = svc.log
    assert log is not None
    store.fail = StoreUnavailable
    model.down = True
    answers = _drive(svc, 6)
    assert [a.output for a in answers] == ["rules-answer"] * 6
    assert breaker.state == "open"
    assert log.flush() == 0  # nothing written, nothing raised
    assert log.breakers.pending == 3 and log.breakers.written == 0
    assert store.count_breaker_events("loans") == 0
    # The store comes back: the held events are written, in order.
    store.fail = None
    log.flush()
    assert log.breakers.pending == 0 and log.breakers.written == 3
    svc.close()
    assert _transitions(store) == [
        ("closed", "closed", "service started"),
        ("closed", "open", "error rate 1.00 >= 0.50 over the last 4 calls"),
    ]


def test_a_blocked_store_never_holds_up_a_request(store: FlakyStore) -> None:
    """The writer is stuck inside the store; requests that open the breaker still answer at
    once, and the events are written when the store lets go."""
    breaker = CircuitBreaker(window=4, min_calls=4)
    model = Switch()
    svc = Service(
        "loans",
        [Tier(CallableBackend(model, name="model", version="3"), breaker=breaker),
         RulesBackend([], "rules-answer", name="rules")],
        log=PredictionLog(store, flush_interval_s=0.01), deadline_ms=2000.0,
    )  # fmt: skip
    store.gate.clear()
    time.sleep(0.05)  # the writer is now waiting inside append_breaker_events
    model.down = True
    t0 = time.perf_counter()
    answers = _drive(svc, 20)
    elapsed = time.perf_counter() - t0
    assert breaker.state == "open" and answers[-1].tier == "rules"
    assert elapsed < 2.0, elapsed
    store.gate.set()
    svc.close()
    assert svc.log is not None
    svc.log.close()
    assert ("closed", "open", "error rate 1.00 >= 0.50 over the last 4 calls") in _transitions(store)


def test_refused_events_are_dropped_and_counted(
    store: FlakyStore, caplog: pytest.LogCaptureFixture
) -> None:
    queue = BreakerEventQueue(store, max_queue=3)
    event = BreakerEvent("loans", "model", "open", "closed", "why", {"calls": 1}, 1.0)
    for _ in range(4):
        queue.add(event)
    assert (queue.pending, queue.dropped) == (3, 1)
    store.fail = StoreError
    with caplog.at_level(logging.ERROR):
        assert queue.flush() == 0
    assert (queue.rejected, queue.pending) == (3, 0)
    assert "refused by the store" in caplog.text
    store.fail = None
    queue.add(event)
    assert queue.flush() == 1
    queue.close()
    queue.add(event)
    assert queue.dropped == 2 and store.count_breaker_events("loans") == 1


def test_a_service_without_a_store_records_nothing() -> None:
    breaker = CircuitBreaker(window=2, min_calls=2)
    model = Switch()
    model.down = True
    svc = Service("loans", [Tier(CallableBackend(model, name="model", version="1"),
                                 breaker=breaker), RulesBackend([], "r")])  # fmt: skip
    _drive(svc, 3)
    assert breaker.state == "open" and svc.log is None
    svc.close()
