"""A guarded model service: fallback chain, abstention, review routing, rollouts, one log.

:class:`Service` ties the parts together for one request:

1. A rollout (canary, shadow or A/B, see :mod:`hindsight.serving.rollout`) picks the
   request's arm and the fallback chain that serves it; without one, the baseline chain.
2. The chain answers within the deadline. Before a tier's answer is accepted the
   abstention policy judges it: low confidence, an input out of the training
   distribution or a high-risk rule sends the request straight to the last tier (the
   fail-safe) and counts against the tier's breaker.
3. Abstained requests, and a random audit sample of the others, go to the review
   queue with the answer that was served. While the queue is full or past its SLA,
   abstained requests keep the fail-safe's answer alone and say so.
4. One record per request goes to the prediction log (batched, off the request path),
   and so does every state change of a tier's circuit breaker, plus each tier's state
   when the service starts or promotes a model (:mod:`.breaker_events`), for the team
   server's Services page.

A reviewer's decision (:meth:`Service.decide`) overrides the served answer, is kept on
the review item and is recorded as the prediction's label. Outcomes that arrive later
(:meth:`Service.record_outcome`) feed the log and any running rollout's analysis.

>>> from hindsight.serving import MockBackend, RulesBackend, AbstentionPolicy
>>> svc = Service(
...     "loans",
...     [MockBackend("approve", name="model", confidence=0.55),
...      RulesBackend([(lambda x: x["amount"] > 1000, "decline", 1.0)], "approve")],
...     abstention=AbstentionPolicy(min_confidence=0.7),
... )
>>> r = svc.predict_sync({"amount": 5000})
>>> r.output, r.tier, r.abstained, r.review_ticket is not None
('decline', 'rules', True, True)
>>> r.reason
'model: abstained (confidence 0.55 < 0.7)'
>>> svc.close()
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hindsight._validation import Interval, validate_params
from hindsight.errors import ConfigError, FallbackExhausted, ServingError
from hindsight.ledger.ids import new_id
from hindsight.review.queue import Decision, ReviewItem, ReviewQueue
from hindsight.serving.abstain import AbstentionPolicy, Verdict
from hindsight.serving.backend import ModelBackend, ModelOutput
from hindsight.serving.breaker_events import BreakerRecorder
from hindsight.serving.fallback import Answer, FallbackChain, Tier
from hindsight.serving.log import PredictionLog, PredictionRecord

if TYPE_CHECKING:
    from hindsight.alerts import AlertChannel
    from hindsight.ledger.core import Ledger
    from hindsight.serving.rollout.base import Rollout
    from hindsight.store import Store

__all__ = ["Response", "Service"]

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(frozen=True)
class Response:
    """What one request got: the answer, who gave it and why, and any review ticket."""

    id: str
    output: Any
    confidence: float | None
    tier: str
    version: str
    arm: str
    reason: str
    fell_back: bool
    abstained: bool
    audited: bool
    review_ticket: str | None
    latency_ms: float
    answer: Answer
    request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "request_id": self.request_id,
            "output": self.output,
            "confidence": self.confidence,
            "tier": self.tier,
            "version": self.version,
            "arm": self.arm,
            "reason": self.reason,
            "fell_back": self.fell_back,
            "abstained": self.abstained,
            "audited": self.audited,
            "review_ticket": self.review_ticket,
            "latency_ms": round(self.latency_ms, 3),
            "attempts": [a.to_dict() for a in self.answer.attempts],
        }


class _Counters:
    """Request counts for the status endpoint and Prometheus; one lock, plain ints."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str], int] = {}  # (arm, tier) -> n
        self.fallbacks = 0
        self.abstentions = 0
        self.audits = 0
        self.reviews = 0
        self.review_refused = 0
        self.exhausted = 0
        self.outcomes = 0
        self.decisions = 0
        self.overrides = 0

    def add(self, **counts: int) -> None:
        with self._lock:
            for key, n in counts.items():
                setattr(self, key, getattr(self, key) + n)

    def served(self, arm: str, tier: str, fell_back: bool, abstained: bool, audited: bool) -> None:
        with self._lock:
            key = (arm, tier)
            self.requests[key] = self.requests.get(key, 0) + 1
            self.fallbacks += bool(fell_back)
            self.abstentions += bool(abstained)
            self.audits += bool(audited)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": [
                    {"arm": arm, "tier": tier, "count": n}
                    for (arm, tier), n in sorted(self.requests.items())
                ],
                "requests_total": sum(self.requests.values()),
                "fallbacks": self.fallbacks,
                "abstentions": self.abstentions,
                "audits": self.audits,
                "reviews": self.reviews,
                "review_refused": self.review_refused,
                "exhausted": self.exhausted,
                "outcomes": self.outcomes,
                "decisions": self.decisions,
                "overrides": self.overrides,
            }


