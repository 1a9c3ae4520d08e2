"""A queue of records written to the store in batches by a background writer, off the
request path: what the prediction log and the breaker-event queue share.

:meth:`BatchQueue.add` is O(1) and never blocks on the database or raises. A flush
writes batches in order; a batch the store cannot take (it is unreachable) is kept and
written first next time; a batch it refuses is written one by one to drop only the
refused records (counted in ``rejected``, each logged). A full queue drops new records
(counted in ``dropped``).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Generic, TypeVar

from hindsight.errors import StoreError, StoreUnavailable

if TYPE_CHECKING:
    from hindsight.store.store import Store

__all__ = ["BatchQueue"]

logger = logging.getLogger("hindsight.serving")

T = TypeVar("T")

# While the store is unreachable, one error line per this many failed flushes.
_LOG_EVERY = 60


class BatchQueue(Generic[T]):
    """Records waiting for the store. Subclasses say how a batch is written."""

    #: What the records are, for messages ("predictions", "breaker events").
    what = "records"

    def __init__(self, store: Store, *, max_batch: int, max_queue: int) -> None:
        self.store = store
        self.max_batch = int(max_batch)
        self.max_queue = int(max_queue)
        #: Records dropped because the queue was full or closed.
        self.dropped = 0
        #: Records the store refused even one by one (logged, then dropped).
        self.rejected = 0
        #: Records written so far.
        self.written = 0
        self._pending: deque[T] = deque()
        self._held: list[T] = []  # a batch kept for a retry, written first
        self._lock = threading.Lock()  # guards the queue; held only for O(1) work
        self._closed = False
        self._failures = 0

    # -- what a subclass provides ------------------------------------------------------

    def _append(self, items: list[T]) -> None:
        """Write one batch to the store (one transaction)."""
        raise NotImplementedError

    def _describe(self, item: T) -> str:
        """The record, for the line that says the store refused it."""
        return repr(item)

    # -- the request path --------------------------------------------------------------

    def add(self, item: T) -> int:
        """Queue a record; returns how many are queued now (0: dropped). O(1), never raises."""
        with self._lock:
            if self._closed or len(self._pending) + len(self._held) >= self.max_queue:
                self.dropped += 1
                return 0
            self._pending.append(item)
            return len(self._pending)

    def close_queue(self) -> None:
        """Refuse new records (those queued are still written by a flush)."""
        with self._lock:
            self._closed = True

    @property
    def pending(self) -> int:
        """Records waiting to be written (queued or held for a retry)."""
        with self._lock:
            return len(self._pending) + len(self._held)

    def stats(self) -> dict[str, int]:
        """Counters for a health endpoint: written, pending, dropped, rejected."""
        return {
            "written": self.written,
            "pending": self.pending,
            "dropped": self.dropped,
            "rejected": self.rejected,
        }

    # -- writing -----------------------------------------------------------------------

    def _flush_batches(self) -> int:
        """Write everything queued now, in order, batch by batch; returns records written."""
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

    def _write(self, batch: list[T]) -> tuple[int, list[T]]:
        """Write one batch; returns (records written, records to keep for a retry)."""
        try:
            self._append(batch)
        except Exception as exc:
            if isinstance(exc, StoreError) and not isinstance(exc, StoreUnavailable):
                return self._write_one_by_one(batch, exc)
            self._failed(len(batch), exc)
            return 0, batch
        self._succeeded(len(batch))
        return len(batch), []

    def _write_one_by_one(self, batch: list[T], first: Exception) -> tuple[int, list[T]]:
        """The store refused the batch: write records singly to find the refused ones."""
        logger.warning(
            "A batch of %d %s was refused (%s); retrying one by one.", len(batch), self.what, first
        )
        written = 0
        for i, item in enumerate(batch):
            try:
                self._append([item])
            except Exception as exc:
                if isinstance(exc, StoreError) and not isinstance(exc, StoreUnavailable):
                    self.rejected += 1
                    logger.error("Dropped %s refused by the store: %s", self._describe(item), exc)
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
                "The %s reach the store again after %d failed flushes.", self.what, self._failures
            )
            self._failures = 0

    def _failed(self, n: int, exc: Exception) -> None:
        if self._failures % _LOG_EVERY == 0:
            logger.error(
                "Could not write %d %s (%s: %s); kept for a retry. %d dropped so far.",
                n, self.what, type(exc).__name__, exc, self.dropped,
            )  # fmt: skip
        self._failures += 1


