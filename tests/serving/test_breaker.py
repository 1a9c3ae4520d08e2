"""CircuitBreaker: trips at the exact thresholds, half-open probes, reasons, threads."""

from __future__ import annotations

import doctest
import threading
from typing import Any

import pytest

import hindsight.serving.breaker as breaker_module
from hindsight.errors import ConfigError
from hindsight.serving.breaker import CircuitBreaker


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock | None = None, **kwargs: Any) -> CircuitBreaker:
    kwargs.setdefault("window", 10)
    kwargs.setdefault("min_calls", 10)
    return CircuitBreaker(clock=clock or Clock(), **kwargs)


def feed(breaker: CircuitBreaker, n: int, **outcome: Any) -> None:
    outcome.setdefault("ok", True)
    outcome.setdefault("latency_ms", 10.0)
    for _ in range(n):
        breaker.record(**outcome)


def open_breaker(breaker: CircuitBreaker) -> None:
    feed(breaker, breaker.window, ok=False)
    assert breaker.state == "open"


def test_docstring_example_runs() -> None:
    result = doctest.testmod(breaker_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_defaults() -> None:
    breaker = CircuitBreaker()
    assert breaker.params() == {
        "window": 100,
        "min_calls": 20,
        "error_rate": 0.5,
        "slow_call_ms": None,
        "slow_rate": 0.5,
        "abstain_rate": None,
        "open_for_s": 5.0,
        "half_open_probes": 3,
    }
    assert breaker.state == "closed"
    assert breaker.reason is None
    assert breaker.allow()


# -- trip conditions at the boundary ----------------------------------------------------


def test_error_rate_exactly_at_threshold_trips() -> None:
    breaker = make(error_rate=0.3)
    feed(breaker, 7)
    feed(breaker, 2, ok=False)
    assert breaker.state == "closed"  # 9 calls: below min_calls
    feed(breaker, 1, ok=False)  # 3 / 10 == 0.3
    assert breaker.state == "open"
    assert breaker.reason == "error rate 0.30 >= 0.30 over the last 10 calls"


def test_error_rate_one_below_threshold_does_not_trip() -> None:
    breaker = make(error_rate=0.3)
    feed(breaker, 8)
    feed(breaker, 2, ok=False)  # 2 / 10
    feed(breaker, 20)
    assert breaker.state == "closed"
    assert breaker.snapshot()["errors"] == 0  # the failures slid out of the window


@pytest.mark.parametrize("threshold", [0.1, 0.2, 0.3, 0.6, 0.7, 0.9, 1.0])
def test_every_tenth_at_its_threshold_trips(threshold: float) -> None:
    # count >= threshold * n would miss 0.7 (0.7 * 10 is 7.000000000000001).
    k = round(threshold * 10)
    below = make(error_rate=threshold)
    feed(below, 10 - k + 1)
    feed(below, k - 1, ok=False)
    assert below.state == "closed"
    at = make(error_rate=threshold)
    feed(at, 10 - k)
    feed(at, k, ok=False)
    assert at.state == "open"


def test_min_calls_is_respected() -> None:
    breaker = make(window=100, min_calls=20)
    feed(breaker, 19, ok=False)  # every call failed, but only 19 of them
    assert breaker.state == "closed"
    feed(breaker, 1, ok=False)
    assert breaker.state == "open"
    assert breaker.reason == "error rate 1.00 >= 0.50 over the last 20 calls"


def test_min_calls_judges_the_window_as_it_grows() -> None:
    breaker = make(window=100, min_calls=4)
    feed(breaker, 2, ok=False)
    feed(breaker, 1)
    assert breaker.state == "closed"
    feed(breaker, 1)  # 2 / 4
    assert breaker.state == "open"
    assert breaker.reason == "error rate 0.50 >= 0.50 over the last 4 calls"


def test_slow_rate_at_threshold_trips() -> None:
    breaker = make(slow_call_ms=200.0, slow_rate=0.4)
    feed(breaker, 6, latency_ms=200.0)  # exactly at the limit is not slow
    feed(breaker, 3, latency_ms=200.5)
    assert breaker.state == "closed"
    feed(breaker, 1, latency_ms=900.0)  # 4 / 10
    assert breaker.state == "open"
    assert breaker.reason == (
        "slow-call rate 0.40 >= 0.40 over the last 10 calls (slower than 200 ms)"
    )


def test_slow_rate_one_below_threshold_does_not_trip() -> None:
    breaker = make(slow_call_ms=200.0, slow_rate=0.4)
    feed(breaker, 7, latency_ms=5.0)
    feed(breaker, 3, latency_ms=250.0)
    assert breaker.state == "closed"
    assert breaker.snapshot()["slow"] == 3


def test_latency_is_ignored_without_slow_call_ms() -> None:
    breaker = make(slow_rate=0.1)
    feed(breaker, 50, latency_ms=1e9)
    assert breaker.state == "closed"
    assert breaker.snapshot()["slow"] == 0


def test_abstain_rate_at_threshold_trips() -> None:
    breaker = make(abstain_rate=0.8)
    feed(breaker, 2)
    feed(breaker, 7, abstained=True)
    assert breaker.state == "closed"
    feed(breaker, 1, abstained=True)  # 8 / 10
    assert breaker.state == "open"
    assert breaker.reason == "abstention rate 0.80 >= 0.80 over the last 10 calls"


def test_abstain_rate_one_below_threshold_does_not_trip() -> None:
    breaker = make(abstain_rate=0.8)
    feed(breaker, 3)
    feed(breaker, 7, abstained=True)
    assert breaker.state == "closed"


def test_abstentions_are_counted_but_do_not_trip_when_disabled() -> None:
    breaker = make()
    feed(breaker, 10, abstained=True)
    assert breaker.state == "closed"
    assert breaker.snapshot()["abstained"] == 10


def test_error_is_reported_first_when_several_rates_trip() -> None:
    breaker = make(slow_call_ms=100.0, abstain_rate=0.5)
    feed(breaker, 10, ok=False, latency_ms=500.0, abstained=True)
    assert breaker.reason is not None
    assert breaker.reason.startswith("error rate 1.00")


def test_window_is_cleared_on_opening() -> None:
    breaker = make()
    open_breaker(breaker)
    snap = breaker.snapshot()
    assert (snap["calls"], snap["errors"], snap["error_rate"]) == (0, 0, 0.0)


def test_outcomes_recorded_while_open_are_ignored() -> None:
    breaker = make()
    open_breaker(breaker)
    feed(breaker, 5, ok=False)
    assert breaker.snapshot()["calls"] == 0
    assert breaker.state == "open"


# -- open, half-open, probes ------------------------------------------------------------


def test_open_refuses_until_open_for_s_has_passed() -> None:
    clock = Clock()
    breaker = make(clock, open_for_s=5.0)
    open_breaker(breaker)
    assert not breaker.allow()
    clock.now += 4.999
    assert not breaker.allow()
    assert breaker.state == "open"
    clock.now += 0.001
    assert breaker.allow()
    assert breaker.state == "half_open"


def test_state_stays_open_until_someone_asks() -> None:
    clock = Clock()
    breaker = make(clock, open_for_s=5.0)
    open_breaker(breaker)
    clock.now += 60.0
    assert breaker.state == "open"
    assert breaker.snapshot()["retry_in_s"] == 0.0


def test_half_open_lets_only_the_probes_through() -> None:
    clock = Clock()
    breaker = make(clock, half_open_probes=3)
    open_breaker(breaker)
    clock.now += 5.0
    assert [breaker.allow() for _ in range(5)] == [True, True, True, False, False]
    feed(breaker, 2)  # two probes succeeded, one still in flight
    assert breaker.state == "half_open"
    assert not breaker.allow()  # no new probe while one is pending
    feed(breaker, 1)
    assert breaker.state == "closed"
    assert breaker.allow()


def test_all_probes_succeeding_closes_with_a_fresh_window() -> None:
    clock = Clock()
    breaker = make(clock, half_open_probes=2)
    open_breaker(breaker)
    clock.now += 5.0
    assert breaker.allow() and breaker.allow()
    feed(breaker, 2)
    snap = breaker.snapshot()
    assert snap["state"] == "closed"
    assert snap["calls"] == 0
    assert breaker.reason == "error rate 1.00 >= 0.50 over the last 10 calls"  # kept


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        ({"ok": False}, "half-open probe failed (error)"),
        ({"latency_ms": 812.0}, "half-open probe failed (slow: 812 ms > 250 ms)"),
        ({"abstained": True}, "half-open probe failed (abstained)"),
    ],
)
def test_one_failed_probe_reopens(outcome: dict[str, Any], reason: str) -> None:
    clock = Clock()
    breaker = make(clock, slow_call_ms=250.0, abstain_rate=0.9, half_open_probes=3)
    open_breaker(breaker)
    opened_at = breaker.snapshot()["opened_at"]
    clock.now += 5.0
    assert breaker.allow() and breaker.allow()
    feed(breaker, 1)
    feed(breaker, 1, **outcome)
    assert breaker.state == "open"
    assert breaker.reason == reason
    snap = breaker.snapshot()
    assert snap["opened_at"] == opened_at + 5.0
    assert snap["times_opened"] == 2
    assert not breaker.allow()  # open for another open_for_s
    clock.now += 5.0
    assert breaker.allow()


