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

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hindsight._plain import plain
from hindsight._validation import Interval, validate_params
from hindsight.serving.batches import BatchQueue
from hindsight.serving.breaker import BreakerChange, CircuitBreaker
from hindsight.store.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from hindsight.serving.fallback import Tier
    from hindsight.store.store import Store

__all__ = ["BreakerEvent", "BreakerEventQueue", "BreakerRecorder"]


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


class BreakerEventQueue(BatchQueue[BreakerEvent]):
    """Breaker events waiting for the prediction log's writer; written in batches.

    Only :meth:`add` runs on the request path. :meth:`flush` is called by the writer
    thread (one at a time, under the log's flush lock).
    """

    what = "circuit-breaker events"

    def __init__(self, store: Store, *, max_batch: int = 500, max_queue: int = 10_000) -> None:
        validate_params(
            "BreakerEventQueue",
            {"max_batch": max_batch, "max_queue": max_queue},
            {"max_batch": Interval(int, 1, None), "max_queue": Interval(int, 1, None)},
        )
        super().__init__(store, max_batch=max_batch, max_queue=max_queue)

    def close(self) -> None:
        """Refuse new events (those queued are still written by :meth:`flush`)."""
        self.close_queue()

    def flush(self) -> int:
        """Write everything queued now, in order; returns events written. A batch the store
        cannot take is kept for the next flush (the error is logged, not raised)."""
        return self._flush_batches()

    def _append(self, items: list[BreakerEvent]) -> None:
        self.store.append_breaker_events([e.to_row() for e in items])

    def _describe(self, item: BreakerEvent) -> str:
        return f"the breaker event of {item.service}/{item.tier} ({item.previous} -> {item.state})"


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
