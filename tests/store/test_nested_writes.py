"""``with store.write():`` groups the store's own writes into one transaction."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from hindsight.errors import NotFound
from hindsight.store import open_store
from hindsight.store.schema import SCHEMA_VERSION


def _row(i: int) -> dict[str, object]:
    return {
        "id": f"exp_nested{i:03d}",
        "project": "p",
        "name": f"e{i}",
        "hypothesis": "",
        "approach": "",
        "tags": [],
        "config": {},
        "criteria": {},
        "status": "running",
        "started_at": 1000.0 + i,
        "schema_version": SCHEMA_VERSION,
    }


def test_writes_inside_write_commit_together(store_url: str) -> None:
    store = open_store(store_url)
    with store.write():
        store.insert("experiment", _row(1))
        # A read inside the transaction sees its own uncommitted write.
        assert store.get("experiment", "exp_nested001")["name"] == "e1"
        store.append_metrics(
            [("exp_nested001", "loss", np.arange(3), np.array([3.0, 2.0, 1.0]), np.zeros(3))],
            summary=("exp_nested001", {"loss": 1.0}),
        )
        store.add_note("exp_nested001", "next_step", "try a lower lr", 1001.0)
    assert store.get("experiment", "exp_nested001")["summary"] == {"loss": 1.0}
    _, vals, _ = store.metric_series("exp_nested001")["loss"]
    assert vals.tolist() == [3.0, 2.0, 1.0]
    assert [n["text"] for n in store.notes("exp_nested001")] == ["try a lower lr"]


def test_an_error_inside_write_rolls_every_write_back(store_url: str) -> None:
    store = open_store(store_url)
    with pytest.raises(NotFound), store.write():
        store.insert("experiment", _row(2))
        store.add_note("exp_nested002", "next_step", "gone with the rest", 1.0)
        store.update("experiment", "exp_missing", status="finished")
    with pytest.raises(NotFound):
        store.get("experiment", "exp_nested002")
    # The store is usable afterwards: the thread holds no half-finished transaction.
    store.insert("experiment", _row(3))
    assert store.get("experiment", "exp_nested003")["status"] == "running"


def test_another_thread_does_not_join_the_transaction(store_url: str) -> None:
    store = open_store(store_url)
    seen: list[bool] = []

    def look() -> None:
        try:
            store.get("experiment", "exp_nested004")
            seen.append(True)
        except NotFound:
            seen.append(False)

    with store.write():
        store.insert("experiment", _row(4))
        t = threading.Thread(target=look)
        t.start()
        t.join()
    assert seen == [False]  # uncommitted: the other thread reads on its own connection
    look()
    assert seen == [False, True]
