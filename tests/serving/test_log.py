"""The prediction log on SQLite and PostgreSQL: batching, shutdown, outcomes, failures."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

from hindsight.errors import ConfigError, StoreUnavailable
from hindsight.serving.fallback import Answer, Attempt
from hindsight.serving.log import PredictionLog, PredictionRecord
from hindsight.store import HEAD, Store, open_store
from hindsight.store.engine import _MIGRATIONS, create_store_engine, migrate_to
from hindsight.store.schema import SCHEMA_VERSION, metadata


class CountingStore(Store):
    """A store that counts batched inserts and can be told to fail them."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner.engine, inner.url)
        self.calls: list[int] = []
        self.fail = False

    def append_predictions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if self.fail:
            raise StoreUnavailable("database down (test)")
        self.calls.append(len(rows))
        super().append_predictions(rows)


@pytest.fixture
def store(store_url: str) -> Iterator[CountingStore]:
    s = CountingStore(open_store(store_url))
    try:
        yield s
    finally:
        s.close()


def _answer(i: int = 0, tier: str = "primary") -> Answer:
    attempts: tuple[Attempt, ...] = (Attempt("primary", "answered", 2.0),)
    if tier != "primary":
        attempts = (Attempt("primary", "timeout", 40.0, "deadline"), Attempt(tier, "answered", 1.0))
    return Answer(f"out{i}", 0.5 + i * 1e-6, tier, "v1", attempts, 3.0)


def _rec(i: int = 0, service: str = "svc", at: float | None = None, **kw: Any) -> PredictionRecord:
    return PredictionRecord.from_answer(
        _answer(i), service=service, inputs={"i": i}, arm="baseline",
        at=1000.0 + i if at is None else at, **kw,
    )


def test_record_from_answer_keeps_tier_reason_and_json_safe_values() -> None:
    ans = Answer(np.float32(0.25), float("nan"), "rules", "v2",
                 (Attempt("primary", "circuit_open", 0.0), Attempt("rules", "answered", 1.0)), 1.5)
    rec = PredictionRecord.from_answer(
        ans, service="s", inputs={"x": np.arange(3)}, arm="canary", request_id="r1",
        review_ticket="rev_1",
    )
    assert rec.id.startswith("pred_") and rec.reason == "primary: circuit open"
    row = rec.to_row()
    assert row["inputs"] == {"x": [0, 1, 2]} and row["output"] == 0.25
    assert row["confidence"] is None and row["fell_back"] is True
    assert row["attempts"][0]["outcome"] == "circuit_open"
    assert row["schema_version"] == SCHEMA_VERSION
    abstained = PredictionRecord.from_answer(ans, service="s", inputs={}, reason="abstained: low")
    assert abstained.reason == "abstained: low" and abstained.arm == "baseline"
    with pytest.raises(ConfigError):
        PredictionRecord.from_answer(ans, service="s", inputs={}, arm="")


def test_batches_are_few_inserts_and_order_is_kept(store: CountingStore) -> None:
    n, max_batch = 1234, 500
    plog = PredictionLog(store, flush_interval_s=60, max_batch=max_batch)
    recs = [_rec(i) for i in range(n)]
    for r in recs:
        plog.log(r)
    plog.close()
    assert sum(store.calls) == n
    assert len(store.calls) <= math.ceil(n / max_batch)
    rows = store.list_predictions(service="svc")
    assert [r["id"] for r in rows] == [r.id for r in recs]
    assert rows[5]["inputs"] == {"i": 5} and rows[5]["output"] == "out5"
    assert plog.stats() == {"written": n, "pending": 0, "dropped": 0, "rejected": 0}


def test_background_thread_flushes_on_interval_and_full_batch(store: CountingStore) -> None:
    plog = PredictionLog(store, flush_interval_s=0.05, max_batch=1000)
    plog.log(_rec(1))
    deadline = time.monotonic() + 5
    while not store.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.calls == [1]
    plog.close()

    slow = PredictionLog(store, flush_interval_s=3600, max_batch=10)
    for i in range(10):
        slow.log(_rec(100 + i))
    deadline = time.monotonic() + 5
    while sum(store.calls) < 11 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.calls[1:] == [10]  # a full batch wakes the writer long before the hour
    slow.close()


def test_close_flushes_everything_and_is_idempotent(store: CountingStore) -> None:
    plog = PredictionLog(store, flush_interval_s=3600)
    for i in range(7):
        plog.log(_rec(i))
    assert store.list_predictions() == []
    plog.close()
    plog.close()
    assert len(store.list_predictions()) == 7
    plog.log(_rec(99))  # after close: counted, never raised
    assert plog.dropped == 1


def test_list_predictions_filters(store: CountingStore) -> None:
    with PredictionLog(store, flush_interval_s=3600) as plog:
        for i in range(10):
            plog.log(_rec(i, service="a" if i % 2 else "b"))
    assert len(store.list_predictions(service="a")) == 5
    got = store.list_predictions(since=1002.0, until=1005.0)
    assert [r["created_at"] for r in got] == [1002.0, 1003.0, 1004.0]
    assert len(store.list_predictions(limit=3)) == 3


