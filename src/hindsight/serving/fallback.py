"""A fallback chain under a per-request deadline: every request gets an answer in time.

Tiers are tried in order (e.g. primary model, previous version, rules). A tier is
skipped when its circuit breaker is open or its recent p99 latency exceeds the time
left (but still called once ``Tier.probe_after_s`` after its last call, so a model that
recovered gets a chance to show it), and each call is cut off at the deadline minus what the last tier needs, so the
last tier always has its budget. Every answer says which tier answered and, for each
tier tried before it, why it did not.

Backends run on worker threads of their own per tier (:mod:`.workers`): a model that hangs ties up only
its own tier's threads (Python cannot kill a thread; the call is abandoned, its result
dropped) and its breaker soon stops sending it work. A backend marked ``inline`` (hand-
written rules) runs on the event loop instead: no thread hop, so the fail-safe cannot
miss its turn when the machine is busy.

>>> import asyncio
>>> from hindsight.serving.backend import ModelBackend, ModelOutput
>>> class Broken(ModelBackend):
...     name = "primary"
...     def predict(self, inputs):
...         raise RuntimeError("model server down")
>>> class Rules(ModelBackend):
...     name = "rules"
...     def predict(self, inputs):
...         return ModelOutput("approve" if inputs["amount"] < 100 else "review", 1.0)
>>> chain = FallbackChain([Broken(), Rules()], deadline_ms=50)
>>> answer = asyncio.run(chain.predict({"amount": 30}))
>>> answer.output, answer.tier, answer.reason
('approve', 'rules', 'primary: error (RuntimeError: model server down)')
>>> chain.close()
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hindsight._validation import Interval, validate_params
from hindsight.errors import ConfigError, FallbackExhausted
from hindsight.serving.backend import ModelBackend, ModelOutput
from hindsight.serving.breaker import CircuitBreaker
from hindsight.serving.workers import Workers, call

__all__ = ["Answer", "Attempt", "FallbackChain", "Tier"]

#: Latencies kept per tier for its p99, and how many are needed before it is trusted.
_LATENCY_WINDOW = 256
_LATENCY_MIN = 20


@dataclass(frozen=True)
class Attempt:
    """One tier's part in answering a request."""

    tier: str
    outcome: str  # answered, abstained, error, timeout, invalid, circuit_open, too_slow
    latency_ms: float
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "outcome": self.outcome,
            "latency_ms": round(self.latency_ms, 3),
            "detail": self.detail,
        }

    def describe(self) -> str:
        return f"{self.tier}: {self.outcome.replace('_', ' ')}" + (
            f" ({self.detail})" if self.detail else ""
        )


@dataclass(frozen=True)
class Answer:
    """The served prediction, which tier gave it, and why earlier tiers did not."""

    output: Any
    confidence: float | None
    tier: str
    version: str
    attempts: tuple[Attempt, ...]
    latency_ms: float

    @property
    def reason(self) -> str:
        """Why this tier answered: ``"primary"`` when the first tier did, else the misses."""
        missed = [a.describe() for a in self.attempts if a.outcome != "answered"]
        return "; ".join(missed) if missed else self.tier

    @property
    def fell_back(self) -> bool:
        return any(a.outcome != "answered" for a in self.attempts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "confidence": self.confidence,
            "tier": self.tier,
            "version": self.version,
            "reason": self.reason,
            "fell_back": self.fell_back,
            "latency_ms": round(self.latency_ms, 3),
            "attempts": [a.to_dict() for a in self.attempts],
        }


