"""What canary, shadow and A/B rollouts share: routing by a hashed key, per-arm
observations, persistence in the ``rollouts`` table, a ledger experiment, a ticker.

A rollout is attached to a :class:`~hindsight.serving.service.Service` with
``service.start_rollout(rollout)``. On each request the service asks it which arm
serves (:meth:`Rollout.route`) and tells it what happened (:meth:`Rollout.after`);
outcomes that arrive later go to :meth:`Rollout.observe_outcome`. Analysis runs in
:meth:`Rollout.tick`, called by a background thread every ``tick_s`` seconds (or by
hand in tests, with ``tick_s=None`` and a fake ``clock``).
"""

from __future__ import annotations

import abc
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from hindsight.errors import ConfigError, ServingError
from hindsight.ledger.ids import new_id
from hindsight.serving.backend import ModelBackend
from hindsight.serving.fallback import FallbackChain, Tier
from hindsight.store.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from hindsight.ledger.experiment import Experiment
    from hindsight.serving.service import Response, Service

__all__ = ["ArmWindow", "Rollout", "unit_hash"]

logger = logging.getLogger(__name__)

#: Predictions remembered per rollout so late outcomes can be joined to their arm.
_REMEMBER = 1_000_000


def unit_hash(key: str, salt: str) -> float:
    """A stable number in [0, 1) for a key: the same key always lands in the same arm."""
    digest = hashlib.blake2b(key.encode(), digest_size=8, key=salt.encode()[:64]).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class ArmWindow:
    """What one arm saw: counts and, later, outcomes; with ``samples`` also every latency
    and output (what an interval's tests need). Thread-safe.

    Totals over a whole rollout keep counts only (``samples=False``), so a long canary
    does not grow without bound.
    """

    def __init__(self, *, samples: bool = True) -> None:
        self._lock = threading.Lock()
        self.samples = samples
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.n = 0
            self.errors = 0
            self.fallbacks = 0
            self.abstentions = 0
            self.latency_ms: list[float] = []
            self.outputs: list[Any] = []
            self.labelled = 0
            self.correct = 0
            self.rewarded = 0  # outcomes with a reward
            self.rewards_positive = 0  # ... above 0 (a click, a purchase)
            self.reward_sum = 0.0

    def observe(self, response: Response) -> None:
        first = response.answer.attempts[0] if response.answer.attempts else None
        # The arm's own model did not answer: it failed, or its breaker / p99 kept it out.
        error = first is not None and first.outcome in (
            "error", "timeout", "invalid", "circuit_open", "too_slow",
        )  # fmt: skip
        out = response.output
        with self._lock:
            self.n += 1
            self.errors += error
            self.fallbacks += response.fell_back and not response.abstained
            self.abstentions += response.abstained
            if self.samples:
                self.latency_ms.append(response.latency_ms)
                if isinstance(out, str | int | float | bool):
                    self.outputs.append(out)

    def observe_outcome(self, correct: bool | None, reward: float | None) -> None:
        with self._lock:
            if correct is not None:
                self.labelled += 1
                self.correct += bool(correct)
            if reward is not None:
                self.rewarded += 1
                self.rewards_positive += reward > 0
                self.reward_sum += reward

    def arrays(self) -> dict[str, Any]:
        """A consistent copy for analysis (NumPy arrays, plain counts)."""
        with self._lock:
            return {
                "n": self.n,
                "errors": self.errors,
                "fallbacks": self.fallbacks,
                "abstentions": self.abstentions,
                "latency_ms": np.asarray(self.latency_ms, dtype=float),
                "outputs": list(self.outputs),
                "labelled": self.labelled,
                "correct": self.correct,
                "rewarded": self.rewarded,
                "rewards_positive": self.rewards_positive,
                "reward_sum": self.reward_sum,
            }

    def summary(self) -> dict[str, Any]:
        a = self.arrays()
        lat = a["latency_ms"]
        n = a["n"]
        return {
            "requests": n,
            "error_rate": a["errors"] / n if n else None,
            "fallback_rate": a["fallbacks"] / n if n else None,
            "abstention_rate": a["abstentions"] / n if n else None,
            "p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
            "p99_ms": float(np.percentile(lat, 99)) if lat.size else None,
            "labelled": a["labelled"],
            "accuracy": a["correct"] / a["labelled"] if a["labelled"] else None,
            "mean_reward": a["reward_sum"] / a["rewarded"] if a["rewarded"] else None,
        }


