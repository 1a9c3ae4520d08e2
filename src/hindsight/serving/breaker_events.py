"""Circuit breakers' state changes, recorded in the store off the request path.

A :class:`~hindsight.serving.Service` with a prediction log records every change of its
tiers' breakers (closed, open, half-open) as a :class:`BreakerEvent`: the service and
tier, the previous and new state, the reason and the breaker's figures at the change.
Events travel like predictions: :meth:`BreakerRecorder` only appends to an in-memory
queue on the thread that changed the breaker (O(1), never waits on the database, never
raises), and the prediction log's background writer inserts the queue in batches
(:class:`BreakerEventQueue`, flushed with the predictions). A store outage keeps the
batch for a retry, bounded by ``max_queue``; rows the store refuses are dropped and
counted, as in :mod:`hindsight.serving.log`.

When a service starts, and whenever its chain changes (a promotion), every tier's state
*then* is recorded too, with ``previous == state``: so the Services page shows every
tier at once, and a tier whose newest event is older than its service's newest such
record is no longer in the chain (a restart with other tiers, a promoted-away model).

>>> from hindsight.store import open_store
>>> from hindsight.serving import CircuitBreaker, MockBackend, PredictionLog, Tier
>>> store = open_store("sqlite://")
>>> plog = PredictionLog(store, flush_interval_s=60)
>>> breaker = CircuitBreaker(window=4, min_calls=2)
>>> recorder = BreakerRecorder("loans", plog)
>>> recorder.watch([Tier(MockBackend(1, name="model"), breaker=breaker)], "service started")
>>> for _ in range(2):
...     breaker.record(ok=False, latency_ms=3.0)
>>> plog.close()
>>> [(e["previous"], e["state"], e["reason"]) for e in store.breaker_events("loans")]
[('closed', 'open', 'error rate 1.00 >= 0.50 over the last 2 calls'), ('closed', 'closed', 'service started')]
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hindsight._plain import plain
from hindsight._validation import Interval, validate_params
from hindsight.errors import StoreError, StoreUnavailable
from hindsight.serving.breaker import BreakerChange, CircuitBreaker
from hindsight.store.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from hindsight.serving.fallback import Tier
    from hindsight.store.store import Store

__all__ = ["BreakerEvent", "BreakerEventQueue", "BreakerRecorder"]

logger = logging.getLogger(__name__)

# A failed flush is logged the first time and then once every this many attempts.
_LOG_EVERY = 60


@dataclass(frozen=True)
class BreakerEvent:
    """One state of one tier's breaker, as recorded: a change, or the state at a (re)start."""

    service: str
    tier: str
    state: str
    previous: str
    reason: str | None
    snapshot: Mapping[str, Any]
    at: float

    def to_row(self) -> dict[str, Any]:
        """A row of the ``breaker_events`` table (a strict-JSON snapshot)."""
        return {
            "service": self.service,
            "tier": self.tier,
            "state": self.state,
            "previous": self.previous,
            "reason": self.reason,
            "snapshot": plain(dict(self.snapshot)),
            "at": float(self.at),
            "schema_version": SCHEMA_VERSION,
        }


class _Sink(Protocol):
    def log_breaker(self, event: BreakerEvent) -> None: ...


