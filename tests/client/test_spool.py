"""The local spool: kept in order, coalesced heartbeats, refused records set aside."""

from __future__ import annotations

import json
from pathlib import Path

from hindsight.client.spool import Spool


def _op(i: int, kind: str = "experiment.note", exp: str = "exp_a") -> dict[str, object]:
    return {"op_id": f"op{i:06d}", "op": kind, "experiment_id": exp, "text": f"t{i}", "at": 1.0}


def test_operations_come_out_in_order_and_survive_a_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    seqs = [spool.put(_op(i)) for i in range(5)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    spool.close()
    again = Spool(tmp_path / "spool.db")  # another process, or the next run
    batch = again.take(3, 1 << 20)
    assert [json.loads(b)["op_id"] for _, b in batch] == ["op000000", "op000001", "op000002"]
    again.done(s for s, _ in batch)
    assert again.pending() == 2
    assert again.waiting_through(seqs[2]) == 0 and again.waiting_through(seqs[4]) == 2


def test_a_batch_stops_at_the_byte_limit_but_always_holds_one(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    for i in range(4):
        spool.put({**_op(i), "text": "x" * 1000})
    assert len(spool.take(10, 2500)) == 2
    assert len(spool.take(10, 10)) == 1  # one record bigger than the limit still goes


def test_only_the_newest_heartbeat_of_a_run_waits(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    for i in range(3):
        spool.put(_op(i, "experiment.heartbeat"), replace_older=True)
    spool.put(_op(9, "experiment.heartbeat", exp="exp_b"), replace_older=True)
    spool.put(_op(10))
    summary = spool.summary()
    assert summary["by_op"] == {"experiment.heartbeat": 2, "experiment.note": 1}
    ids = [json.loads(b)["op_id"] for _, b in spool.take(10, 1 << 20)]
    assert ids == ["op000002", "op000009", "op000010"]


def test_refused_operations_move_aside_and_can_be_sent_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    a, b = spool.put(_op(1)), spool.put(_op(2))
    spool.reject([(a, "No experiment 'exp_a' on the server")])
    assert spool.pending() == 1
    (refused,) = spool.rejected()
    assert refused["op_id"] == "op000001" and "exp_a" in refused["error"]
    assert spool.summary()["rejected"] == 1
    assert spool.retry_rejected() == 1
    assert spool.rejected() == [] and spool.pending() == 2
    assert b in [s for s, _ in spool.take(10, 1 << 20)]
