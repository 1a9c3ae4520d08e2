"""The Store contract, run on SQLite and PostgreSQL alike."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect, text

from hindsight.errors import NotFound, StoreError, StoreVersionError
from hindsight.store import HEAD, open_store
from hindsight.store.engine import create_store_engine, migrate_to
from hindsight.store.schema import SCHEMA_VERSION, metadata


def _experiment(i: int = 0, **over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": f"exp_test{i:04d}",
        "project": "p",
        "name": f"e{i}",
        "hypothesis": "h",
        "approach": "a",
        "tags": ["mf"],
        "config": {"lr": 0.01, "nested": {"depth": 3}},
        "criteria": {"ctr": ">= 0.6"},
        "status": "running",
        "started_at": 1000.0 + i,
        "schema_version": SCHEMA_VERSION,
    }
    row.update(over)
    return row


def test_fresh_store_is_at_head_and_matches_the_schema(store_url: str) -> None:
    store = open_store(store_url)
    assert store.migrated_from == "empty"
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
        insp = inspect(conn)
        for table in metadata.sorted_tables:
            cols = {c["name"] for c in insp.get_columns(table.name)}
            assert cols == {c.name for c in table.columns}, table.name
    assert open_store(store_url).migrated_from == HEAD


def test_records_round_trip_with_json(store_url: str) -> None:
    store = open_store(store_url)
    store.insert("experiment", _experiment())
    row = store.get("experiment", "exp_test0000")
    assert row["config"] == {"lr": 0.01, "nested": {"depth": 3}}
    assert row["tags"] == ["mf"]
    store.update("experiment", "exp_test0000", status="finished", outcome="success")
    assert store.get("experiment", "exp_test0000")["outcome"] == "success"
    with pytest.raises(NotFound, match="exp_missing"):
        store.get("experiment", "exp_missing")
    with pytest.raises(NotFound):
        store.update("experiment", "exp_missing", status="finished")


def test_metric_chunks_concatenate_in_write_order(store_url: str) -> None:
    store = open_store(store_url)
    store.insert("experiment", _experiment())
    steps = np.arange(10)
    store.append_metrics(
        [("exp_test0000", "loss", steps[:6], np.linspace(1, 0.5, 6), np.full(6, 5.0)),
         ("exp_test0000", "acc", steps[:3], np.array([0.1, 0.2, 0.3]), np.zeros(3))],
        summary=("exp_test0000", {"loss": 0.5, "acc": 0.3}),
    )
    store.append_metrics(
        [("exp_test0000", "loss", steps[6:], np.array([0.4, 0.3, 0.2, 0.1]), np.full(4, 6.0))]
    )
    series = store.metric_series("exp_test0000")
    s, v, t = series["loss"]
    assert s.tolist() == list(range(10))
    np.testing.assert_allclose(v, [*np.linspace(1, 0.5, 6), 0.4, 0.3, 0.2, 0.1])
    assert t.tolist() == [5.0] * 6 + [6.0] * 4
    assert series["acc"][1].tolist() == [0.1, 0.2, 0.3]
    assert store.get("experiment", "exp_test0000")["summary"] == {"loss": 0.5, "acc": 0.3}
    assert set(store.metric_series("exp_test0000", "acc")) == {"acc"}


def test_insert_and_update_is_one_transaction(store_url: str) -> None:
    store = open_store(store_url)
    store.insert("experiment", _experiment())
    failure = {
        "id": "fail_x", "experiment_id": "exp_test0000", "project": "p", "source": "experiment",
        "created_at": 1.0, "exc_type": "E", "message": "m", "frames": [], "fingerprint": "f",
        "masked_message": "m", "tokens": "e m", "category": "unknown", "diagnosis": {},
        "evidence": {}, "schema_version": SCHEMA_VERSION,
    }
    store.insert("failure", failure)
    # The second insert of the same failure id fails, so the update must not land either.
    with pytest.raises(StoreError):
        store.insert_and_update("failure", failure, "experiment", "exp_test0000",
                                {"status": "crashed"})
    assert store.get("experiment", "exp_test0000")["status"] == "running"


def test_filters_and_links(store_url: str) -> None:
    store = open_store(store_url)
    for i in range(5):
        store.insert("experiment", _experiment(i, status="crashed" if i % 2 else "finished",
                                               project="p" if i < 4 else "q"))
    assert len(store.list_experiments(project="p")) == 4
    assert {r["id"] for r in store.list_experiments(failed=True)} == {"exp_test0001", "exp_test0003"}
    assert [r["id"] for r in store.list_experiments(since=1003.0, newest_first=False)] == [
        "exp_test0003", "exp_test0004"]
    store.add_parent("exp_test0002", "exp_test0001")
    store.add_parent("exp_test0002", "exp_test0001")  # idempotent
    assert store.parents("exp_test0002") == ["exp_test0001"]
    with pytest.raises(NotFound):
        store.add_parent("exp_test0002", "exp_nope")


def test_older_store_is_migrated_and_keeps_its_data(store_url: str) -> None:
    engine = create_store_engine(store_url)
    migrate_to(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO lessons (id, project, text, tags, created_at, schema_version) "
                 "VALUES ('les_old', 'p', 'old lesson', '[]', 1.0, 1)")
        )
    engine.dispose()
    store = open_store(store_url)
    assert store.migrated_from == "0001"
    assert store.list_lessons()[0]["text"] == "old lesson"
    assert store.list_postmortems() == []


def test_newer_store_is_refused_with_advice(store_url: str) -> None:
    open_store(store_url).close()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreVersionError, match=r"newer hindsight.*pip install -U hindsight"):
        open_store(store_url)


def test_concurrent_writers_lose_nothing(store_url: str) -> None:
    open_store(store_url).close()
    script = textwrap.dedent(
        """
        import sys, time
        import numpy as np
        from hindsight.store import open_store
        from hindsight.store.schema import SCHEMA_VERSION
        url, worker = sys.argv[1], int(sys.argv[2])
        store = open_store(url)
        for i in range(20):
            eid = f"exp_w{worker}_{i}"
            store.insert("experiment", {
                "id": eid, "project": "p", "name": "n", "hypothesis": "", "approach": "",
                "tags": [], "config": {}, "criteria": {}, "status": "running",
                "started_at": time.time(), "schema_version": SCHEMA_VERSION})
            store.append_metrics([(eid, "loss", np.arange(50), np.ones(50), np.zeros(50))])
            store.update("experiment", eid, status="finished")
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, store_url, str(w)]) for w in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    store = open_store(store_url)
    rows = store.list_experiments()
    assert len(rows) == 80
    assert {r["status"] for r in rows} == {"finished"}
    assert all(len(store.metric_series(r["id"])["loss"][0]) == 50 for r in rows[:10])


def test_concurrent_first_opens_migrate_once(store_url: str) -> None:
    script = "import sys; from hindsight.store import open_store; open_store(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", script, store_url]) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert open_store(store_url).migrated_from == HEAD


def test_timestamps_are_plain_floats(store_url: str) -> None:
    store = open_store(store_url)
    now = time.time()
    store.insert("experiment", _experiment(started_at=now))
    assert store.get("experiment", "exp_test0000")["started_at"] == pytest.approx(now)
