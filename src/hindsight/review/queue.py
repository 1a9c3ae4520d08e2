"""The human review queue: items to review, claims, decisions, and decisions as labels.

A case the service abstained on (or audited) is submitted with the answer it proposed.
A reviewer claims it, then decides: the decision overrides the served answer, is kept,
and becomes a label for the outcome log (``Decision.as_label()``). The queue refuses new
items while it is full or its oldest pending item is past its SLA; the service then
answers those cases with its rules alone.

Items move ``pending -> claimed -> decided``; a pending item past its due time can be
``expired`` by :meth:`ReviewQueue.expire_overdue`.

Items live behind a small storage seam (:class:`_ItemStore`): in memory by default, or
in the store's ``review_items`` table (``ReviewQueue(store=...)``), where several server
processes share one queue: every transition is one conditional ``UPDATE`` on the row's
status, so two reviewers claiming the same item cannot both succeed.
"""

from __future__ import annotations

import builtins
import dataclasses
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hindsight._validation import Interval, Options, validate_params
from hindsight.errors import ConfigError, NotFound, ReviewError, ReviewNotFound
from hindsight.store.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from hindsight.store import Store

__all__ = [
    "STATUSES",
    "Decision",
    "ReviewError",
    "ReviewItem",
    "ReviewNotFound",
    "ReviewQueue",
]

STATUSES = ("pending", "claimed", "decided", "expired")
_FINISHED = ("decided", "expired")


def new_review_id(now: float) -> str:
    """``rev_`` + milliseconds since the epoch (hex) + 32 random bits, like ledger ids."""
    return f"rev_{int(now * 1000):011x}{secrets.token_hex(4)}"


@dataclass(frozen=True)
class ReviewItem:
    """One case waiting for (or done with) a human; mirrors a ``review_items`` row."""

    id: str
    prediction_id: str
    service: str
    status: str
    reason: str
    priority: int
    inputs: Mapping[str, Any]
    proposed_output: Any
    created_at: float
    due_at: float
    reviewer: str | None = None
    decision: Any = None
    note: str | None = None
    claimed_at: float | None = None
    decided_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["inputs"] = dict(self.inputs)
        return d


@dataclass(frozen=True)
class Decision:
    """A reviewer's answer to one item; it overrides the served answer and is a label."""

    item_id: str
    prediction_id: str
    reviewer: str
    output: Any
    proposed_output: Any
    note: str | None
    decided_at: float

    @property
    def overridden(self) -> bool:
        """True when the reviewer's answer differs from the one the service proposed."""
        return bool(self.output != self.proposed_output)

    def as_label(self) -> tuple[str, Any]:
        """``(prediction_id, label)`` for the outcome log."""
        return self.prediction_id, self.output


class _ItemStore(Protocol):
    """Where items live. Called with the queue's lock held, so it need not lock itself."""

    def add(self, item: ReviewItem) -> None: ...
    def get(self, item_id: str) -> ReviewItem | None: ...
    def replace(self, item: ReviewItem, previous: str) -> bool: ...
    def items(self, status: str | None) -> list[ReviewItem]: ...
    def count(self, status: str) -> int: ...
    def overdue(self, now: float) -> int: ...
    def oldest_pending(self) -> ReviewItem | None: ...