def test_outcomes_join_later(store: CountingStore) -> None:
    plog = PredictionLog(store, flush_interval_s=3600)
    recs = [_rec(i) for i in range(3)]
    for r in recs:
        plog.log(r)
    # An outcome may arrive before its prediction is flushed.
    oid = plog.record_outcome(recs[0].id, label="good", at=2000.0)
    assert oid.startswith("out_")
    plog.flush()
    plog.record_outcomes([
        {"prediction_id": recs[1].id, "reward": 1.5, "at": 2001.0},
        {"prediction_id": recs[0].id, "reward": -1, "at": 2002.0},
    ])
    joined = store.predictions_with_outcomes(service="svc")
    assert [(r["id"], r["label"], r["reward"]) for r in joined] == [
        (recs[0].id, "good", None), (recs[0].id, None, -1.0), (recs[1].id, None, 1.5)
    ]
    assert joined[0]["outcome_at"] == 2000.0 and joined[0]["tier"] == "primary"
    everything = store.predictions_with_outcomes(include_unlabelled=True)
    assert [r["outcome_id"] for r in everything][-1] is None
    assert store.predictions_with_outcomes(since=1001.0)[0]["id"] == recs[1].id
    with pytest.raises(ConfigError, match="label, a reward"):
        plog.record_outcome(recs[2].id)
    with pytest.raises(ConfigError):
        plog.record_outcome(recs[2].id, reward=float("inf"))
    plog.close()


def test_concurrent_logging_loses_nothing(store: CountingStore) -> None:
    plog = PredictionLog(store, flush_interval_s=0.01, max_batch=64)
    threads, per = 8, 250

    def worker(t: int) -> None:
        for i in range(per):
            plog.log(_rec(t * per + i))

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    plog.close()
    rows = store.list_predictions()
    assert len(rows) == threads * per == len({r["id"] for r in rows})
    assert plog.dropped == 0


def test_full_queue_drops_and_counts(store: CountingStore) -> None:
    plog = PredictionLog(store, flush_interval_s=3600, max_batch=1000, max_queue=5)
    for i in range(8):
        plog.log(_rec(i))
    assert plog.dropped == 3 and plog.pending == 5
    plog.close()
    assert len(store.list_predictions()) == 5


def test_failing_store_keeps_the_batch_and_retries(
    store: CountingStore, caplog: pytest.LogCaptureFixture
) -> None:
    plog = PredictionLog(store, flush_interval_s=3600, max_batch=4, max_queue=10)
    recs = [_rec(i) for i in range(6)]
    for r in recs:
        plog.log(r)
    store.fail = True
    with caplog.at_level("ERROR", logger="hindsight.serving.log"):
        assert plog.flush() == 0
    assert "kept for a retry" in caplog.text
    assert plog.pending == 6
    for i in range(6, 12):  # held records count against max_queue
        plog.log(_rec(i))
    assert plog.dropped == 2 and plog.pending == 10
    store.fail = False
    assert plog.flush() == 10
    plog.close()
    ids = [r["id"] for r in store.list_predictions()]
    assert ids[:6] == [r.id for r in recs]  # the kept batch is written first, in order
    assert len(ids) == 10


def test_refused_rows_are_isolated(store: CountingStore) -> None:
    plog = PredictionLog(store, flush_interval_s=3600)
    first = _rec(1)
    plog.log(first)
    plog.flush()
    plog.log(_rec(2))
    plog.log(first)  # a duplicate id: the database refuses it, not the batch
    plog.log(_rec(3))
    plog.close()
    assert plog.rejected == 1
    assert [r["created_at"] for r in store.list_predictions()] == [1001.0, 1002.0, 1003.0]


def test_review_items(store: CountingStore) -> None:
    base = {"service": "s", "reason": "low confidence", "inputs": {"x": 1},
            "proposed_output": "a", "schema_version": SCHEMA_VERSION}
    for i, prio in enumerate([0.2, 0.9, 0.5]):
        store.add_review_item({**base, "id": f"rev_{i}", "prediction_id": f"pred_{i}",
                               "status": "pending", "priority": prio, "created_at": 10.0 + i})
    assert [r["id"] for r in store.list_review_items(service="s")] == ["rev_1", "rev_2", "rev_0"]
    assert store.update_review_item("rev_1", {"status": "claimed", "reviewer": "ann",
                                              "claimed_at": 20.0}, expect_status="pending")
    assert not store.update_review_item("rev_1", {"status": "claimed", "reviewer": "bob"},
                                        expect_status="pending")
    assert not store.update_review_item("rev_missing", {"status": "expired"})
    assert store.update_review_item("rev_1", {"status": "decided", "decision": {"label": "b"}},
                                    expect_status=["claimed", "pending"])
    assert store.count_review_items(service="s", status="pending") == 2
    assert store.count_review_items(status=["decided", "claimed"]) == 1
    assert store.list_review_items(status="decided")[0]["decision"] == {"label": "b"}
    assert store.list_review_items(status="pending", limit=1)[0]["id"] == "rev_2"


def test_invalid_parameters() -> None:
    with pytest.raises(ConfigError, match="max_batch"):
        PredictionLog(None, max_batch=0)  # type: ignore[arg-type]


def _downgrade(engine: Engine, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.connect().execution_options(hindsight_write=True) as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_migration_round_trip(store_url: str) -> None:
    engine = create_store_engine(store_url)
    migrate_to(engine, "0004")
    with engine.connect() as conn:
        assert "predictions" not in inspect(conn).get_table_names()
    migrate_to(engine, HEAD)
    _downgrade(engine, "0004")
    with engine.connect() as conn:
        assert not {"predictions", "outcomes", "review_items"} & set(inspect(conn).get_table_names())
    migrate_to(engine, HEAD)
    with engine.connect() as conn:
        insp = inspect(conn)
        for name in ("predictions", "outcomes", "review_items"):
            table = metadata.tables[name]
            assert {c["name"] for c in insp.get_columns(name)} == {c.name for c in table.columns}
            assert {i["name"] for i in insp.get_indexes(name)} == {i.name for i in table.indexes}
    engine.dispose()
    assert open_store(store_url).migrated_from == HEAD
