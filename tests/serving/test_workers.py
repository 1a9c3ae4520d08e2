"""Tier workers and where calls run: thread hand-off with a deadline, inline tiers, the
"auto" mode that runs fast in-memory models on the loop, and recovery of a tier its p99
kept out."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

from hindsight.serving.backend import ModelBackend, ModelOutput
from hindsight.serving.backends import RulesBackend, SklearnBackend
from hindsight.serving.breaker import CircuitBreaker
from hindsight.serving.fallback import FallbackChain, Tier
from hindsight.serving.workers import Workers, call


def test_call_returns_raises_and_times_out() -> None:
    workers = Workers("t", max_workers=2)
    release = threading.Event()
    runs: list[float] = []

    async def go() -> None:
        assert await call(workers, lambda x: x + 1, 41, 1.0, runs.append) == 42
        with pytest.raises(ZeroDivisionError):
            await call(workers, lambda x: 1 / x, 0, 1.0)
        with pytest.raises(TimeoutError):
            await call(workers, lambda _: release.wait(5), None, 0.02)

    asyncio.run(go())
    assert len(runs) == 1 and runs[0] >= 0.0
    release.set()
    workers.close()


def test_threads_grow_on_demand_up_to_the_limit() -> None:
    workers = Workers("t", max_workers=3)
    release = threading.Event()
    started = threading.Semaphore(0)
    results: list[Any] = []

    def block(_: Any) -> str:
        started.release()
        release.wait(5)
        return "done"

    for _ in range(5):
        workers.submit(block, None, lambda r, e, s: results.append((r, e)))
    for _ in range(3):
        assert started.acquire(timeout=5)
    assert workers.threads == 3  # two calls wait for a free thread
    release.set()
    deadline = time.monotonic() + 5
    while len(results) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert results == [("done", None)] * 5
    workers.close()
    with pytest.raises(RuntimeError, match="stopped"):
        workers.submit(block, None, lambda r, e, s: None)


class Counting(ModelBackend):
    """Records the thread each call ran on."""

    def __init__(self, name: str, inline: Any = False, sleep_s: float = 0.0) -> None:
        self.name, self.version, self.inline, self.sleep_s = name, "1", inline, sleep_s
        self.threads: list[str] = []

    def predict(self, inputs: Mapping[str, Any]) -> ModelOutput:
        self.threads.append(threading.current_thread().name)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        return ModelOutput(1, 1.0)


def _run_many(chain: FallbackChain, n: int) -> None:
    async def go() -> None:
        for _ in range(n):
            await chain.predict({})

    asyncio.run(go())


def test_inline_backends_run_on_the_loop_and_others_on_workers() -> None:
    model, rules = Counting("model"), Counting("rules", inline=True)
    chain = FallbackChain([model, rules])
    _run_many(chain, 3)
    assert all(t.startswith("hindsight-tier-model") for t in model.threads)
    assert RulesBackend.inline is True and ModelBackend.inline is False
    chain.close()


def test_auto_runs_inline_once_the_model_proves_fast_and_leaves_when_slow() -> None:
    model = Counting("model", inline="auto")
    chain = FallbackChain([model, Counting("rules", inline=True)], deadline_ms=2000)
    _run_many(chain, 60)
    main = threading.current_thread().name
    # The first calls run on workers until 20 run times are known, then on the loop.
    assert model.threads[0].startswith("hindsight-tier-model")
    assert model.threads[-1] == main
    # A model that turns CPU-heavy goes back to the workers, where the deadline holds.
    tier = chain.tiers[0]
    for _ in range(32):
        tier.ran(0.005)  # 5 ms of CPU per call
    model.threads.clear()
    _run_many(chain, 3)
    assert all(t.startswith("hindsight-tier-model") for t in model.threads)
    assert SklearnBackend.inline == "auto"
    chain.close()


def test_a_tier_kept_out_by_its_p99_is_probed_and_recovers() -> None:
    slow = Counting("model", sleep_s=0.06)
    tier = Tier(
        slow, breaker=CircuitBreaker(window=1000, min_calls=1000, error_rate=1.0), probe_after_s=0.2
    )
    chain = FallbackChain([tier, Counting("rules", inline=True)], deadline_ms=50)
    _run_many(chain, 25)  # every call times out: its p99 is the budget
    assert tier.p99_ms is not None and tier.p99_ms > 40
    calls = len(slow.threads)
    answer = chain.predict_sync({})
    assert answer.attempts[0].outcome == "too_slow" and len(slow.threads) == calls
    slow.sleep_s = 0.0  # it recovers
    time.sleep(0.25)
    answer = chain.predict_sync({})  # the probe
    assert answer.tier == "model" and tier.p99_ms is None  # its outage latencies are gone
    assert chain.predict_sync({}).tier == "model"
    chain.close()