class _MemoryItems:
    """Items in dicts; finished items beyond ``keep_finished`` are forgotten, oldest first."""

    def __init__(self, keep_finished: int = 100_000) -> None:
        self._open: dict[str, ReviewItem] = {}
        self._finished: OrderedDict[str, ReviewItem] = OrderedDict()
        self._keep = keep_finished
        self._counts = dict.fromkeys(STATUSES, 0)

    def add(self, item: ReviewItem) -> None:
        self._open[item.id] = item
        self._counts[item.status] += 1

    def get(self, item_id: str) -> ReviewItem | None:
        return self._open.get(item_id) or self._finished.get(item_id)

    def replace(self, item: ReviewItem, previous: str) -> bool:
        old = self._open.get(item.id)
        if old is None or old.status != previous:
            return False
        del self._open[item.id]
        self._counts[old.status] -= 1
        self._counts[item.status] += 1
        if item.status in _FINISHED:
            self._finished[item.id] = item
            while len(self._finished) > self._keep:
                self._finished.popitem(last=False)
        else:
            self._open[item.id] = item
        return True

    def items(self, status: str | None) -> list[ReviewItem]:
        every = [*self._open.values(), *self._finished.values()]
        return every if status is None else [i for i in every if i.status == status]

    def count(self, status: str) -> int:
        return self._counts[status]

    def overdue(self, now: float) -> int:
        return sum(1 for i in self._open.values() if now > i.due_at)

    def oldest_pending(self) -> ReviewItem | None:
        pending = [i for i in self._open.values() if i.status == "pending"]
        return min(pending, key=lambda i: (i.created_at, i.id)) if pending else None


_COLUMNS = (
    "id", "prediction_id", "service", "status", "reason", "priority", "inputs",
    "proposed_output", "decision", "reviewer", "note", "created_at", "claimed_at",
    "decided_at", "due_at",
)  # fmt: skip


class _StoreItems:
    """Items in the store's ``review_items`` table, one service's share of it."""

    def __init__(self, store: Store, service: str) -> None:
        self._store = store
        self._service = service

    @staticmethod
    def _item(row: Mapping[str, Any]) -> ReviewItem:
        values: dict[str, Any] = {k: row.get(k) for k in _COLUMNS}
        values["priority"] = int(values["priority"] or 0)
        values["inputs"] = values["inputs"] or {}
        values["reason"] = values["reason"] or ""
        return ReviewItem(**values)

    @staticmethod
    def _row(item: ReviewItem) -> dict[str, Any]:
        row = item.to_dict()
        row["priority"] = float(item.priority)
        row["schema_version"] = SCHEMA_VERSION
        return row

    def add(self, item: ReviewItem) -> None:
        self._store.add_review_item(self._row(item))

    def get(self, item_id: str) -> ReviewItem | None:
        try:
            row = self._store.get("review_item", item_id)
        except NotFound:
            return None
        return self._item(row) if row["service"] == self._service else None

    def replace(self, item: ReviewItem, previous: str) -> bool:
        row = self._row(item)
        del row["id"]
        return self._store.update_review_item(item.id, row, expect_status=previous)

    def items(self, status: str | None) -> list[ReviewItem]:
        rows = self._store.list_review_items(service=self._service, status=status)
        return [self._item(r) for r in rows]

    def count(self, status: str) -> int:
        return self._store.count_review_items(service=self._service, status=status)

    def overdue(self, now: float) -> int:
        return self._store.count_review_items(
            service=self._service, status=("pending", "claimed"), due_before=now
        )

    def oldest_pending(self) -> ReviewItem | None:
        row = self._store.oldest_review_item(service=self._service, status="pending")
        return None if row is None else self._item(row)