class BreakerEventQueue:
    """Breaker events waiting for the prediction log's writer; written in batches.

    Only :meth:`add` runs on the request path. :meth:`flush` is called by the writer
    thread (one at a time, under the log's flush lock).
    """

    def __init__(self, store: Store, *, max_batch: int = 500, max_queue: int = 10_000) -> None:
        validate_params(
            "BreakerEventQueue",
            {"max_batch": max_batch, "max_queue": max_queue},
            {"max_batch": Interval(int, 1, None), "max_queue": Interval(int, 1, None)},
        )
        self.store = store
        self.max_batch = int(max_batch)
        self.max_queue = int(max_queue)
        #: Events dropped because the queue was full or closed.
        self.dropped = 0
        #: Events the store refused even one by one (logged, then dropped).
        self.rejected = 0
        #: Events written so far.
        self.written = 0
        self._pending: deque[BreakerEvent] = deque()
        self._held: list[BreakerEvent] = []
        self._lock = threading.Lock()
        self._closed = False
        self._failures = 0

    def add(self, event: BreakerEvent) -> None:
        """Queue an event. O(1); never blocks on the database or raises."""
        with self._lock:
            if self._closed or len(self._pending) + len(self._held) >= self.max_queue:
                self.dropped += 1
                return
            self._pending.append(event)

    def close(self) -> None:
        """Refuse new events (those queued are still written by :meth:`flush`)."""
        with self._lock:
            self._closed = True

    @property
    def pending(self) -> int:
        """Events waiting to be written (queued or held for a retry)."""
        with self._lock:
            return len(self._pending) + len(self._held)

    def stats(self) -> dict[str, int]:
        return {
            "written": self.written,
            "pending": self.pending,
            "dropped": self.dropped,
            "rejected": self.rejected,
        }

    def flush(self) -> int:
        """Write everything queued now, in order; returns events written. A batch the store
        cannot take is kept for the next flush (the error is logged, not raised)."""
        written = 0
        while True:
            with self._lock:
                if self._held:
                    batch, self._held = self._held, []
                else:
                    n = min(self.max_batch, len(self._pending))
                    batch = [self._pending.popleft() for _ in range(n)]
            if not batch:
                return written
            done, keep = self._write(batch)
            written += done
            if keep:
                with self._lock:
                    self._held = keep
                return written

    def _write(self, batch: list[BreakerEvent]) -> tuple[int, list[BreakerEvent]]:
        try:
            self.store.append_breaker_events([e.to_row() for e in batch])
        except Exception as exc:
            if isinstance(exc, StoreError) and not isinstance(exc, StoreUnavailable):
                return self._write_one_by_one(batch)
            self._failed(len(batch), exc)
            return 0, batch
        self._succeeded(len(batch))
        return len(batch), []

    def _write_one_by_one(self, batch: list[BreakerEvent]) -> tuple[int, list[BreakerEvent]]:
        """The store refused the batch: write events singly to find the refused ones."""
        written = 0
        for i, event in enumerate(batch):
            try:
                self.store.append_breaker_events([event.to_row()])
            except Exception as exc:
                if isinstance(exc, StoreError) and not isinstance(exc, StoreUnavailable):
                    self.rejected += 1
                    logger.error(
                        "Dropped the breaker event of %s/%s (%s -> %s) refused by the store: %s",
                        event.service, event.tier, event.previous, event.state, exc,
                    )  # fmt: skip
                    continue
                self._succeeded(written)
                self._failed(len(batch) - i, exc)
                return written, batch[i:]
            written += 1
        self._succeeded(written)
        return written, []

    def _succeeded(self, n: int) -> None:
        self.written += n
        if self._failures and n:
            logger.info(
                "Breaker events reach the store again after %d failed flushes.", self._failures
            )
            self._failures = 0

    def _failed(self, n: int, exc: Exception) -> None:
        if self._failures % _LOG_EVERY == 0:
            logger.error(
                "Could not write %d circuit-breaker events (%s: %s); kept for a retry. "
                "%d dropped so far.",
                n, type(exc).__name__, exc, self.dropped,
            )  # fmt: skip
        self._failures += 1


class BreakerRecorder:
    """Record the breaker states of one service's tiers through a sink (its prediction log).

    :meth:`watch` records each tier's state now and listens to its breaker from then on;
    a breaker already watched is not listened to twice. Listening chains: the breaker's
    own ``on_change`` and other listeners keep running.
    """

    def __init__(self, service: str, sink: _Sink) -> None:
        self.service = service
        self.sink = sink
        self._lock = threading.Lock()
        # id(breaker) -> (breaker, its listener); the breaker is kept so its id stays unique.
        self._watched: dict[int, tuple[CircuitBreaker, Callable[[BreakerChange], None]]] = {}

    def watch(self, tiers: Iterable[Tier], reason: str) -> None:
        """Record every tier's state now, with ``previous == state`` and one shared time, and
        every change of its breaker from now on."""
        at = time.time()
        for position, tier in enumerate(tiers):
            breaker = tier.breaker
            with self._lock:
                known = self._watched.get(id(breaker))
                listener = None
                if known is None or known[0] is not breaker:
                    listener = self._listener(tier.name, position)
                    self._watched[id(breaker)] = (breaker, listener)
            if listener is not None:
                # Listening before reading the state: a change in between is not missed.
                breaker.add_listener(listener)
            snapshot = {**breaker.snapshot(), "position": position}
            self.sink.log_breaker(
                BreakerEvent(
                    self.service, tier.name, snapshot["state"], snapshot["state"], reason,
                    snapshot, at,
                )
            )  # fmt: skip

    def _listener(self, tier: str, position: int) -> Callable[[BreakerChange], None]:
        service, sink = self.service, self.sink

        def record(change: BreakerChange) -> None:
            sink.log_breaker(
                BreakerEvent(
                    service, tier, change.state, change.previous, change.reason,
                    {**change.snapshot, "position": position}, change.at,
                )
            )  # fmt: skip

        return record

    def unwatch(self, tiers: Iterable[Tier]) -> None:
        """Stop listening to these tiers' breakers (a tier taken out of the chain)."""
        for tier in tiers:
            with self._lock:
                known = self._watched.pop(id(tier.breaker), None)
            if known is not None:
                known[0].remove_listener(known[1])

    def close(self) -> None:
        """Stop listening to every watched breaker."""
        with self._lock:
            watched, self._watched = list(self._watched.values()), {}
        for breaker, listener in watched:
            breaker.remove_listener(listener)
