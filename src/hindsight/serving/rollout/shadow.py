"""Shadow: the candidate sees mirrored traffic off the request path; users see only the
baseline. Each mirrored request is a pair (baseline answer, candidate answer) on the same
inputs, compared as pairs: agreement rate with a Wilson interval, and once labels arrive
McNemar's test on which of the two was right.

The mirror call runs on the candidate tier's own worker threads after the response is
built, so a slow or failing candidate cannot delay or break a user's request; when
``max_in_flight`` mirrored calls are already running, further requests are not mirrored
(counted in ``skipped``). Shadow answers are logged with arm ``shadow`` and the baseline
prediction's id as their ``request_id``, so the pair can be found in the log.
"""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from hindsight.errors import ConfigError
from hindsight.serving.backend import ModelBackend, ModelOutput
from hindsight.serving.fallback import Answer, Attempt, FallbackChain, Tier
from hindsight.serving.log import PredictionRecord
from hindsight.serving.rollout import stats
from hindsight.serving.rollout.base import Rollout

__all__ = ["Shadow"]

_PAIRS = 1_000_000
_LATENCIES = 100_000


class Shadow(Rollout):
    """Mirror a ``sample`` share of requests to ``candidate`` and compare the pairs.

    ``atol`` makes numeric outputs agree within a tolerance. ``timeout_ms`` (default:
    the service's deadline) cuts off a mirrored call's result from the comparison.
    """

    kind = "shadow"

    def __init__(
        self,
        candidate: ModelBackend | Tier,
        *,
        sample: float = 1.0,
        max_in_flight: int = 32,
        atol: float = 0.0,
        timeout_ms: float | None = None,
        seed: int | None = None,
        tick_s: float | None = None,
        clock: Callable[[], float] = time.time,
        record: bool = True,
    ) -> None:
        super().__init__(candidate, tick_s=tick_s, clock=clock, record=record)
        if not 0 < sample <= 1:
            raise ConfigError(f"Shadow: sample must be in (0, 1]; got {sample!r}.")
        if not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise ConfigError(
                f"Shadow: max_in_flight must be a positive int; got {max_in_flight!r}."
            )
        if atol < 0:
            raise ConfigError(f"Shadow: atol must be >= 0; got {atol!r}.")
        self.sample = float(sample)
        self.max_in_flight = int(max_in_flight)
        self.atol = float(atol)
        self.timeout_ms = timeout_ms
        self._rng = random.Random(seed)
        self._in_flight = 0
        self._count_lock = threading.Lock()
        self.mirrored = 0
        self.skipped = 0
        self.errors = 0
        self.late = 0
        # prediction id -> [baseline output, candidate output, baseline right, candidate right]
        self._pairs: OrderedDict[str, list[Any]] = OrderedDict()
        # The latest pairs' latencies (bounded like the pairs themselves).
        self._base_ms: deque[float] = deque(maxlen=_LATENCIES)
        self._cand_ms: deque[float] = deque(maxlen=_LATENCIES)

    def route(self, key: str, baseline: FallbackChain) -> tuple[str, FallbackChain]:
        return "baseline", baseline

    def after(self, arm: str, inputs: Mapping[str, Any], response: Any) -> None:
        super().after(arm, inputs, response)
        if self.sample < 1.0 and self._rng.random() >= self.sample:
            return
        with self._count_lock:
            if self._in_flight >= self.max_in_flight:
                self.skipped += 1
                return
            self._in_flight += 1
            self.mirrored += 1
        started = time.perf_counter()
        mirrored = dict(inputs)
        try:
            self.candidate.workers.submit(
                self.candidate.backend.predict,
                mirrored,
                lambda out, exc, _cpu_s: self._done(out, exc, response, mirrored, started),
            )
        except RuntimeError:  # the workers were stopped: the service is closing
            with self._count_lock:
                self._in_flight -= 1

    def _done(
        self,
        out: Any,
        exc: BaseException | None,
        response: Any,
        inputs: dict[str, Any],
        started: float,
    ) -> None:
        ms = (time.perf_counter() - started) * 1000.0
        try:
            with self._count_lock:
                self._in_flight -= 1
            limit = self.timeout_ms if self.timeout_ms is not None else self._service().deadline_ms
            problem = (
                f"{type(exc).__name__}: {exc}" if exc is not None
                else out.problem() if isinstance(out, ModelOutput)
                else "the backend returned no ModelOutput"
            )  # fmt: skip
            self.candidate.observe(ms)
            if problem is not None:
                with self._count_lock:
                    self.errors += 1
                self._log(
                    response, inputs, None, ms, Attempt(self.candidate.name, "error", ms, problem)
                )
                return
            assert isinstance(out, ModelOutput)
            if ms > limit:
                with self._count_lock:
                    self.late += 1
            with self._count_lock:
                self._pairs[response.id] = [response.output, out.output, None, None]
                if len(self._pairs) > _PAIRS:
                    self._pairs.popitem(last=False)
                self._base_ms.append(response.latency_ms)
                self._cand_ms.append(ms)
            self._log(response, inputs, out, ms, Attempt(self.candidate.name, "answered", ms))
        except Exception:  # a callback must not die silently: log it in full
            import logging

            logging.getLogger(__name__).exception(
                "shadow %s: could not record a mirrored call", self.id
            )

    def _log(
        self,
        response: Any,
        inputs: dict[str, Any],
        out: ModelOutput | None,
        ms: float,
        attempt: Attempt,
    ) -> None:
        service = self._service()
        if service.log is None:
            return
        answer = Answer(
            output=None if out is None else out.output,
            confidence=None if out is None else out.confidence,
            tier=self.candidate.name,
            version=self.candidate_version,
            attempts=(attempt,),
            latency_ms=ms,
        )
        service.log.log(
            PredictionRecord.from_answer(
                answer,
                service=service.name,
                inputs=inputs if service.log_inputs else None,
                arm="shadow",
                request_id=response.id,
                reason=attempt.describe() if attempt.outcome != "answered" else "shadow",
            )
        )

    def observe_outcome(self, prediction_id: str, label: Any, reward: Any) -> None:
        if label is None:
            return
        with self._count_lock:
            pair = self._pairs.get(prediction_id)
            if pair is not None:
                pair[2] = self._agree(pair[0], label)
                pair[3] = self._agree(pair[1], label)

    def _agree(self, a: Any, b: Any) -> bool:
        if (
            self.atol > 0
            and isinstance(a, int | float)
            and isinstance(b, int | float)
            and not isinstance(a, bool)
            and not isinstance(b, bool)
        ):
            return abs(float(a) - float(b)) <= self.atol
        return bool(a == b)

    def comparison(self) -> dict[str, Any]:
        """Agreement, McNemar on labelled pairs, and latency, as JSON-safe numbers."""
        with self._count_lock:
            pairs = list(self._pairs.values())
            base_ms = np.asarray(self._base_ms, dtype=float)
            cand_ms = np.asarray(self._cand_ms, dtype=float)
        out: dict[str, Any] = {"pairs": len(pairs)}
        if pairs:
            agree = np.fromiter((self._agree(p[0], p[1]) for p in pairs), bool, len(pairs))
            k, n = int(agree.sum()), len(pairs)
            low, high = stats.wilson_interval(k, n)
            out["agreement"] = {"rate": k / n, "ci": [low, high], "agree": k, "n": n}
            labelled = [(p[2], p[3]) for p in pairs if p[2] is not None]
            out["labelled"] = len(labelled)
            if labelled:
                lab = np.asarray(labelled, dtype=bool)
                out["baseline_accuracy"] = float(lab[:, 0].mean())
                out["candidate_accuracy"] = float(lab[:, 1].mean())
                out["mcnemar"] = stats.mcnemar(lab[:, 0], lab[:, 1]).to_dict()
        if base_ms.size >= 20 and cand_ms.size >= 20:
            out["latency"] = stats.compare_latency(base_ms, cand_ms).to_dict()
        return out

    def status(self) -> dict[str, Any]:
        with self._count_lock:
            counts = {
                "mirrored": self.mirrored,
                "skipped": self.skipped,
                "errors": self.errors,
                "late": self.late,
                "in_flight": self._in_flight,
            }
        return {**super().status(), "sample": self.sample, **counts, **self.comparison()}

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "sample": self.sample,
            "max_in_flight": self.max_in_flight,
            "atol": self.atol,
        }

    def stop(self, reason: str = "stopped by an operator") -> None:
        with self._lock:
            if not self.active:
                return
            self.analyses.append({"decision": "report", **self.comparison()})
            self._finish("stopped", reason)
