"""The review queue: capacity, SLA, claim/decide flow, decisions as labels, threads."""

from __future__ import annotations

import doctest
import re
import threading

import pytest

import hindsight.review as review_package
import hindsight.review.queue as queue_module
from hindsight.errors import ConfigError, HindsightError
from hindsight.review import Decision, ReviewError, ReviewNotFound, ReviewQueue


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(clock: Clock, **kw: object) -> ReviewQueue:
    return ReviewQueue(clock=clock, **kw)  # type: ignore[arg-type]


def test_docstring_examples() -> None:
    result = doctest.testmod(queue_module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


def test_exports() -> None:
    for name in review_package.__all__:
        assert getattr(review_package, name) is not None
    assert issubclass(ReviewError, HindsightError)
    assert issubclass(ReviewNotFound, KeyError)


def test_submit_makes_a_pending_item(clock: Clock) -> None:
    q = make(clock, sla_s=60, service="fraud")
    item = q.submit("pred_1", {"amount": 5}, "approve", ["low confidence", "risk rule"], priority=2)
    assert item is not None
    assert re.fullmatch(r"rev_[0-9a-f]{11}[0-9a-f]{8}", item.id)
    assert (item.status, item.reason, item.priority, item.service) == (
        "pending",
        "low confidence; risk rule",
        2,
        "fraud",
    )
    assert item.created_at == clock.now
    assert item.due_at == clock.now + 60
    assert item.reviewer is None and item.decision is None
    assert q.get(item.id) == item
    assert item.to_dict()["inputs"] == {"amount": 5}


def test_capacity_refuses_then_accepts_again(clock: Clock) -> None:
    q = make(clock, capacity=3)
    items = [q.submit(f"p{i}", {}, 0, "r") for i in range(3)]
    assert all(i is not None for i in items)
    assert not q.accepting
    assert q.refusal_reason == "the review queue is full (3 pending, capacity 3)"
    assert q.submit("p3", {}, 0, "r") is None
    assert q.stats()["refused"] == 1
    # Claimed items no longer count against the pending capacity.
    first = items[0]
    assert first is not None
    q.claim(first.id, "ana")
    assert q.accepting
    assert q.submit("p4", {}, 0, "r") is not None


def test_sla_refuses_until_overdue_items_expire(clock: Clock) -> None:
    q = make(clock, capacity=10, sla_s=100)
    old = q.submit("p0", {}, 0, "r")
    assert old is not None
    clock.now += 100
    assert q.accepting  # at the due time, not yet past it
    clock.now += 1
    assert not q.accepting
    assert q.refusal_reason is not None and "past its SLA" in q.refusal_reason
    assert q.submit("p1", {}, 0, "r") is None
    stats = q.stats()
    assert stats["over_sla"] == 1
    assert stats["oldest_age_s"] == pytest.approx(101)
    assert stats["accepting"] is False
    expired = q.expire_overdue()
    assert [i.id for i in expired] == [old.id]
    assert q.get(old.id).status == "expired"
    assert q.accepting
    assert q.stats()["expired"] == 1
    assert q.stats()["oldest_age_s"] is None


def test_expire_leaves_claimed_and_fresh_items(clock: Clock) -> None:
    q = make(clock, sla_s=10)
    a = q.submit("a", {}, 0, "r")
    b = q.submit("b", {}, 0, "r")
    assert a is not None and b is not None
    q.claim(a.id, "ana")
    clock.now += 5
    c = q.submit("c", {}, 0, "r")
    assert c is not None
    clock.now += 6
    assert [i.id for i in q.expire_overdue()] == [b.id]
    assert q.get(a.id).status == "claimed"
    assert q.get(c.id).status == "pending"
    assert q.stats()["over_sla"] == 1  # the late claimed item


def test_claim_decide_flow_and_labels(clock: Clock) -> None:
    q = make(clock)
    item = q.submit("pred_9", {"amount": 20_000}, "approve", "risk rule matched: amount > 10000")
    assert item is not None
    clock.now += 5
    claimed = q.claim(item.id, "ana")
    assert (claimed.status, claimed.reviewer, claimed.claimed_at) == ("claimed", "ana", clock.now)
    clock.now += 30
    decision = q.decide(item.id, "ana", "decline", note="card reported stolen")
    assert decision == Decision(
        item_id=item.id,
        prediction_id="pred_9",
        reviewer="ana",
        output="decline",
        proposed_output="approve",
        note="card reported stolen",
        decided_at=clock.now,
    )
    assert decision.overridden
    assert decision.as_label() == ("pred_9", "decline")
    done = q.get(item.id)
    assert (done.status, done.decision, done.decided_at, done.note) == (
        "decided",
        "decline",
        clock.now,
        "card reported stolen",
    )


def test_agreeing_decision_is_not_an_override(clock: Clock) -> None:
    q = make(clock)
    item = q.submit("p", {}, {"label": 1}, "audit")
    assert item is not None
    q.claim(item.id, "bo")
    d = q.decide(item.id, "bo", {"label": 1})
    assert not d.overridden
    assert d.as_label() == ("p", {"label": 1})


def test_transition_errors_are_clear(clock: Clock) -> None:
    q = make(clock)
    item = q.submit("p", {}, 0, "r")
    assert item is not None
    with pytest.raises(ReviewError, match="is pending; claim it before you decide it"):
        q.decide(item.id, "ana", 1)
    q.claim(item.id, "ana")
    with pytest.raises(ReviewError, match="is claimed by 'ana'; only pending items can be claimed"):
        q.claim(item.id, "bo")
    with pytest.raises(ReviewError, match="claimed by 'ana', not 'bo'"):
        q.decide(item.id, "bo", 1)
    q.decide(item.id, "ana", 1)
    with pytest.raises(ReviewError, match="already decided"):
        q.decide(item.id, "ana", 2)
    with pytest.raises(ReviewError, match="is decided"):
        q.claim(item.id, "ana")
    with pytest.raises(ReviewNotFound, match="No review item 'rev_nope'") as info:
        q.claim("rev_nope", "ana")
    assert isinstance(info.value, KeyError)
    with pytest.raises(ConfigError, match="reviewer must be a non-empty name"):
        q.claim(item.id, " ")


def test_expired_items_cannot_be_claimed(clock: Clock) -> None:
    q = make(clock, sla_s=1)
    item = q.submit("p", {}, 0, "r")
    assert item is not None
    clock.now += 2
    q.expire_overdue()
    with pytest.raises(ReviewError, match="is expired"):
        q.claim(item.id, "ana")


def test_release_returns_an_item_to_the_pool(clock: Clock) -> None:
    q = make(clock)
    item = q.submit("p", {}, 0, "r")
    assert item is not None
    q.claim(item.id, "ana")
    with pytest.raises(ReviewError, match="not 'bo'"):
        q.release(item.id, "bo")
    back = q.release(item.id, "ana")
    assert (back.status, back.reviewer) == ("pending", None)
    assert q.claim(item.id, "bo").reviewer == "bo"


def test_list_orders_by_priority_then_age_and_filters(clock: Clock) -> None:
    q = make(clock)
    ids = []
    for i, prio in enumerate([0, 5, 0, 5]):
        clock.now += 1
        item = q.submit(f"p{i}", {}, 0, "r", priority=prio)
        assert item is not None
        ids.append(item.id)
    assert [i.id for i in q.list()] == [ids[1], ids[3], ids[0], ids[2]]
    assert [i.id for i in q.list(limit=2)] == [ids[1], ids[3]]
    q.claim(ids[1], "ana")
    assert [i.id for i in q.list("claimed")] == [ids[1]]
    assert [i.id for i in q.list("pending")] == [ids[3], ids[0], ids[2]]
    assert q.list("decided") == []
    with pytest.raises(ConfigError, match=r"'status' parameter of ReviewQueue\.list must be one of"):
        q.list("done")


def test_stats_counts(clock: Clock) -> None:
    q = make(clock, capacity=5, sla_s=50)
    a, b, c = (q.submit(p, {}, 0, "r") for p in "abc")
    assert a is not None and b is not None and c is not None
    q.claim(a.id, "ana")
    q.decide(a.id, "ana", 1)
    q.claim(b.id, "ana")
    clock.now += 10
    stats = q.stats()
    assert {k: stats[k] for k in ("pending", "claimed", "decided", "expired")} == {
        "pending": 1,
        "claimed": 1,
        "decided": 1,
        "expired": 0,
    }
    assert stats["oldest_age_s"] == pytest.approx(10)
    assert stats["over_sla"] == 0
    assert stats["accepting"] is True and stats["refusal_reason"] is None


@pytest.mark.parametrize(
    "kwargs", [{"capacity": 0}, {"capacity": 1.5}, {"sla_s": 0}, {"sla_s": -1}]
)
def test_bad_parameters(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="parameter of ReviewQueue must be"):
        ReviewQueue(**kwargs)  # type: ignore[arg-type]


def test_bad_submissions(clock: Clock) -> None:
    q = make(clock)
    with pytest.raises(ConfigError, match="prediction id"):
        q.submit("", {}, 0, "r")
    with pytest.raises(ConfigError, match="'priority' parameter"):
        q.submit("p", {}, 0, "r", priority=1.5)  # type: ignore[arg-type]


def test_finished_items_are_bounded_in_memory(clock: Clock) -> None:
    items = queue_module._MemoryItems(keep_finished=3)
    q = make(clock)
    q._items = items
    ids = []
    for i in range(5):
        item = q.submit(f"p{i}", {}, 0, "r")
        assert item is not None
        q.claim(item.id, "ana")
        q.decide(item.id, "ana", 1)
        ids.append(item.id)
    with pytest.raises(ReviewNotFound):
        q.get(ids[0])
    assert q.get(ids[-1]).status == "decided"
    assert q.stats()["decided"] == 5  # counted even when forgotten


def test_thread_safety_smoke(clock: Clock) -> None:
    q = make(clock, capacity=10_000)
    n_threads, per_thread = 8, 200
    decided: list[Decision] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n_threads)

    def work(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                item = q.submit(f"p{t}_{i}", {"i": i}, 0, "r")
                assert item is not None
            # Every thread races for every pending item; each is claimed exactly once.
            for item in q.list("pending", limit=10_000):
                try:
                    q.claim(item.id, f"rev{t}")
                except ReviewError:
                    continue
                d = q.decide(item.id, f"rev{t}", t)
                with lock:
                    decided.append(d)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    total = n_threads * per_thread
    assert len(decided) == total
    assert len({d.item_id for d in decided}) == total
    stats = q.stats()
    assert (stats["pending"], stats["claimed"], stats["decided"]) == (0, 0, total)
