"""The fallback chain answers every request within its deadline, and says who answered and why."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

from hindsight.errors import ConfigError, FallbackExhausted
from hindsight.serving.backend import ModelBackend, ModelOutput
from hindsight.serving.breaker import CircuitBreaker
from hindsight.serving.fallback import FallbackChain, Tier


class Fake(ModelBackend):
    def __init__(
        self,
        name: str,
        *,
        output: Any = 1.0,
        sleep_s: float = 0.0,
        fail: bool = False,
        hang: threading.Event | None = None,
    ) -> None:
        self.name, self.version = name, "1"
        self.output, self.sleep_s, self.fail, self.hang = output, sleep_s, fail, hang
        self.calls = 0

    def predict(self, inputs: Mapping[str, Any]) -> ModelOutput:
        self.calls += 1
        if self.hang is not None:
            self.hang.wait(5)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        if self.fail:
            raise RuntimeError(f"{self.name} is down")
        return ModelOutput(self.output, 0.9)


def run(chain: FallbackChain, inputs: Mapping[str, Any] | None = None):
    return chain.predict_sync(inputs or {"x": 1})


def test_primary_answers_when_healthy() -> None:
    chain = FallbackChain([Fake("primary", output="a"), Fake("rules", output="r")])
    answer = run(chain)
    assert (answer.output, answer.tier, answer.reason, answer.fell_back) == (
        "a",
        "primary",
        "primary",
        False,
    )
    assert answer.to_dict()["attempts"][0]["outcome"] == "answered"
    chain.close()


@pytest.mark.parametrize(
    ("primary", "outcome"),
    [
        (Fake("primary", fail=True), "error"),
        (Fake("primary", output=float("nan")), "invalid"),
        (Fake("primary", sleep_s=0.2), "timeout"),
    ],
)
def test_each_fault_falls_back_within_the_deadline(primary: Fake, outcome: str) -> None:
    chain = FallbackChain([primary, Fake("rules", output="r")], deadline_ms=50)
    t0 = time.perf_counter()
    answer = run(chain)
    elapsed_ms = (time.perf_counter() - t0) * 1000
    assert answer.output == "r" and answer.tier == "rules"
    assert answer.attempts[0].outcome == outcome
    assert answer.reason.startswith(f"primary: {outcome}")
    # The answer comes within the deadline plus a small margin for the event loop.
    assert elapsed_ms < 50 + 40
    chain.close()


def test_a_hanging_primary_never_blocks_an_answer() -> None:
    release = threading.Event()
    chain = FallbackChain(
        # A generous reserve: the fake rules tier runs on a worker thread, and on a loaded
        # CI machine a thread hop alone can take longer than a few milliseconds.
        [Fake("primary", hang=release), Fake("rules", output="r")], deadline_ms=200,
        last_tier_reserve_ms=50,
    )
    answers = [run(chain) for _ in range(5)]
    release.set()
    assert all(a.tier == "rules" for a in answers)
    assert {a.attempts[0].outcome for a in answers} <= {"timeout", "circuit_open", "too_slow"}
    chain.close()


def test_open_circuit_skips_the_tier_and_half_open_probe_recovers() -> None:
    now = [0.0]
    breaker = CircuitBreaker(
        window=10, min_calls=4, error_rate=0.5, open_for_s=1.0, clock=lambda: now[0]
    )
    primary = Fake("primary", fail=True)
    chain = FallbackChain([Tier(primary, breaker=breaker), Fake("rules")], deadline_ms=50)
    for _ in range(4):
        run(chain)
    assert breaker.state == "open"
    calls = primary.calls
    skipped = run(chain)
    assert skipped.attempts[0].outcome == "circuit_open" and primary.calls == calls
    primary.fail = False
    now[0] += 1.5  # past open_for_s: half-open probes go through
    answers = [run(chain) for _ in range(breaker.half_open_probes)]
    assert all(a.tier == "primary" for a in answers)
    assert breaker.state == "closed"
    chain.close()


def test_a_slow_tier_is_skipped_by_its_p99_and_the_last_tier_keeps_its_budget() -> None:
    slow = Fake("slow", sleep_s=0.03)
    chain = FallbackChain(
        [Tier(slow, breaker=CircuitBreaker(slow_call_ms=None)), Fake("rules")],
        deadline_ms=60,
        last_tier_reserve_ms=5,
    )
    for _ in range(25):  # learn its p99 (about 30 ms)
        assert run(chain).tier == "slow"
    tight = FallbackChain(
        [chain.tiers[0], Tier(Fake("rules2"))], deadline_ms=20, last_tier_reserve_ms=5
    )
    answer = run(tight)
    assert answer.tier == "rules2"
    assert answer.attempts[0].outcome == "too_slow" and "p99" in answer.attempts[0].detail
    chain.close()
    tight.close()


def test_every_tier_failing_raises_with_every_reason() -> None:
    chain = FallbackChain([Fake("a", fail=True), Fake("b", fail=True)])
    with pytest.raises(FallbackExhausted, match=r"a: error .*; b: error"):
        run(chain)
    chain.close()


def test_concurrent_requests_are_answered() -> None:
    chain = FallbackChain([Fake("primary", sleep_s=0.005), Fake("rules")], deadline_ms=100)

    async def many() -> list[str]:
        answers = await asyncio.gather(*(chain.predict({"i": i}) for i in range(50)))
        return [a.tier for a in answers]

    assert asyncio.run(many()) == ["primary"] * 50
    chain.close()


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="at least one tier"):
        FallbackChain([])
    with pytest.raises(ConfigError, match="'deadline_ms' parameter of FallbackChain"):
        FallbackChain([Fake("a")], deadline_ms=0)
    with pytest.raises(ConfigError, match="unique"):
        FallbackChain([Fake("a"), Fake("a")])
