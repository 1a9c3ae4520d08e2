"""The Store: transactional reads and writes of ledger records, SQLite or PostgreSQL.

Records cross this seam as plain dicts keyed by column name; the ledger turns
them into its own record types. Every method runs in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, Table, and_, delete, func, insert, or_, select, update

from hindsight.errors import NotFound
from hindsight.store import schema as t
from hindsight.store.engine import create_store_engine, ensure_schema, redact, translate_errors

__all__ = ["MetricChunk", "Store", "open_store"]

Row = dict[str, Any]
#: (experiment_id, key, steps int64, values float64, times float64)
MetricChunk = tuple[str, str, np.ndarray, np.ndarray, np.ndarray]

_TABLES: dict[str, Table] = {
    "experiment": t.experiments,
    "failure": t.failures,
    "lesson": t.lessons,
    "postmortem": t.postmortems,
}


def open_store(url: str) -> Store:
    """Open (creating or migrating as needed) the store at a SQLAlchemy URL."""
    engine = create_store_engine(url)
    migrated_from = ensure_schema(engine, url)
    return Store(engine, url, migrated_from=migrated_from)


class Store:
    """Transactional access to every persisted record."""

    def __init__(self, engine: Engine, url: str, *, migrated_from: str | None = None) -> None:
        self.engine = engine
        self.url = url
        self.migrated_from = migrated_from

    def __repr__(self) -> str:
        return f"Store({redact(self.url)!r})"

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE on SQLite)."""
        with (
            translate_errors(self.url),
            self.engine.connect().execution_options(hindsight_write=True) as conn,
            conn.begin(),
        ):
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One read transaction."""
        with translate_errors(self.url), self.engine.connect() as conn, conn.begin():
            yield conn

    # -- generic records --------------------------------------------------------------

    def insert(self, kind: str, row: Mapping[str, Any]) -> None:
        """Insert one record of a kind (experiment, failure, lesson, postmortem)."""
        with self.write() as conn:
            conn.execute(insert(_TABLES[kind]), [dict(row)])

    def insert_and_update(
        self, kind: str, row: Mapping[str, Any], other: str, other_id: str, values: Mapping[str, Any]
    ) -> None:
        """Insert one record and update another in the same transaction."""
        table = _TABLES[other]
        with self.write() as conn:
            conn.execute(insert(_TABLES[kind]), [dict(row)])
            conn.execute(update(table).where(table.c.id == other_id).values(**values))

    def update(self, kind: str, record_id: str, **values: Any) -> None:
        """Update columns of one record; raises NotFound if it does not exist."""
        table = _TABLES[kind]
        with self.write() as conn:
            res = conn.execute(update(table).where(table.c.id == record_id).values(**values))
            if res.rowcount == 0:
                raise NotFound(f"No {kind} with id {record_id!r}.")

    def get(self, kind: str, record_id: str) -> Row:
        """One record by id; raises NotFound with advice."""
        table = _TABLES[kind]
        with self.read() as conn:
            row = conn.execute(select(table).where(table.c.id == record_id)).mappings().first()
        if row is None:
            raise NotFound(
                f"No {kind} with id {record_id!r} in {redact(self.url)}. "
                f"List them with `hindsight ls` or check HINDSIGHT_STORE."
            )
        return dict(row)

    def find(self, kind: str, record_id_prefix: str) -> list[str]:
        """Ids of a kind that start with a prefix (for short ids typed by people)."""
        table = _TABLES[kind]
        with self.read() as conn:
            ids = conn.execute(
                select(table.c.id).where(table.c.id.startswith(record_id_prefix)).limit(5)
            )
            return [str(i) for i in ids.scalars()]

    # -- experiments -----------------------------------------------------------------

    def list_experiments(
        self,
        *,
        project: str | None = None,
        since: float | None = None,
        statuses: Sequence[str] | None = None,
        outcomes: Sequence[str] | None = None,
        failed: bool = False,
        ids: Sequence[str] | None = None,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[Row]:
        """Experiments filtered by project, start time, status and outcome."""
        e = t.experiments
        q = select(e)
        if project is not None:
            q = q.where(e.c.project == project)
        if since is not None:
            q = q.where(e.c.started_at >= since)
        if statuses:
            q = q.where(e.c.status.in_(list(statuses)))
        if outcomes:
            q = q.where(e.c.outcome.in_(list(outcomes)))
        if ids is not None:
            q = q.where(e.c.id.in_(list(ids)))
        if failed:
            q = q.where(or_(e.c.status.in_(["crashed", "killed"]), e.c.outcome == "failure"))
        q = q.order_by(e.c.started_at.desc() if newest_first else e.c.started_at.asc())
        if limit is not None:
            q = q.limit(limit)
        with self.read() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def heartbeat(self, experiment_id: str, at: float) -> None:
        """Record that a running experiment is alive."""
        e = t.experiments
        with self.write() as conn:
            conn.execute(
                update(e)
                .where(and_(e.c.id == experiment_id, e.c.status == "running"))
                .values(heartbeat_at=at)
            )

    def stale_running(self, before: float) -> list[Row]:
        """Running experiments whose last heartbeat is older than ``before``."""
        e = t.experiments
        q = select(e).where(
            and_(e.c.status == "running", func.coalesce(e.c.heartbeat_at, e.c.started_at) < before)
        )
        with self.read() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def mark_crashed(self, experiment_id: str, values: Mapping[str, Any]) -> bool:
        """Mark one running experiment crashed; False if another reader got there first."""
        e = t.experiments
        with self.write() as conn:
            res = conn.execute(
                update(e)
                .where(and_(e.c.id == experiment_id, e.c.status == "running"))
                .values(**values)
            )
            return bool(res.rowcount)

    def add_parent(self, experiment_id: str, parent_id: str) -> None:
        """Record that an experiment builds on another."""
        self.get("experiment", parent_id)
        p = t.experiment_parents
        with self.write() as conn:
            exists = conn.execute(
                select(p.c.parent_id).where(
                    and_(p.c.experiment_id == experiment_id, p.c.parent_id == parent_id)
                )
            ).first()
            if exists is None:
                conn.execute(insert(p), [{"experiment_id": experiment_id, "parent_id": parent_id}])

    def parents(self, experiment_id: str) -> list[str]:
        """Ids of the experiments this one builds on."""
        p = t.experiment_parents
        with self.read() as conn:
            q = select(p.c.parent_id).where(p.c.experiment_id == experiment_id)
            return [str(x) for x in conn.execute(q).scalars()]

    def children(self, experiment_ids: Sequence[str]) -> list[tuple[str, str]]:
        """(parent, child) pairs for experiments that build on the given ones."""
        p = t.experiment_parents
        with self.read() as conn:
            q = select(p.c.parent_id, p.c.experiment_id).where(
                p.c.parent_id.in_(list(experiment_ids))
            )
            return [(str(a), str(b)) for a, b in conn.execute(q)]

    def all_parent_links(self) -> list[tuple[str, str]]:
        """Every (child, parent) pair."""
        p = t.experiment_parents
        with self.read() as conn:
            return [(str(a), str(b)) for a, b in conn.execute(select(p.c.experiment_id, p.c.parent_id))]

    def add_note(self, experiment_id: str, kind: str, text: str, at: float) -> None:
        """A next step (or other note) on an experiment."""
        with self.write() as conn:
            conn.execute(
                insert(t.notes),
                [{"experiment_id": experiment_id, "kind": kind, "text": text, "created_at": at}],
            )

    def notes(self, experiment_id: str) -> list[Row]:
        """Notes of an experiment, oldest first."""
        n = t.notes
        q = select(n).where(n.c.experiment_id == experiment_id).order_by(n.c.id)
        with self.read() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def add_artifact(self, row: Mapping[str, Any]) -> None:
        """Record an artifact's path, size and checksum."""
        with self.write() as conn:
            conn.execute(insert(t.artifacts), [dict(row)])

    def artifacts(self, experiment_id: str) -> list[Row]:
        """Artifacts of an experiment."""
        a = t.artifacts
        q = select(a).where(a.c.experiment_id == experiment_id).order_by(a.c.id)
        with self.read() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    # -- metrics ---------------------------------------------------------------------

    def append_metrics(
        self, chunks: Iterable[MetricChunk], summary: tuple[str, Mapping[str, Any]] | None = None
    ) -> None:
        """Write metric chunks (and optionally an experiment's summary) in one transaction."""
        rows = [
            {
                "experiment_id": exp_id,
                "key": key,
                "n": len(steps),
                "steps": np.ascontiguousarray(steps, dtype="<i8").tobytes(),
                "vals": np.ascontiguousarray(vals, dtype="<f8").tobytes(),
                "times": np.ascontiguousarray(times, dtype="<f8").tobytes(),
            }
            for exp_id, key, steps, vals, times in chunks
        ]
        if not rows and summary is None:
            return
        with self.write() as conn:
            if rows:
                conn.execute(insert(t.metric_chunks), rows)
            if summary is not None:
                e = t.experiments
                conn.execute(
                    update(e).where(e.c.id == summary[0]).values(summary=dict(summary[1]))
                )

    def metric_series(
        self, experiment_id: str, key: str | None = None
    ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Step series of an experiment: key -> (steps, values, times), in write order."""
        m = t.metric_chunks
        q = select(m.c.key, m.c.steps, m.c.vals, m.c.times).where(m.c.experiment_id == experiment_id)
        if key is not None:
            q = q.where(m.c.key == key)
        parts: dict[str, list[tuple[bytes, bytes, bytes]]] = {}
        with self.read() as conn:
            for k, s, v, tm in conn.execute(q.order_by(m.c.id)):
                parts.setdefault(str(k), []).append((bytes(s), bytes(v), bytes(tm)))
        out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for k, chunks in parts.items():
            out[k] = (
                np.frombuffer(b"".join(c[0] for c in chunks), dtype="<i8"),
                np.frombuffer(b"".join(c[1] for c in chunks), dtype="<f8"),
                np.frombuffer(b"".join(c[2] for c in chunks), dtype="<f8"),
            )
        return out

    # -- failures --------------------------------------------------------------------

    def list_failures(
        self,
        *,
        project: str | None = None,
        since: float | None = None,
        experiment_id: str | None = None,
        fingerprint: str | None = None,
        ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Row]:
        """Failures, newest first."""
        f = t.failures
        q = select(f)
        if project is not None:
            q = q.where(f.c.project == project)
        if since is not None:
            q = q.where(f.c.created_at >= since)
        if experiment_id is not None:
            q = q.where(f.c.experiment_id == experiment_id)
        if fingerprint is not None:
            q = q.where(f.c.fingerprint == fingerprint)
        if ids is not None:
            q = q.where(f.c.id.in_(list(ids)))
        q = q.order_by(f.c.created_at.desc())
        if limit is not None:
            q = q.limit(limit)
        with self.read() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def failure_signatures(self, since: float | None) -> list[tuple[str, str, str, str, float]]:
        """(id, fingerprint, category, tokens, created_at) of failures, for the similarity index."""
        f = t.failures
        q = select(f.c.id, f.c.fingerprint, f.c.category, f.c.tokens, f.c.created_at)
        if since is not None:
            q = q.where(f.c.created_at >= since)
        with self.read() as conn:
            return [(str(a), str(b), str(c), str(d), float(e)) for a, b, c, d, e in conn.execute(q)]

    # -- lessons ---------------------------------------------------------------------

    def link_lesson(self, lesson_id: str, target_id: str, relation: str, at: float) -> None:
        """Link a lesson to where it came from or to an experiment that applied it."""
        ll = t.lesson_links
        with self.write() as conn:
            exists = conn.execute(
                select(ll.c.lesson_id).where(
                    and_(
                        ll.c.lesson_id == lesson_id,
                        ll.c.target_id == target_id,
                        ll.c.relation == relation,
                    )
                )
            ).first()
            if exists is None:
                conn.execute(
                    insert(ll),
                    [
                        {
                            "lesson_id": lesson_id,
                            "target_id": target_id,
                            "relation": relation,
                            "created_at": at,
                        }
                    ],
                )

    def lesson_links(
        self, *, lesson_ids: Sequence[str] | None = None, target_ids: Sequence[str] | None = None
    ) -> list[Row]:
        """Links by lesson or by target."""
        ll = t.lesson_links
        q = select(ll)
        if lesson_ids is not None:
            q = q.where(ll.c.lesson_id.in_(list(lesson_ids)))
        if target_ids is not None:
            q = q.where(ll.c.target_id.in_(list(target_ids)))
        with self.read() as conn:
            return [dict(r) for r in conn.execute(q.order_by(ll.c.created_at)).mappings()]

    def list_lessons(
        self,
        *,
        project: str | None = None,
        ids: Sequence[str] | None = None,
        query: str | None = None,
        limit: int | None = None,
    ) -> list[Row]:
        """Lessons, newest first; ``query`` matches words in the text or tags."""
        les = t.lessons
        q = select(les)
        if project is not None:
            q = q.where(les.c.project == project)
        if ids is not None:
            q = q.where(les.c.id.in_(list(ids)))
        if query:
            for word in query.lower().split():
                q = q.where(func.lower(les.c.text).contains(word, autoescape=True))
        q = q.order_by(les.c.created_at.desc())
        if limit is not None:
            q = q.limit(limit)
        with self.read() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    # -- post-mortems ----------------------------------------------------------------

    def list_postmortems(
        self, *, project: str | None = None, failure_id: str | None = None
    ) -> list[Row]:
        """Post-mortems, newest first."""
        pm = t.postmortems
        q = select(pm)
        if project is not None:
            q = q.where(pm.c.project == project)
        if failure_id is not None:
            q = q.where(pm.c.failure_id == failure_id)
        with self.read() as conn:
            return [dict(r) for r in conn.execute(q.order_by(pm.c.created_at.desc())).mappings()]

    # -- maintenance -----------------------------------------------------------------

    def delete_experiment(self, experiment_id: str) -> None:
        """Delete an experiment and everything hanging off it (tests and imports)."""
        with self.write() as conn:
            for table in (t.metric_chunks, t.notes, t.artifacts, t.experiment_parents):
                conn.execute(delete(table).where(table.c.experiment_id == experiment_id))
            conn.execute(delete(t.experiments).where(t.experiments.c.id == experiment_id))