def _check_candidate(candidate: Any) -> Tier:
    if isinstance(candidate, Tier):
        return candidate
    if isinstance(candidate, ModelBackend):
        return Tier(candidate)
    raise ConfigError(
        f"A rollout's candidate must be a ModelBackend (or a Tier); got {type(candidate).__name__}."
    )


class Rollout(abc.ABC):
    """A canary, shadow or A/B test of a candidate model on one service."""

    kind: str = "rollout"

    def __init__(
        self,
        candidate: ModelBackend | Tier,
        *,
        tick_s: float | None = 1.0,
        clock: Callable[[], float] = time.time,
        record: bool = True,
        salt: str | None = None,
    ) -> None:
        self.candidate = _check_candidate(candidate)
        if salt is not None and (not isinstance(salt, str) or not salt):
            raise ConfigError(f"salt must be a non-empty string or None; got {salt!r}.")
        if tick_s is not None and not tick_s > 0:
            raise ConfigError(
                f"tick_s must be a positive number of seconds or None; got {tick_s!r}."
            )
        self.tick_s = tick_s
        self.clock = clock
        self.record = bool(record)
        self.id = new_id("rollout")
        # What keys are hashed with to pick an arm: the rollout's id by default (each
        # rollout reshuffles users); a fixed salt makes the assignment reproducible.
        self.salt = self.id if salt is None else salt
        self.status_name = "pending"
        self.reason = ""
        self.service: Service | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.experiment: Experiment | None = None
        self.failure_id: str | None = None
        self.analyses: list[dict[str, Any]] = []
        self._arms_of: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self._arms_lock = threading.Lock()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- identity -------------------------------------------------------------------
    @property
    def candidate_version(self) -> str:
        return self.candidate.backend.version

    @property
    def active(self) -> bool:
        return self.status_name == "running"

    def _service(self) -> Service:
        if self.service is None:
            raise ServingError(f"This {self.kind} is not attached; use service.start_rollout().")
        return self.service

    # -- life -----------------------------------------------------------------------
    def attach(self, service: Service) -> None:
        """Bind to a service and start (called by ``Service.start_rollout``)."""
        if self.service is not None:
            raise ServingError(f"This {self.kind} already ran on service {self.service.name!r}.")
        self.service = service
        self.baseline_version = service.version
        self.started_at = self.clock()
        self._setup(service)
        self.status_name = "running"
        self._start_experiment(service)
        self._insert()
        if self.tick_s is not None:
            self._thread = threading.Thread(
                target=self._loop, name=f"hindsight-{self.kind}-{service.name}", daemon=True
            )
            self._thread.start()

    def _setup(self, service: Service) -> None:  # noqa: B027 - optional hook
        """Build arms' chains; subclasses extend."""

    def chain_for(self, tier: Tier, service: Service) -> FallbackChain:
        """``tier`` in place of the primary, in front of the service's fallback tiers."""
        base = service.chain
        return FallbackChain(
            [tier, *base.tiers[1:]],
            deadline_ms=base.deadline_ms,
            last_tier_reserve_ms=base.last_tier_reserve_ms,
        )

    def _loop(self) -> None:
        assert self.tick_s is not None
        while not self._stop.wait(self.tick_s):
            if not self.active:
                return
            try:
                self.tick()
            except Exception:  # the ticker must keep going; the error is logged in full
                logger.exception("%s %s: analysis failed", self.kind, self.id)

    def close(self) -> None:
        """Stop the background ticker (the rollout's state stays as it is)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def stop(self, reason: str = "stopped by an operator") -> None:
        """End the rollout; all traffic goes back to the baseline."""
        with self._lock:
            if not self.active:
                return
            self._finish("stopped", reason)

    def _finish(self, status: str, reason: str, *, failed_evidence: str | None = None) -> None:
        self.status_name = status
        self.reason = reason
        self.ended_at = self.clock()
        self._end_experiment(status, reason, failed_evidence)
        self._update()
        self._stop.set()

    # -- requests -------------------------------------------------------------------
    @abc.abstractmethod
    def route(self, key: str, baseline: FallbackChain) -> tuple[str, FallbackChain]:
        """The arm that serves this request and its chain."""

    def after(self, arm: str, inputs: Mapping[str, Any], response: Response) -> None:
        """Called after each answered request (on the request path: keep it O(1))."""
        self.remember(response.id, arm, response.output)

    def remember(self, prediction_id: str, arm: str, output: Any) -> None:
        with self._arms_lock:
            self._arms_of[prediction_id] = (arm, output)
            if len(self._arms_of) > _REMEMBER:
                self._arms_of.popitem(last=False)

    def recall(self, prediction_id: str) -> tuple[str, Any] | None:
        with self._arms_lock:
            return self._arms_of.get(prediction_id)

    def observe_outcome(self, prediction_id: str, label: Any, reward: Any) -> None:  # noqa: B027
        """A late label or reward of one of this rollout's predictions."""

    def tick(self, now: float | None = None) -> None:  # noqa: B027 - optional hook
        """Analyse if an interval is over; called by the ticker."""

    # -- reporting ------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status_name,
            "reason": self.reason,
            "baseline": getattr(self, "baseline_version", None),
            "candidate": self.candidate_version,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "experiment_id": self.experiment.id if self.experiment is not None else None,
            "failure_id": self.failure_id,
            "analyses": self.analyses[-20:],
        }

    def config(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate.backend.describe(),
            "tick_s": self.tick_s,
            "salt": self.salt,
        }

    @property
    def step(self) -> int:
        return 0

    @property
    def share(self) -> float:
        return 0.0

    # -- persistence ----------------------------------------------------------------
    def _row(self) -> dict[str, Any]:
        from hindsight.ledger.jsonsafe import jsonable

        now = self.clock()
        return {
            "step": self.step,
            "share": self.share,
            "status": self.status_name,
            "reason": self.reason[:4000],
            "analyses": jsonable(self.analyses, "analyses"),
            "experiment_id": self.experiment.id if self.experiment is not None else None,
            "failure_id": self.failure_id,
            "updated_at": now,
            "ended_at": self.ended_at,
        }

    def _insert(self) -> None:
        service = self._service()
        if service.store is None or not self.record:
            return
        from hindsight.ledger.jsonsafe import jsonable

        row = {
            **self._row(),
            "id": self.id,
            "service": service.name,
            "kind": self.kind,
            "baseline": self.baseline_version,
            "candidate": self.candidate_version,
            "config": jsonable(self.config(), "config"),
            "created_at": self.started_at,
            "schema_version": SCHEMA_VERSION,
        }
        service.store.insert("rollout", row)

    def _update(self) -> None:
        service = self._service()
        if service.store is None or not self.record:
            return
        service.store.update("rollout", self.id, **self._row())

    # -- the ledger -----------------------------------------------------------------
    def hypothesis(self) -> str:
        return (
            f"{self.candidate_version} serves {self._service().name} no worse than "
            f"{self.baseline_version}"
        )

    def _start_experiment(self, service: Service) -> None:
        ledger = service.ledger if self.record else None
        if ledger is None:
            return
        from hindsight.ledger.experiment import Experiment

        exp = Experiment(
            ledger,
            f"{self.kind} {service.name}: {self.candidate_version}",
            hypothesis=self.hypothesis(),
            approach=f"{self.kind} rollout of {self.candidate_version} against "
            f"{self.baseline_version} on live traffic",
            config=self.config(),
            tags=(self.kind, "serving", service.name),
            project=service.project,
            quiet=True,
            mlflow=False,
            ambient=False,  # a server's background work, not the code around it
        )
        exp.start()
        self.experiment = exp

    def _end_experiment(self, status: str, reason: str, failed_evidence: str | None) -> None:
        exp = self.experiment
        if exp is None or not exp._active:
            return
        if failed_evidence is not None:
            report = exp.record_failure(
                failed_evidence,
                source="canary" if self.kind == "canary" else "serving",
                reason=reason,
                extra={"rollout_id": self.id, "analyses": self.analyses[-5:]},
            )
            self.failure_id = report.failure.id
        elif status == "promoted":
            exp.set_outcome("success", reason)
        exp.end()
