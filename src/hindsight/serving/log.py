"""The prediction log: one record per served request, written in batches off the request path.

Each record holds the request's id and time, the service, model version and arm
(``baseline``, ``canary``, ``shadow`` or an A/B arm's name), the tier that answered
and why earlier tiers did not (error, timeout, open circuit, abstention), the
inputs, output, confidence, latency and any review ticket. Outcomes (labels,
rewards) arrive later and are joined at read time (``Store.predictions_with_outcomes``).

Durability, in plain terms:

* :meth:`PredictionLog.log` only appends to an in-memory queue (O(1), thread-safe,
  never waits on the database). A background thread writes the queue every
  ``flush_interval_s`` seconds, or sooner once ``max_batch`` records wait, as one
  multi-row insert in one transaction per batch.
* A graceful shutdown (:meth:`PredictionLog.close`, also run at interpreter exit)
  flushes everything. **A crash loses at most the records of the last flush
  interval** (plus any batch held back while the database was unreachable).
* When the database is unreachable the batch is kept, the error logged, and the
  write retried next interval, in order. Memory stays bounded: records held for a
  retry count against ``max_queue``, and once the queue is full new records are
  dropped and counted in :attr:`PredictionLog.dropped`; logging never raises into
  the request. Rows the database refuses (e.g. a duplicate id) are retried one by
  one and those still refused are dropped, logged and counted in ``rejected``.
* Circuit breakers' state changes (:mod:`.breaker_events`) ride along: queued by
  :meth:`PredictionLog.log_breaker`, written by the same writer before each flush's
  predictions, kept, retried and dropped the same way (their own counters, in
  :attr:`PredictionLog.breakers`).
* Outcomes are written synchronously (:meth:`PredictionLog.record_outcome`), so
  ``POST /outcomes`` can report failure; an outcome may precede its prediction's
  flush.

>>> from hindsight.store import open_store
>>> from hindsight.serving.fallback import Answer, Attempt
>>> store = open_store("sqlite://")
>>> plog = PredictionLog(store, flush_interval_s=60)
>>> answer = Answer("approve", 0.9, "primary", "v3", (Attempt("primary", "answered", 4.0),), 4.2)
>>> rec = PredictionRecord.from_answer(answer, service="loans", inputs={"amount": 30}, arm="canary")
>>> plog.log(rec)
>>> plog.close()
>>> [(r["tier"], r["arm"], r["output"]) for r in store.list_predictions(service="loans")]
[('primary', 'canary', 'approve')]
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hindsight._plain import plain
from hindsight._validation import Interval, validate_params
from hindsight.errors import ConfigError
from hindsight.ledger.ids import new_id
from hindsight.serving.batches import BatchQueue
from hindsight.serving.breaker_events import BreakerEvent, BreakerEventQueue
from hindsight.serving.fallback import Answer
from hindsight.store.schema import SCHEMA_VERSION
from hindsight.store.store import Store

__all__ = ["ARMS", "PredictionLog", "PredictionRecord"]

logger = logging.getLogger(__name__)

#: The arms with a fixed meaning; any other non-empty name is an A/B arm.
ARMS = ("baseline", "canary", "shadow")



_PLAIN = (str, int, bool, type(None))


def _flat_plain(value: Mapping[Any, Any]) -> bool:
    """A flat mapping of str keys to JSON scalars (finite floats): stored as it is."""
    for k, v in value.items():
        t = type(v)
        if type(k) is not str or not (t in _PLAIN or (t is float and math.isfinite(v))):
            return False
    return True


def _jsonable(value: Any) -> Any:
    """``value`` as something a JSON column stores: numpy scalars and arrays become
    numbers and lists, anything else unknown its ``str``; NaN/inf become ``None``."""
    if type(value) is dict and _flat_plain(value):
        return value  # the common case (a request's features): no copy
    return plain(value)


@dataclass(frozen=True)
class PredictionRecord:
    """One served request, as logged."""

    service: str
    version: str
    arm: str
    tier: str
    reason: str
    inputs: Any
    output: Any
    confidence: float | None
    latency_ms: float
    fell_back: bool = False
    attempts: tuple[Mapping[str, Any], ...] = ()
    request_id: str | None = None
    review_ticket: str | None = None
    created_at: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: new_id("prediction"))

    def __post_init__(self) -> None:
        if not self.service:
            raise ConfigError("A PredictionRecord needs a service name.")
        if not self.arm:
            raise ConfigError(
                f"A PredictionRecord needs an arm: one of {', '.join(ARMS)} or an A/B arm's name."
            )

    @classmethod
    def from_answer(
        cls,
        answer: Answer,
        *,
        service: str,
        inputs: Any,
        arm: str = "baseline",
        request_id: str | None = None,
        review_ticket: str | None = None,
        reason: str | None = None,
        at: float | None = None,
        id: str | None = None,
    ) -> PredictionRecord:
        """The record of a request a :class:`~hindsight.serving.fallback.FallbackChain`
        answered. ``reason`` overrides the answer's own (e.g. ``"abstained: …"``)."""
        return cls(
            service=service,
            version=answer.version,
            arm=arm,
            tier=answer.tier,
            reason=answer.reason if reason is None else reason,
            inputs=inputs,
            output=answer.output,
            confidence=answer.confidence,
            latency_ms=answer.latency_ms,
            fell_back=answer.fell_back,
            attempts=tuple(a.to_dict() for a in answer.attempts),
            request_id=request_id,
            review_ticket=review_ticket,
            created_at=time.time() if at is None else at,
            **({"id": id} if id is not None else {}),
        )

    def to_row(self) -> dict[str, Any]:
        """A row of the ``predictions`` table (JSON-safe inputs, output and attempts)."""
        conf = self.confidence
        return {
            "id": self.id,
            "request_id": self.request_id,
            "created_at": float(self.created_at),
            "service": self.service,
            "version": self.version or "",
            "arm": self.arm,
            "tier": self.tier,
            "reason": self.reason or "",
            "fell_back": bool(self.fell_back),
            "attempts": _jsonable(list(self.attempts)),
            "inputs": _jsonable(self.inputs),
            "output": _jsonable(self.output),
            "confidence": None if conf is None or not math.isfinite(conf) else float(conf),
            "latency_ms": float(self.latency_ms),
            "review_ticket": self.review_ticket,
            "schema_version": SCHEMA_VERSION,
        }