def test_abstaining_probe_passes_when_abstentions_are_not_tracked() -> None:
    clock = Clock()
    breaker = make(clock, half_open_probes=1)
    open_breaker(breaker)
    clock.now += 5.0
    assert breaker.allow()
    feed(breaker, 1, abstained=True)
    assert breaker.state == "closed"


def test_outcomes_beyond_the_issued_probes_are_not_probes() -> None:
    clock = Clock()
    breaker = make(clock, half_open_probes=2)
    open_breaker(breaker)
    clock.now += 5.0
    assert breaker.allow()
    feed(breaker, 3)  # one probe, two stragglers from before the breaker opened
    assert breaker.state == "half_open"
    assert breaker.snapshot()["probes_succeeded"] == 1


def test_zero_open_for_s_goes_half_open_at_once() -> None:
    breaker = make(open_for_s=0.0, half_open_probes=1)
    open_breaker(breaker)
    assert breaker.allow()
    assert breaker.state == "half_open"


# -- snapshot, reset, on_change ---------------------------------------------------------


def test_snapshot_contents() -> None:
    clock = Clock()
    breaker = make(clock, window=10, min_calls=10, slow_call_ms=100.0, abstain_rate=0.9)
    feed(breaker, 1, ok=False)
    feed(breaker, 2, latency_ms=150.0)
    feed(breaker, 1, abstained=True)
    feed(breaker, 4)
    assert breaker.snapshot() == {
        "state": "closed",
        "reason": None,
        "opened_at": None,
        "retry_in_s": None,
        "times_opened": 0,
        "calls": 8,
        "errors": 1,
        "slow": 2,
        "abstained": 1,
        "error_rate": 1 / 8,
        "slow_rate": 2 / 8,
        "abstain_rate": 1 / 8,
        "probes_issued": 0,
        "probes_succeeded": 0,
    }
    open_breaker(breaker)
    clock.now += 2.0
    snap = breaker.snapshot()
    assert snap["state"] == "open"
    assert snap["opened_at"] == 1000.0
    assert snap["retry_in_s"] == pytest.approx(3.0)
    assert snap["times_opened"] == 1
    assert snap["reason"] == "error rate 0.50 >= 0.50 over the last 10 calls"
    clock.now += 3.0
    assert breaker.allow()
    snap = breaker.snapshot()
    assert (snap["state"], snap["retry_in_s"], snap["probes_issued"]) == ("half_open", None, 1)