@dataclass
class Tier:
    """A backend with its circuit breaker and its recent latencies."""

    backend: ModelBackend
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    name: str = ""
    max_workers: int = 32
    #: A tier kept out by its p99 is still called once this long after its last call, so
    #: a recovered model gets new latencies (the call is cut off at the deadline anyway).
    probe_after_s: float = 1.0
    #: A backend with ``inline = "auto"`` runs on the event loop while the p90 of its calls'
    #: CPU time (without the thread hop or waits for the GIL) is below this. A p90, not a
    #: p99: a rare garbage collection inside a call must not send a cheap model back to
    #: the threads.
    inline_below_ms: float = 1.0
    _last_call: float = float("-inf")
    _latencies: deque[float] = field(default_factory=lambda: deque(maxlen=_LATENCY_WINDOW))
    _runs: deque[float] = field(default_factory=lambda: deque(maxlen=_LATENCY_WINDOW))
    _run_p90: float | None = None
    _since_run_p90: int = 0
    _p99: float | None = None
    _since_p99: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: Workers | None = None

    def __post_init__(self) -> None:
        if not self.name:
            self.name = self.backend.name

    @property
    def workers(self) -> Workers:
        """This tier's own worker threads (started on first use)."""
        with self._lock:
            if self._workers is None:
                self._workers = Workers(self.name, self.max_workers)
            return self._workers

    def observe(self, latency_ms: float) -> None:
        with self._lock:
            self._latencies.append(latency_ms)
            self._since_p99 += 1
            if self._since_p99 >= 16 or self._p99 is None:
                self._p99 = _p99(self._latencies) if len(self._latencies) >= _LATENCY_MIN else None
                self._since_p99 = 0

    def ran(self, seconds: float) -> None:
        """A call's own run time (no hand-off, no waiting): what deciding to run inline needs."""
        with self._lock:
            self._runs.append(seconds * 1000.0)
            self._since_run_p90 += 1
            if self._since_run_p90 >= 16 or self._run_p90 is None:
                self._run_p90 = (
                    _quantile(self._runs, 0.90) if len(self._runs) >= _LATENCY_MIN else None
                )
                self._since_run_p90 = 0

    def forget_latencies(self) -> None:
        """Drop the recorded latencies (the tier recovered: they describe its outage)."""
        with self._lock:
            self._latencies.clear()
            self._p99 = None
            self._since_p99 = 0
            self._runs.clear()
            self._run_p90 = None
            self._since_run_p90 = 0

    @property
    def p99_ms(self) -> float | None:
        """The p99 of this tier's recent calls (None until enough calls were seen)."""
        return self._p99

    def close(self) -> None:
        with self._lock:
            workers, self._workers = self._workers, None
        if workers is not None:
            workers.close()


