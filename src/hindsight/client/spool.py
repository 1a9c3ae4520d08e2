"""The local spool: every record a client logs waits here until the server has it.

One SQLite file (``<home>/spool.db``, WAL mode) that any number of processes on the
machine share. An operation is written here before anything is sent, so a server
outage, a lost reply or a killed process loses nothing: what is left is sent by the
next process that logs through the server, or by ``hindsight sync``. Operations the
server refused (a malformed record, an unknown experiment) move to ``rejected`` with
the server's reason, where ``hindsight sync`` shows them and can send them again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["Spool", "SpooledOp"]

SpooledOp = tuple[int, str]  # (sequence number, the operation as JSON)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ops (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op_id TEXT NOT NULL UNIQUE,
    op TEXT NOT NULL,
    experiment_id TEXT,
    body TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_ops_heartbeat ON ops (op, experiment_id);
CREATE TABLE IF NOT EXISTS rejected (
    seq INTEGER PRIMARY KEY,
    op_id TEXT NOT NULL,
    op TEXT NOT NULL,
    experiment_id TEXT,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    error TEXT NOT NULL,
    rejected_at REAL NOT NULL
);
"""


class Spool:
    """Operations waiting for the server, oldest first; safe across threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- writing -------------------------------------------------------------------------

    def put(self, op: dict[str, Any], *, replace_older: bool = False) -> int:
        """Keep one operation; returns its sequence number.

        ``replace_older`` drops the same experiment's unsent operations of the same
        kind first (a heartbeat only needs its newest one to arrive).
        """
        body = json.dumps(op, separators=(",", ":"), allow_nan=False)
        exp = op.get("experiment_id")
        with self._tx() as conn:
            if replace_older:
                conn.execute(
                    "DELETE FROM ops WHERE op = ? AND experiment_id IS ?", (op["op"], exp)
                )
            cur = conn.execute(
                "INSERT INTO ops (op_id, op, experiment_id, body, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (op["op_id"], op["op"], exp, body, time.time()),
            )
            return int(cur.lastrowid or 0)

    def take(self, max_ops: int, max_bytes: int) -> list[SpooledOp]:
        """The oldest operations, at most ``max_ops`` and about ``max_bytes`` of JSON."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, body FROM ops ORDER BY seq LIMIT ?", (max_ops,)
            ).fetchall()
        out: list[SpooledOp] = []
        size = 0
        for seq, body in rows:
            if out and size + len(body) > max_bytes:
                break
            out.append((int(seq), str(body)))
            size += len(body) + 1
        return out

    def done(self, seqs: Iterable[int]) -> None:
        """Forget operations the server has."""
        wanted = [(s,) for s in seqs]
        if wanted:
            with self._tx() as conn:
                conn.executemany("DELETE FROM ops WHERE seq = ?", wanted)

    def reject(self, rejected: Sequence[tuple[int, str]]) -> None:
        """Move operations the server refused aside, with its reasons."""
        if not rejected:
            return
        now = time.time()
        with self._tx() as conn:
            for seq, error in rejected:
                conn.execute(
                    "INSERT OR REPLACE INTO rejected "
                    "SELECT seq, op_id, op, experiment_id, body, created_at, ?, ? "
                    "FROM ops WHERE seq = ?",
                    (error, now, seq),
                )
                conn.execute("DELETE FROM ops WHERE seq = ?", (seq,))

    def retry_rejected(self) -> int:
        """Queue every rejected operation again (after the cause is fixed); returns how many."""
        with self._tx() as conn:
            n = conn.execute("SELECT COUNT(*) FROM rejected").fetchone()[0]
            conn.execute(
                "INSERT OR IGNORE INTO ops (op_id, op, experiment_id, body, created_at) "
                "SELECT op_id, op, experiment_id, body, created_at FROM rejected ORDER BY seq"
            )
            conn.execute("DELETE FROM rejected")
        return int(n)

    # -- reading -------------------------------------------------------------------------

    def pending(self) -> int:
        """How many operations wait to be sent."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM ops").fetchone()[0])

    def waiting_through(self, seq: int) -> int:
        """How many operations up to sequence number ``seq`` still wait."""
        with self._lock:
            q = "SELECT COUNT(*) FROM ops WHERE seq <= ?"
            return int(self._conn.execute(q, (seq,)).fetchone()[0])

    def rejected(self) -> list[dict[str, Any]]:
        """Refused operations: op, experiment, the server's reason, when."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT op_id, op, experiment_id, error, created_at, rejected_at "
                "FROM rejected ORDER BY seq"
            ).fetchall()
        keys = ("op_id", "op", "experiment_id", "error", "created_at", "rejected_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def summary(self) -> dict[str, Any]:
        """Counts for ``hindsight sync``: waiting, by kind, oldest, rejected."""
        with self._lock:
            by_op = dict(
                self._conn.execute("SELECT op, COUNT(*) FROM ops GROUP BY op ORDER BY op")
            )
            oldest = self._conn.execute("SELECT MIN(created_at) FROM ops").fetchone()[0]
            rejected = self._conn.execute("SELECT COUNT(*) FROM rejected").fetchone()[0]
        return {
            "path": str(self.path),
            "waiting": int(sum(by_op.values())),
            "by_op": {str(k): int(v) for k, v in by_op.items()},
            "oldest_at": oldest,
            "rejected": int(rejected),
        }