def test_ring_evicts_the_oldest_call() -> None:
    breaker = make(window=4, min_calls=4, error_rate=1.0, slow_call_ms=10.0, slow_rate=1.0)
    feed(breaker, 1, ok=False, latency_ms=50.0, abstained=True)
    feed(breaker, 3)
    assert breaker.snapshot()["errors"] == 1
    feed(breaker, 1)
    snap = breaker.snapshot()
    assert (snap["calls"], snap["errors"], snap["slow"], snap["abstained"]) == (4, 0, 0, 0)


def test_reset_closes_and_forgets() -> None:
    changes: list[tuple[str, str, str]] = []
    breaker = make(on_change=lambda *c: changes.append(c))
    open_breaker(breaker)
    breaker.reset()
    snap = breaker.snapshot()
    assert snap["state"] == "closed"
    assert (snap["reason"], snap["opened_at"], snap["times_opened"]) == (None, None, 0)
    assert changes[-1] == ("open", "closed", "reset")
    breaker.reset()  # already closed: no change to report
    assert len(changes) == 2


def test_on_change_sees_every_transition() -> None:
    clock = Clock()
    changes: list[tuple[str, str, str]] = []
    breaker = make(clock, half_open_probes=2, on_change=lambda *c: changes.append(c))
    open_breaker(breaker)
    clock.now += 5.0
    breaker.allow()
    breaker.record(ok=False, latency_ms=1.0)
    clock.now += 5.0
    breaker.allow()
    breaker.allow()
    feed(breaker, 2)
    assert changes == [
        ("closed", "open", "error rate 1.00 >= 0.50 over the last 10 calls"),
        ("open", "half_open", "open for 5 s; letting 2 probe call(s) through"),
        ("half_open", "open", "half-open probe failed (error)"),
        ("open", "half_open", "open for 5 s; letting 2 probe call(s) through"),
        ("half_open", "closed", "all 2 half-open probe call(s) succeeded"),
    ]


