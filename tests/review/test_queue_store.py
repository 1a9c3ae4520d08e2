"""The store-backed review queue on SQLite and PostgreSQL: the same flows as in memory,
shared between queue objects (as between server processes), with atomic transitions."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from hindsight.errors import ReviewError, ReviewNotFound
from hindsight.review import ReviewQueue
from hindsight.store import Store, open_store


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


def _queue(store: Store, clock: Clock, **kw: object) -> ReviewQueue:
    return ReviewQueue(store=store, service="fraud", clock=clock, **kw)  # type: ignore[arg-type]


def test_flow_is_shared_between_queue_objects(store: Store) -> None:
    clock = Clock()
    a, b = _queue(store, clock, sla_s=60), _queue(store, clock, sla_s=60)
    low = a.submit("pred_1", {"amount": 5}, "approve", ["low confidence"])
    clock.now += 1
    high = a.submit("pred_2", {"amount": 9e5}, "approve", "risk rule", priority=3)
    assert low is not None and high is not None
    # Highest priority first, then oldest; the other object sees the same items.
    assert [i.id for i in b.list("pending")] == [high.id, low.id]
    assert b.get(low.id).inputs == {"amount": 5}
    claimed = b.claim(high.id, "bo")
    assert claimed.status == "claimed" and a.get(high.id).reviewer == "bo"
    with pytest.raises(ReviewError, match="claimed by 'bo'"):
        a.claim(high.id, "ana")
    with pytest.raises(ReviewError, match="claimed by 'bo', not 'ana'"):
        a.decide(high.id, "ana", "decline")
    decision = a.decide(high.id, "bo", "decline", note="stolen card")
    assert decision.overridden and decision.as_label() == ("pred_2", "decline")
    row = store.get("review_item", high.id)
    assert (row["status"], row["decision"], row["note"], row["reviewer"]) == (
        "decided", "decline", "stolen card", "bo",
    )  # fmt: skip
    back = a.claim(low.id, "ana")
    assert back.status == "claimed"
    assert b.release(low.id, "ana").status == "pending"
    stats = b.stats()
    assert (stats["pending"], stats["claimed"], stats["decided"]) == (1, 0, 1)
    with pytest.raises(ReviewNotFound):
        a.get("rev_missing")
    # Another service's queue on the same store does not see these items.
    other = ReviewQueue(store=store, service="loans", clock=clock)
    assert other.list("pending") == [] and other.stats()["pending"] == 0


def test_capacity_sla_and_expiry(store: Store) -> None:
    clock = Clock()
    q = _queue(store, clock, capacity=2, sla_s=60)
    assert q.submit("p1", {}, 1, "x") is not None
    assert q.submit("p2", {}, 1, "x") is not None
    assert q.submit("p3", {}, 1, "x") is None
    assert "full (2 pending, capacity 2)" in (q.refusal_reason or "")
    first = q.list("pending")[0]
    q.claim(first.id, "ana")
    clock.now += 61
    assert "past its SLA" in (q.refusal_reason or "")
    assert q.stats()["over_sla"] == 2  # the pending item and the claimed one, counted in SQL
    expired = q.expire_overdue()
    assert len(expired) == 1 and expired[0].status == "expired"
    assert q.get(first.id).status == "claimed"  # claimed items stay with their reviewer
    assert q.accepting
    assert q.stats()["refused"] == 1


def test_concurrent_claims_have_one_winner(store: Store) -> None:
    clock = Clock()
    item = _queue(store, clock).submit("p1", {}, 1, "x")
    assert item is not None
    queues = [_queue(store, clock) for _ in range(6)]  # as if six server processes
    wins: list[str] = []
    errors: list[str] = []
    barrier = threading.Barrier(len(queues))

    def claim(q: ReviewQueue, who: str) -> None:
        barrier.wait()
        try:
            q.claim(item.id, who)
            wins.append(who)
        except ReviewError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=claim, args=(q, f"r{i}")) for i, q in enumerate(queues)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(errors) == len(queues) - 1
    assert store.get("review_item", item.id)["reviewer"] == wins[0]