class PredictionLog(BatchQueue[PredictionRecord]):
    """Batched, background writes of :class:`PredictionRecord` to a store.

    ``flush_interval_s``: how often the background thread writes (and so, at most,
    what a crash loses). ``max_batch``: records per insert; a full batch wakes the
    writer early. ``max_queue``: records held in memory (including a batch kept for a
    retry) before new ones are dropped and counted in :attr:`dropped`.
    """

    def __init__(
        self,
        store: Store,
        *,
        flush_interval_s: float = 1.0,
        max_batch: int = 500,
        max_queue: int = 100_000,
    ) -> None:
        validate_params(
            "PredictionLog",
            {"flush_interval_s": flush_interval_s, "max_batch": max_batch, "max_queue": max_queue},
            {
                "flush_interval_s": Interval(float, 0.0, None, closed="neither"),
                "max_batch": Interval(int, 1, None),
                "max_queue": Interval(int, 1, None),
            },
        )
        super().__init__(store, max_batch=max_batch, max_queue=max_queue)
        self.flush_interval_s = float(flush_interval_s)
        #: Circuit-breaker events waiting for this log's writer, with their own counters.
        self.breakers = BreakerEventQueue(store, max_batch=self.max_batch)
        self._flush_lock = threading.Lock()  # one writer at a time keeps the order
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="hindsight-prediction-log", daemon=True
        )
        self._thread.start()
        atexit.register(self.close)

    # -- the request path --------------------------------------------------------------

    what = "predictions"

    def log(self, record: PredictionRecord) -> None:
        """Queue a record for the next flush. O(1); never blocks on the database or raises."""
        if self.add(record) >= self.max_batch:
            self._wake.set()

    def log_breaker(self, event: BreakerEvent) -> None:
        """Queue a circuit breaker's state change for the next flush. O(1); never raises."""
        self.breakers.add(event)

    # -- writing -----------------------------------------------------------------------

    def flush(self) -> int:
        """Write everything queued now, in order, batch by batch; returns records written.

        A batch the database cannot take is kept for the next flush (the error is
        logged, not raised). Queued breaker events are written first (not counted).
        """
        with self._flush_lock:
            self.breakers.flush()
            return self._flush_batches()

    def _append(self, items: list[PredictionRecord]) -> None:
        self.store.append_predictions([r.to_row() for r in items])

    def _describe(self, item: PredictionRecord) -> str:
        return f"prediction {item.id}"

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            if self._closed:
                return
            try:
                self.flush()
            except Exception:  # never let the writer thread die
                logger.exception("The prediction log's writer failed; retrying next interval.")

    def close(self) -> None:
        """Stop the writer and flush everything left. Idempotent; also runs at exit."""
        with self._lock:
            already = self._closed
            self._closed = True
        if already:
            return
        self.breakers.close()
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        self.flush()
        left = self.pending
        if left:
            logger.error("The prediction log closed with %d records unwritten.", left)
        left = self.breakers.pending
        if left:
            logger.error("The prediction log closed with %d breaker events unwritten.", left)
        atexit.unregister(self.close)

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- outcomes ----------------------------------------------------------------------

    def record_outcome(
        self,
        prediction_id: str,
        label: Any = None,
        reward: float | None = None,
        at: float | None = None,
    ) -> str:
        """Record a prediction's label and/or reward now; returns the outcome's id."""
        return self.record_outcomes(
            [{"prediction_id": prediction_id, "label": label, "reward": reward, "at": at}]
        )[0]

    def record_outcomes(self, outcomes: Iterable[Mapping[str, Any]]) -> list[str]:
        """Record many outcomes (``prediction_id`` and ``label`` and/or ``reward``,
        optionally ``at``) in one transaction; returns their ids in order."""
        now = time.time()
        rows = [_outcome_row(o, now) for o in outcomes]
        self.store.record_outcomes(rows)
        return [str(r["id"]) for r in rows]


def _outcome_row(o: Mapping[str, Any], now: float) -> dict[str, Any]:
    pid = o.get("prediction_id")
    if not isinstance(pid, str) or not pid:
        raise ConfigError(f"An outcome needs a prediction_id string; got {pid!r}.")
    unknown = set(o) - {"prediction_id", "label", "reward", "at"}
    if unknown:
        raise ConfigError(
            f"Unknown outcome fields {sorted(unknown)}; use prediction_id, label, reward, at."
        )
    label, reward, at = o.get("label"), o.get("reward"), o.get("at")
    if label is None and reward is None:
        raise ConfigError(f"The outcome of {pid} needs a label, a reward or both.")
    validate_params(
        "record_outcome",
        {"reward": reward, "at": at},
        {
            "reward": Interval(float, allow_none=True),
            "at": Interval(float, allow_none=True),
        },
    )
    return {
        "id": new_id("outcome"),
        "prediction_id": pid,
        "label": _jsonable(label),
        "reward": None if reward is None else float(reward),
        "created_at": now if at is None else float(at),
        "schema_version": SCHEMA_VERSION,
    }