class Service:
    """One guarded model service, used in process or served over HTTP by ``hindsight serve``.

    ``tiers`` are tried in order within ``deadline_ms``; the last is the fail-safe that
    answers abstained requests. ``review`` defaults to an in-memory
    :class:`~hindsight.review.ReviewQueue` (store-backed when ``store`` is given) when an
    abstention policy is set. With ``store`` (or ``log``) every request is logged, and
    every change of a tier's circuit breaker too (the breakers' own ``on_change`` hooks
    keep working).
    ``alerts`` are the channels a rolled-back canary alerts; ``ledger`` records
    rollouts as experiments (default: a ledger on ``store``) under ``project`` (default:
    the ledger's project).
    """

    def __init__(
        self,
        name: str,
        tiers: Sequence[ModelBackend | Tier],
        *,
        deadline_ms: float = 50.0,
        last_tier_reserve_ms: float | None = None,
        abstention: AbstentionPolicy | None = None,
        review: ReviewQueue | None = None,
        store: Store | None = None,
        log: PredictionLog | None = None,
        alerts: Sequence[AlertChannel] = (),
        ledger: Ledger | None = None,
        log_inputs: bool = True,
        candidates: Mapping[str, ModelBackend] | None = None,
        project: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not name or not set(name) <= _NAME_CHARS:
            raise ConfigError(
                f"A service needs a name of letters, digits, '-', '_' or '.'. Got {name!r}."
            )
        if abstention is not None and not isinstance(abstention, AbstentionPolicy):
            raise ConfigError(
                f"'abstention' must be an AbstentionPolicy; got {type(abstention).__name__}."
            )
        validate_params(
            "Service",
            {"deadline_ms": deadline_ms},
            {"deadline_ms": Interval(float, 0.0, None, closed="neither")},
        )
        self.name = name
        self.chain = FallbackChain(
            tiers, deadline_ms=deadline_ms, last_tier_reserve_ms=last_tier_reserve_ms
        )
        if len(self.chain.tiers) < 2 and abstention is not None:
            raise ConfigError(
                "Abstention needs a fail-safe tier to answer instead: give the service at "
                "least two tiers (e.g. the model and a RulesBackend)."
            )
        self.abstention = abstention
        if review is None and abstention is not None:
            review = ReviewQueue(store=store, service=name)
        self.review = review
        self.store = store
        if log is None and store is not None:
            log = PredictionLog(store)
        self.log = log
        self._own_log = log is not None and store is not None and log.store is store
        self.alerts = list(alerts)
        self._ledger = ledger
        self.project = project
        self.log_inputs = bool(log_inputs)
        self.candidates: dict[str, ModelBackend] = {}
        for cname, backend in (candidates or {}).items():
            if not isinstance(backend, ModelBackend):
                raise ConfigError(
                    f"Candidate {cname!r} must be a ModelBackend; got {type(backend).__name__}."
                )
            self.candidates[str(cname)] = backend
        self.counters = _Counters()
        self._rollout: Rollout | None = None
        self._rollout_lock = threading.Lock()
        self.started_at = time.time()
        self._breakers: BreakerRecorder | None = None
        if log is not None:
            self._breakers = BreakerRecorder(name, log)
            self._breakers.watch(self.chain.tiers, "service started")

    # -- parts ----------------------------------------------------------------------
    @property
    def deadline_ms(self) -> float:
        return self.chain.deadline_ms

    @property
    def primary(self) -> Tier:
        """The first tier: the model in production."""
        return self.chain.tiers[0]

    @property
    def version(self) -> str:
        return self.primary.backend.version

    @property
    def ledger(self) -> Ledger | None:
        """Where rollouts are recorded as experiments: the given ledger, or one on the store."""
        if self._ledger is None and self.store is not None:
            from hindsight.ledger.core import Ledger

            self._ledger = Ledger(store=self.store)
        return self._ledger

    @property
    def rollout(self) -> Rollout | None:
        """The canary, shadow or A/B test running now (or the last one, finished)."""
        return self._rollout

    def start_rollout(self, rollout: Rollout) -> Rollout:
        """Start a canary, shadow or A/B rollout; only one runs at a time."""
        with self._rollout_lock:
            if self._rollout is not None and self._rollout.active:
                raise ServingError(
                    f"Service {self.name!r} already runs a {self._rollout.kind} of "
                    f"{self._rollout.candidate_version!r}; stop it first."
                )
            rollout.attach(self)
            self._rollout = rollout
        return rollout

    def candidate(self, name: str) -> ModelBackend:
        """A declared candidate model by name (for rollouts started over HTTP)."""
        try:
            return self.candidates[name]
        except KeyError:
            known = ", ".join(sorted(self.candidates)) or "none declared"
            raise ServingError(
                f"Service {self.name!r} has no candidate {name!r} ({known}). Declare it under "
                "'candidates:' in service.yaml or in Service(candidates=...)."
            ) from None

    def start_canary(self, candidate: str | ModelBackend, **options: Any) -> Rollout:
        """Start a :class:`~hindsight.serving.rollout.Canary` of a candidate (name or backend)."""
        from hindsight.serving.rollout.canary import Canary

        backend = self.candidate(candidate) if isinstance(candidate, str) else candidate
        return self.start_rollout(Canary(backend, **options))

    def start_shadow(self, candidate: str | ModelBackend, **options: Any) -> Rollout:
        """Start a :class:`~hindsight.serving.rollout.Shadow` of a candidate (name or backend)."""
        from hindsight.serving.rollout.shadow import Shadow

        backend = self.candidate(candidate) if isinstance(candidate, str) else candidate
        return self.start_rollout(Shadow(backend, **options))

    def start_ab(self, arms: Mapping[str, str | ModelBackend], **options: Any) -> Rollout:
        """Start an :class:`~hindsight.serving.rollout.ABTest`; ``arms`` maps arm to candidate."""
        from hindsight.serving.rollout.ab import ABTest

        backends = {arm: self.candidate(c) if isinstance(c, str) else c for arm, c in arms.items()}
        return self.start_rollout(ABTest(backends, **options))

    def stop_rollout(self, reason: str = "stopped by an operator") -> Rollout:
        """Stop the running rollout; all traffic goes back to the baseline."""
        rollout = self._rollout
        if rollout is None or not rollout.active:
            raise ServingError(f"Service {self.name!r} runs no rollout to stop.")
        rollout.stop(reason)
        rollout.close()
        return rollout

    def promote(self, backend: ModelBackend | Tier) -> None:
        """Serve ``backend`` as the primary tier from now on (a canary that passed)."""
        tier = backend if isinstance(backend, Tier) else Tier(backend, name=self.primary.name)
        tiers = [tier, *self.chain.tiers[1:]]
        old = self.chain
        self.chain = FallbackChain(
            tiers, deadline_ms=old.deadline_ms, last_tier_reserve_ms=old.last_tier_reserve_ms
        )
        old.tiers[0].close()
        if self._breakers is not None:
            # The chain changed: record all of it anew, so the old primary reads as gone.
            if old.tiers[0].breaker is not tier.breaker:
                self._breakers.unwatch(old.tiers[:1])
            self._breakers.watch(self.chain.tiers, f"{tier.name} promoted to primary")

    # -- requests -------------------------------------------------------------------
    async def predict(
        self,
        inputs: Mapping[str, Any],
        *,
        request_id: str | None = None,
        key: str | None = None,
    ) -> Response:
        """Answer one request. ``key`` (a user or session id) keeps A/B and canary
        assignment sticky; without it the request id (or a fresh one) is used.

        Raises :class:`~hindsight.errors.FallbackExhausted` only if every tier failed.
        """
        if not isinstance(inputs, Mapping):
            raise ConfigError(
                f"A request's inputs must be a mapping of feature name to value; got "
                f"{type(inputs).__name__}."
            )
        pid = new_id("prediction")
        rollout = self._rollout if self._rollout is not None and self._rollout.active else None
        arm, chain = ("baseline", self.chain)
        if rollout is not None:
            arm, chain = rollout.route(key or request_id or pid, self.chain)
        verdicts: list[Verdict] = []
        policy = self.abstention
        audit_key = request_id or pid
        judge: Callable[[ModelOutput], str | None] | None = None
        if policy is not None:

            def judge(out: ModelOutput) -> str | None:
                v = policy.judge(inputs, out.confidence, request_id=audit_key)
                verdicts.append(v)
                return "; ".join(v.reasons) if v.abstain else None

        try:
            answer = await chain.predict(inputs, judge=judge)
        except FallbackExhausted:
            self.counters.add(exhausted=1)
            raise
        verdict: Verdict | None = verdicts[-1] if verdicts else None
        in_chain = (
            verdict is not None and verdict.abstain
        )  # a tier abstained; the fail-safe answered
        abstained = in_chain
        if verdict is None and policy is not None:
            # No model tier answered (all failed): input rules and OOD still route to review.
            verdict = policy.judge(inputs, None, request_id=audit_key)
            abstained = verdict.abstain
        audited = bool(verdict is not None and verdict.audit and not abstained)
        reason = answer.reason
        ticket: str | None = None
        if self.review is not None and verdict is not None and (abstained or audited):
            why = list(verdict.reasons) if abstained else ["audit sample"]
            item = await self._submit(pid, inputs, answer.output, why, priority=int(abstained))
            if item is not None:
                ticket = item.id
                self.counters.add(reviews=1)
            else:
                self.counters.add(review_refused=1)
                if abstained:
                    refusal = self.review.refusal_reason or "the review queue refused it"
                    reason = f"{reason}; not sent for review: {refusal}, {answer.tier} only"
            if abstained and not in_chain:
                reason = f"{reason}; abstained: {'; '.join(verdict.reasons)}"
        self.counters.served(arm, answer.tier, answer.fell_back, abstained, audited)
        response = Response(
            id=pid,
            request_id=request_id,
            output=answer.output,
            confidence=answer.confidence,
            tier=answer.tier,
            version=answer.version,
            arm=arm,
            reason=reason,
            fell_back=answer.fell_back,
            abstained=abstained,
            audited=audited,
            review_ticket=ticket,
            latency_ms=answer.latency_ms,
            answer=answer,
        )
        if self.log is not None:
            self.log.log(
                PredictionRecord.from_answer(
                    answer,
                    service=self.name,
                    inputs=dict(inputs) if self.log_inputs else None,
                    arm=arm,
                    request_id=request_id,
                    review_ticket=ticket,
                    reason=reason,
                    id=pid,
                )
            )
        if rollout is not None:
            rollout.after(arm, inputs, response)
        return response

    async def _submit(
        self, pid: str, inputs: Mapping[str, Any], output: Any, why: list[str], priority: int
    ) -> ReviewItem | None:
        assert self.review is not None
        if self.review.store is None:
            return self.review.submit(pid, inputs, output, why, priority=priority)
        # A database write: keep it off the event loop.
        return await asyncio.to_thread(self.review.submit, pid, inputs, output, why, priority)

    def predict_sync(
        self, inputs: Mapping[str, Any], *, request_id: str | None = None, key: str | None = None
    ) -> Response:
        """:meth:`predict` from synchronous code (not from inside a running event loop)."""
        return asyncio.run(self.predict(inputs, request_id=request_id, key=key))

    # -- outcomes and reviews -------------------------------------------------------
    def record_outcome(
        self, prediction_id: str, label: Any = None, reward: float | None = None
    ) -> str | None:
        """A prediction's label and/or reward; returns the outcome id when it was logged."""
        return self.record_outcomes(
            [{"prediction_id": prediction_id, "label": label, "reward": reward}]
        )[0]

    def record_outcomes(self, outcomes: Sequence[Mapping[str, Any]]) -> list[str | None]:
        """Many outcomes at once, written in one transaction (all or none)."""
        outcomes = [dict(o) for o in outcomes]
        for o in outcomes:
            if o.get("label") is None and o.get("reward") is None:
                raise ConfigError(
                    f"The outcome of {o.get('prediction_id')!r} needs a label, a reward or both."
                )
        ids: list[str | None]
        if self.log is not None:
            ids = list(self.log.record_outcomes(outcomes))
        else:
            ids = [None] * len(outcomes)
        self.counters.add(outcomes=len(outcomes))
        rollout = self._rollout
        if rollout is not None:
            for o in outcomes:
                rollout.observe_outcome(str(o["prediction_id"]), o.get("label"), o.get("reward"))
        return ids

    def decide(self, item_id: str, reviewer: str, output: Any, note: str | None = None) -> Decision:
        """A reviewer's answer: it overrides the served one and becomes the label."""
        if self.review is None:
            raise ServingError(f"Service {self.name!r} has no review queue.")
        if output is None:
            # Checked first: a decided item without its label would lose the decision.
            raise ConfigError(
                f"A decision on review item {item_id!r} needs an output (the reviewer's answer)."
            )
        decision = self.review.decide(item_id, reviewer, output, note=note)
        self.counters.add(decisions=1, overrides=int(decision.overridden))
        pid, label = decision.as_label()
        self.record_outcome(pid, label=label)
        return decision

    # -- status ---------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Everything an operator wants on one page, JSON-safe."""
        rollout = self._rollout
        return {
            "service": self.name,
            "version": self.version,
            "deadline_ms": self.deadline_ms,
            "uptime_s": time.time() - self.started_at,
            "tiers": self.chain.snapshot(),
            "abstention": self.abstention.describe() if self.abstention is not None else None,
            "review": self.review.stats() if self.review is not None else None,
            "log": self.log.stats() if self.log is not None else None,
            "counters": self.counters.snapshot(),
            "rollout": rollout.status() if rollout is not None else None,
            "candidates": {n: b.describe() for n, b in self.candidates.items()},
        }

    def close(self) -> None:
        """Stop a running rollout, flush the log and stop the tiers' workers."""
        rollout = self._rollout
        if rollout is not None:
            # It cannot go on without the service: it ends as stopped, with its evidence.
            rollout.stop("the service shut down while the rollout ran")
            rollout.close()
        if self._breakers is not None:
            self._breakers.close()
        if self.log is not None and self._own_log:
            self.log.close()
        elif self.log is not None:
            self.log.flush()
        self.chain.close()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        tiers = " -> ".join(t.name for t in self.chain.tiers)
        return f"Service({self.name!r}, {tiers}, deadline_ms={self.deadline_ms:g})"