def _quantile(values: deque[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _p99(values: deque[float]) -> float:
    return _quantile(values, 0.99)


class FallbackChain:
    """Try tiers in order within ``deadline_ms``; the last tier always keeps its budget.

    ``last_tier_reserve_ms`` is the time held back for the last tier (default: 10 % of
    the deadline, or the last tier's recent p99 if that is longer; at least 1 ms).
    """

    def __init__(
        self,
        tiers: Sequence[ModelBackend | Tier],
        *,
        deadline_ms: float = 50.0,
        last_tier_reserve_ms: float | None = None,
    ) -> None:
        validate_params(
            "FallbackChain",
            {"deadline_ms": deadline_ms, "last_tier_reserve_ms": last_tier_reserve_ms},
            {
                "deadline_ms": Interval(float, 0.0, None, closed="neither"),
                "last_tier_reserve_ms": Interval(float, 0.0, None, allow_none=True),
            },
        )
        if not tiers:
            raise ConfigError(
                "A FallbackChain needs at least one tier (its last is the fail-safe)."
            )
        self.tiers = [t if isinstance(t, Tier) else Tier(t) for t in tiers]
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ConfigError(f"Tier names must be unique; got {names}. Set Tier(name=...).")
        self.deadline_ms = float(deadline_ms)
        self.last_tier_reserve_ms = last_tier_reserve_ms

    def _reserve_ms(self) -> float:
        if len(self.tiers) == 1:
            return 0.0
        if self.last_tier_reserve_ms is not None:
            return float(self.last_tier_reserve_ms)
        # At least 10 % of the deadline: besides the last tier's own time, answering takes
        # the event loop's turn to come round, which under load is the larger part.
        p99 = self.tiers[-1].p99_ms
        return max(1.0, 0.1 * self.deadline_ms, p99 if p99 is not None else 0.0)

    async def predict(
        self,
        inputs: Mapping[str, Any],
        *,
        judge: Callable[[ModelOutput], str | None] | None = None,
    ) -> Answer:
        """Answer one request; raises :class:`FallbackExhausted` only if every tier failed.

        ``judge`` sees each valid answer of a tier before the last and returns why the
        tier should abstain (or None to accept it); an abstention counts against the
        tier's breaker and hands the request straight to the last tier, the fail-safe.
        """
        start = time.perf_counter()
        deadline = start + self.deadline_ms / 1000.0
        reserve = self._reserve_ms() / 1000.0
        attempts: list[Attempt] = []
        last = len(self.tiers) - 1
        abstained = False
        probe = False
        for i, tier in enumerate(self.tiers):
            if abstained and i < last:
                continue
            now = time.perf_counter()
            budget = deadline - now - (reserve if i < last else 0.0)
            if i < last:
                # Time first: a breaker's allow() hands out half-open probes, and every
                # probe it hands out must be recorded.
                p99 = tier.p99_ms
                # A breaker that is not closed governs recovery itself (its probes);
                # otherwise a stale p99 is re-tested once in a while.
                slow = p99 is not None and p99 / 1000.0 > budget
                probe = slow and (
                    tier.breaker.state != "closed" or now - tier._last_call >= tier.probe_after_s
                )
                if budget <= 0 or (slow and not probe):
                    attempts.append(
                        Attempt(
                            tier.name,
                            "too_slow",
                            0.0,
                            f"p99 {p99:.1f} ms > {max(budget, 0) * 1000:.1f} ms left"
                            if p99 is not None
                            else "no time left",
                        )
                    )
                    continue
                if not tier.breaker.allow():
                    attempts.append(
                        Attempt(tier.name, "circuit_open", 0.0, tier.breaker.reason or "")
                    )
                    continue
            else:
                budget = max(budget, reserve)
            t0 = time.perf_counter()
            tier._last_call = t0
            try:
                mode = tier.backend.inline
                if mode is True or (
                    mode == "auto"
                    and tier._run_p90 is not None
                    and tier._run_p90 <= tier.inline_below_ms
                    and tier.breaker.state == "closed"
                ):
                    cpu0 = time.thread_time()
                    out = tier.backend.predict(inputs)
                    if mode == "auto":
                        tier.ran(time.thread_time() - cpu0)
                else:
                    out = await call(tier.workers, tier.backend.predict, inputs, budget, tier.ran)
            except TimeoutError:
                ms = (time.perf_counter() - t0) * 1000.0
                tier.breaker.record(ok=False, latency_ms=ms)
                tier.observe(ms)
                attempts.append(
                    Attempt(tier.name, "timeout", ms, f"no answer in {budget * 1000:.1f} ms")
                )
                continue
            except Exception as exc:  # a model's own failure is this tier's miss
                ms = (time.perf_counter() - t0) * 1000.0
                tier.breaker.record(ok=False, latency_ms=ms)
                tier.observe(ms)
                attempts.append(Attempt(tier.name, "error", ms, f"{type(exc).__name__}: {exc}"))
                continue
            ms = (time.perf_counter() - t0) * 1000.0
            if i < last and probe and ms < 0.5 * budget * 1000.0:
                tier.forget_latencies()  # a fast answer despite its p99: it recovered
            tier.observe(ms)
            answer = _as_output(out)
            problem = (
                answer.problem() if answer is not None else "the backend returned no ModelOutput"
            )
            if problem is not None:
                tier.breaker.record(ok=False, latency_ms=ms)
                attempts.append(Attempt(tier.name, "invalid", ms, problem))
                continue
            assert answer is not None
            why = judge(answer) if judge is not None and i < last else None
            if why:
                tier.breaker.record(ok=True, latency_ms=ms, abstained=True)
                attempts.append(Attempt(tier.name, "abstained", ms, why))
                abstained = True
                continue
            was = tier.breaker.state
            tier.breaker.record(ok=True, latency_ms=ms)
            if was == "half_open" and tier.breaker.state == "closed":
                tier.forget_latencies()  # its outage's latencies say nothing about it now
            attempts.append(Attempt(tier.name, "answered", ms))
            return Answer(
                output=answer.output,
                confidence=answer.confidence,
                tier=tier.name,
                version=tier.backend.version,
                attempts=tuple(attempts),
                latency_ms=(time.perf_counter() - start) * 1000.0,
            )
        raise FallbackExhausted(
            "Every tier failed within the deadline: "
            + "; ".join(a.describe() for a in attempts)
            + ". Make the last tier a rule set that cannot fail."
        )

    def predict_sync(
        self,
        inputs: Mapping[str, Any],
        *,
        judge: Callable[[ModelOutput], str | None] | None = None,
    ) -> Answer:
        """:meth:`predict` from synchronous code (not from inside a running event loop)."""
        return asyncio.run(self.predict(inputs, judge=judge))

    def snapshot(self) -> list[dict[str, Any]]:
        """Each tier's breaker state and recent p99, for the status endpoint."""
        return [
            {
                "tier": t.name,
                **t.backend.describe(),
                "p99_ms": t.p99_ms,
                "breaker": t.breaker.snapshot(),
            }
            for t in self.tiers
        ]

    def close(self) -> None:
        """Stop the tiers' thread pools (calls still running are abandoned)."""
        for tier in self.tiers:
            tier.close()


def _as_output(out: Any) -> ModelOutput | None:
    return out if isinstance(out, ModelOutput) else None