def test_on_change_runs_outside_the_lock() -> None:
    seen: list[dict[str, Any]] = []
    breaker: CircuitBreaker

    def hook(old: str, new: str, reason: str) -> None:
        seen.append(breaker.snapshot())  # would deadlock if called under the lock

    breaker = make(on_change=hook)
    open_breaker(breaker)
    assert seen[0]["state"] == "open"


def test_a_failing_on_change_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def hook(old: str, new: str, reason: str) -> None:
        raise RuntimeError("pager down")

    breaker = make(on_change=hook)
    open_breaker(breaker)
    assert "on_change callback" in caplog.text
    assert "pager down" in caplog.text


def test_repr() -> None:
    breaker = make()
    feed(breaker, 3)
    assert repr(breaker) == "CircuitBreaker(state='closed', calls=3, reason=None)"


# -- threads ----------------------------------------------------------------------------


def test_concurrent_records_add_up() -> None:
    threads, per_thread = 8, 2000
    n = threads * per_thread
    breaker = CircuitBreaker(window=n, min_calls=n, error_rate=1.0)
    barrier = threading.Barrier(threads)

    def work(i: int) -> None:
        barrier.wait()
        for j in range(per_thread):
            assert breaker.allow()
            breaker.record(ok=(i + j) % 2 == 0, latency_ms=1.0, abstained=j % 4 == 0)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    snap = breaker.snapshot()
    assert snap["calls"] == threads * per_thread
    assert snap["errors"] == threads * per_thread // 2
    assert snap["abstained"] == threads * per_thread // 4
    assert snap["state"] == "closed"


def test_concurrent_allow_issues_exactly_the_probes() -> None:
    clock = Clock()
    breaker = make(clock, half_open_probes=3)
    open_breaker(breaker)
    clock.now += 5.0
    threads = 16
    barrier = threading.Barrier(threads)
    allowed: list[bool] = []
    lock = threading.Lock()

    def work() -> None:
        barrier.wait()
        got = [breaker.allow() for _ in range(50)]
        with lock:
            allowed.extend(got)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert sum(allowed) == 3


# -- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 0}, "The 'window' parameter of CircuitBreaker must be an int >= 1. Got 0."),
        ({"window": 2.5}, "The 'window' parameter of CircuitBreaker must be an int >= 1. Got 2.5."),
        (
            {"error_rate": 0},
            "The 'error_rate' parameter of CircuitBreaker must be a float in (0, 1]. Got 0.",
        ),
        (
            {"error_rate": 1.5},
            "The 'error_rate' parameter of CircuitBreaker must be a float in (0, 1]. Got 1.5.",
        ),
        (
            {"error_rate": None},
            "The 'error_rate' parameter of CircuitBreaker must be a float in (0, 1]. Got None.",
        ),
        (
            {"slow_call_ms": 0},
            "The 'slow_call_ms' parameter of CircuitBreaker must be a float > 0 or None. Got 0.",
        ),
        (
            {"slow_rate": float("nan")},
            "The 'slow_rate' parameter of CircuitBreaker must be a float in (0, 1]. Got nan.",
        ),
        (
            {"abstain_rate": -0.1},
            "The 'abstain_rate' parameter of CircuitBreaker must be a float in (0, 1] or None. "
            "Got -0.1.",
        ),
        (
            {"open_for_s": -1},
            "The 'open_for_s' parameter of CircuitBreaker must be a float >= 0. Got -1.",
        ),
        (
            {"half_open_probes": 0},
            "The 'half_open_probes' parameter of CircuitBreaker must be an int >= 1. Got 0.",
        ),
        (
            {"window": 10, "min_calls": 11},
            "The 'min_calls' parameter of CircuitBreaker must be an int in [1, 10]. Got 11.",
        ),
        (
            {"min_calls": 0},
            "The 'min_calls' parameter of CircuitBreaker must be an int in [1, 100]. Got 0.",
        ),
        (
            {"clock": 3.0},
            "The 'clock' parameter of CircuitBreaker must be a callable. Got 3.0.",
        ),
        (
            {"on_change": "log"},
            "The 'on_change' parameter of CircuitBreaker must be a callable or None. Got 'log'.",
        ),
    ],
)
def test_parameter_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        CircuitBreaker(**kwargs)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_parameters_are_read_only() -> None:
    breaker = CircuitBreaker()
    with pytest.raises(AttributeError):
        breaker.window = 5  # type: ignore[misc]
