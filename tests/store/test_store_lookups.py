"""The store's look-ups behind similar failures, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from hindsight.store import open_store
from hindsight.store.schema import SCHEMA_VERSION


def _failure(i: int, fp: str, created: float, exp: str | None = None) -> dict[str, Any]:
    return {
        "id": f"fail_{i:04d}", "experiment_id": exp, "project": "p", "source": "training",
        "created_at": created, "exc_type": "ValueError", "message": "m", "frames": [],
        "fingerprint": fp, "masked_message": "m", "tokens": f"value error {fp}",
        "category": "code.error", "diagnosis": {}, "evidence": {},
        "schema_version": SCHEMA_VERSION,
    }


def _experiment(i: int, name: str, started: float, outcome: str) -> dict[str, Any]:
    return {
        "id": f"exp_{i:04d}", "project": "p", "name": name, "hypothesis": "", "approach": "",
        "tags": [], "config": {}, "criteria": {}, "status": "finished", "outcome": outcome,
        "started_at": started, "schema_version": SCHEMA_VERSION,
    }


def test_signatures_after_a_cursor_return_only_new_failures(store_url: str) -> None:
    store = open_store(store_url)
    for i in range(3):
        store.insert("failure", _failure(i, "a", 100.0 + i))
    rows, cursor = store.failure_signatures_after(None)
    assert sorted(r[0] for r in rows) == ["fail_0000", "fail_0001", "fail_0002"]
    store.insert("failure", _failure(3, "b", 103.5))
    again, cursor2 = store.failure_signatures_after(cursor)
    assert "fail_0003" in {r[0] for r in again}
    assert cursor2 is not None and cursor is not None and cursor2 >= cursor
    if store.backend == "sqlite":
        # The rowid cursor also picks up a late commit with an older timestamp.
        store.insert("failure", _failure(4, "b", 50.0))
        late, _ = store.failure_signatures_after(cursor2)
        assert "fail_0004" in {r[0] for r in late}


def test_group_stats_lessons_and_runs(store_url: str) -> None:
    store = open_store(store_url)
    for i in range(6):
        store.insert("experiment", _experiment(i, "train", 10.0 * i, "failure"))
    for i in range(6):
        store.insert("failure", _failure(i, "a", 10.0 * i + 5, exp=f"exp_{i:04d}"))
    store.insert("failure", _failure(6, "a", 7.0))  # no experiment
    store.insert("failure", _failure(7, "a", 99.0))  # later than the query
    store.insert("lesson", {"id": "les_1", "project": "p", "text": "t", "tags": [],
                            "created_at": 1.0, "schema_version": SCHEMA_VERSION})
    store.link_lesson("les_1", "exp_0002", "source", 1.0)
    window = {"before": 60.0, "exclude_id": "fail_0005", "exclude_experiment": "exp_0004"}
    stats = store.failure_group_stats(["a", "missing"], **window)
    # fail_0000..0003 and fail_0006; not 0004 (same experiment), 0005 (itself), 0007 (later)
    assert stats == {"a": (5, "fail_0003")}
    # The group is taken from the newest `limit` failures: 0007, 0005, 0004, 0003.
    assert store.failure_group_stats(["a"], **window, limit=4) == {"a": (1, "fail_0003")}
    assert store.failure_group_stats(["a"], **window, limit=3) == {}
    assert store.failure_group_lessons(["a"], **window) == {"a": {"les_1"}}
    runs = store.failure_group_runs("a", **window)
    assert [e for e, _ in runs] == ["exp_0003", "exp_0002", "exp_0001", "exp_0000"]
    assert store.failure_group_runs("a", **window, offset=1, count=2) == runs[1:3]


def test_successes_by_name_and_long_id_lists(store_url: str) -> None:
    store = open_store(store_url)
    for i in range(150):
        store.insert("experiment", _experiment(i, f"n{i % 3}", float(i), "success" if i % 2 else "failure"))
    ids = [f"exp_{i:04d}" for i in range(120)] + ["exp_nope"]
    assert len(store.list_experiments(ids=ids, columns=("id", "name"))) == 120
    assert {c for _, c in store.children(ids)} == set()
    assert store.latest_success_starts([("p", "n0"), ("p", "n1"), ("q", "n0")]) == {
        ("p", "n0"): 147.0, ("p", "n1"): 145.0,
    }
    first = store.successes_after(100.0, project="p", name="n1", limit=2)
    assert [r["id"] for r in first] == ["exp_0103", "exp_0109"]