class ReviewQueue:
    """Cases for human review, with a capacity and an SLA; in memory and thread-safe.

    ``clock`` returns seconds since the epoch (inject a fake one in tests).

    >>> now = [1000.0]
    >>> queue = ReviewQueue(capacity=2, sla_s=60, clock=lambda: now[0])
    >>> item = queue.submit("pred_1", {"amount": 12000}, "approve", ["risk rule matched"])
    >>> item.status, item.due_at
    ('pending', 1060.0)
    >>> _ = queue.claim(item.id, "ana")
    >>> decision = queue.decide(item.id, "ana", "decline", note="stolen card")
    >>> decision.overridden, decision.as_label()
    (True, ('pred_1', 'decline'))
    >>> queue.stats()["decided"]
    1
    """

    def __init__(
        self,
        *,
        capacity: int = 1000,
        sla_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
        store: Store | None = None,
        service: str = "default",
    ) -> None:
        validate_params(
            "ReviewQueue",
            {"capacity": capacity, "sla_s": sla_s},
            {
                "capacity": Interval(int, 1, None),
                "sla_s": Interval(float, 0.0, None, closed="neither"),
            },
        )
        if not isinstance(service, str) or not service:
            raise ConfigError(
                f"A ReviewQueue needs a service name (a non-empty str). Got {service!r}."
            )
        self.capacity = int(capacity)
        self.sla_s = float(sla_s)
        self.service = service
        self.store = store
        self._clock = clock
        self._items: _ItemStore = _MemoryItems() if store is None else _StoreItems(store, service)
        self._lock = threading.RLock()
        self._refused = 0

    # -- admission ------------------------------------------------------------------
    def _refusal(self, now: float) -> str | None:
        n = self._items.count("pending")
        if n >= self.capacity:
            return f"the review queue is full ({n} pending, capacity {self.capacity})"
        oldest = self._items.oldest_pending()
        if oldest is not None and now > oldest.due_at:
            return (
                f"the review queue is past its SLA (oldest pending item waited "
                f"{now - oldest.created_at:.0f} s, SLA {self.sla_s:g} s)"
            )
        return None

    @property
    def refusal_reason(self) -> str | None:
        """Why the queue takes no new items now (full or past its SLA), or None."""
        with self._lock:
            return self._refusal(self._clock())

    @property
    def accepting(self) -> bool:
        """False while pending items fill the capacity or the oldest is past its SLA."""
        return self.refusal_reason is None

    def submit(
        self,
        prediction_id: str,
        inputs: Mapping[str, Any],
        proposed_output: Any,
        reasons: Sequence[str] | str,
        priority: int = 0,
    ) -> ReviewItem | None:
        """Queue a case; None when the queue is not accepting (see :attr:`refusal_reason`).

        On None the caller serves the rules' answer alone.
        """
        if not isinstance(prediction_id, str) or not prediction_id:
            raise ConfigError(
                f"A review item needs a prediction id (a non-empty str). Got {prediction_id!r}."
            )
        validate_params("ReviewQueue.submit", {"priority": priority}, {"priority": Interval(int)})
        reason = reasons if isinstance(reasons, str) else "; ".join(reasons)
        with self._lock:
            now = self._clock()
            if self._refusal(now) is not None:
                self._refused += 1
                return None
            item = ReviewItem(
                id=new_review_id(now),
                prediction_id=prediction_id,
                service=self.service,
                status="pending",
                reason=reason,
                priority=int(priority),
                inputs=dict(inputs),
                proposed_output=proposed_output,
                created_at=now,
                due_at=now + self.sla_s,
            )
            self._items.add(item)
            return item

    # -- reading --------------------------------------------------------------------
    def get(self, item_id: str) -> ReviewItem:
        """One item by id; :class:`ReviewNotFound` if there is none."""
        with self._lock:
            return self._get(item_id)

    def _get(self, item_id: str) -> ReviewItem:
        item = self._items.get(item_id)
        if item is None:
            raise ReviewNotFound(f"No review item {item_id!r}. List items with ReviewQueue.list().")
        return item

    def list(self, status: str | None = None, limit: int = 50) -> list[ReviewItem]:
        """Items (of one status), highest priority first, then oldest first."""
        validate_params(
            "ReviewQueue.list",
            {"status": status or "pending", "limit": limit},
            {"status": Options(STATUSES), "limit": Interval(int, 0, None)},
        )
        with self._lock:
            found = self._items.items(status)
        found.sort(key=lambda i: (-i.priority, i.created_at, i.id))
        return found[:limit]

    # -- transitions ----------------------------------------------------------------
    def claim(self, item_id: str, reviewer: str) -> ReviewItem:
        """Take a pending item to review; only pending items can be claimed."""
        _check_reviewer(reviewer)
        with self._lock:
            item = self._get(item_id)
            if item.status != "pending":
                who = f" by {item.reviewer!r}" if item.reviewer else ""
                raise ReviewError(
                    f"Review item {item_id!r} is {item.status}{who}; only pending items can be "
                    "claimed. Pick another from ReviewQueue.list('pending')."
                )
            claimed = dataclasses.replace(
                item, status="claimed", reviewer=reviewer, claimed_at=self._clock()
            )
            self._swap(claimed, "pending", "claim")
            return claimed

    def release(self, item_id: str, reviewer: str) -> ReviewItem:
        """Give a claimed item back to the pending pool (e.g. the reviewer is leaving)."""
        with self._lock:
            item = self._claimed_by(item_id, reviewer, "release")
            back = dataclasses.replace(item, status="pending", reviewer=None, claimed_at=None)
            self._swap(back, "claimed", "release")
            return back

    def decide(self, item_id: str, reviewer: str, output: Any, note: str | None = None) -> Decision:
        """Record the reviewer's answer, which overrides the proposed one and is a label."""
        with self._lock:
            item = self._claimed_by(item_id, reviewer, "decide")
            now = self._clock()
            self._swap(
                dataclasses.replace(
                    item, status="decided", decision=output, note=note, decided_at=now
                ),
                "claimed",
                "decide",
            )
            return Decision(
                item_id=item.id,
                prediction_id=item.prediction_id,
                reviewer=reviewer,
                output=output,
                proposed_output=item.proposed_output,
                note=note,
                decided_at=now,
            )

    def _swap(self, item: ReviewItem, previous: str, action: str) -> None:
        """Move an item on from ``previous``; fails if another process moved it first."""
        if not self._items.replace(item, previous):
            now = self._items.get(item.id)
            state = now.status if now is not None else "gone"
            raise ReviewError(
                f"Review item {item.id!r} changed while you tried to {action} it (it is now "
                f"{state}); reload it and try again."
            )

    def _claimed_by(self, item_id: str, reviewer: str, action: str) -> ReviewItem:
        _check_reviewer(reviewer)
        item = self._get(item_id)
        if item.status == "pending":
            raise ReviewError(
                f"Review item {item_id!r} is pending; claim it before you {action} it."
            )
        if item.status != "claimed":
            raise ReviewError(
                f"Review item {item_id!r} is already {item.status}; it cannot change."
            )
        if item.reviewer != reviewer:
            raise ReviewError(
                f"Review item {item_id!r} is claimed by {item.reviewer!r}, not {reviewer!r}; only "
                f"the reviewer who claimed it can {action} it."
            )
        return item

    def expire_overdue(self) -> builtins.list[ReviewItem]:  # ``list`` is a method here
        """Mark pending items past their due time expired (their answer stands); returns them.

        Claimed items are left to their reviewer even when late.
        """
        with self._lock:
            now = self._clock()
            expired: builtins.list[ReviewItem] = []
            for item in self._items.items("pending"):
                if now > item.due_at:
                    done = dataclasses.replace(item, status="expired")
                    if self._items.replace(done, "pending"):  # else claimed meanwhile
                        expired.append(done)
            return expired

    def stats(self) -> dict[str, Any]:
        """Counts by status, the oldest pending item's age, items past due, admission."""
        with self._lock:
            now = self._clock()
            oldest = self._items.oldest_pending()
            refusal = self._refusal(now)
            return {
                **{s: self._items.count(s) for s in STATUSES},
                "oldest_age_s": now - oldest.created_at if oldest is not None else None,
                "over_sla": self._items.overdue(now),
                "capacity": self.capacity,
                "sla_s": self.sla_s,
                "accepting": refusal is None,
                "refusal_reason": refusal,
                "refused": self._refused,
            }


def _check_reviewer(reviewer: Any) -> None:
    if not isinstance(reviewer, str) or not reviewer.strip():
        raise ConfigError(f"A reviewer must be a non-empty name. Got {reviewer!r}.")
