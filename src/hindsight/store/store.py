"""The Store: transactional reads and writes of ledger records, SQLite or PostgreSQL.

Records cross this seam as plain dicts keyed by column name; the ledger turns
them into its own record types. Every method runs in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    ColumnElement,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy import text as sql_text
from sqlalchemy.sql import FromClause

from hindsight.store import schema as t
from hindsight.store.accounts import AccountsMixin
from hindsight.store.base import Row, StoreBase, _dicts
from hindsight.store.breakers import BreakersMixin
from hindsight.store.drift_reports import DriftReportsMixin
from hindsight.store.engine import create_store_engine, ensure_schema
from hindsight.store.ingest import IngestMixin
from hindsight.store.listing import ListingMixin

__all__ = ["MetricChunk", "Store", "open_store"]

#: (experiment_id, key, steps int64, values float64, times float64)
MetricChunk = tuple[str, str, np.ndarray, np.ndarray, np.ndarray]

# Rows re-read below the SQLite rowid cursor, in case the newest rowids were deleted
# and handed out again.
_ROWID_OVERLAP = 16


def _group(
    f: FromClause,
    fingerprint: Any,
    before: float,
    exclude_id: str | None,
    exclude_experiment: str | None,
    limit: int,
) -> ColumnElement[bool]:
    """Which rows of ``f`` (the failures table or an alias) are a group: the earlier
    failures among a fingerprint's newest ``limit``. The newest ``limit`` are those
    from the ``limit``-th newest on, one step along the covering index, so every
    query on a group is a range scan of that index."""
    t_ = t.failures
    floor = (
        select(t_.c.created_at)
        .where(t_.c.fingerprint == fingerprint)
        .order_by(t_.c.created_at.desc())
        .limit(1)
        .offset(limit - 1)
        .scalar_subquery()
    )
    cond = [
        f.c.fingerprint == fingerprint,
        f.c.created_at <= before,
        f.c.created_at >= func.coalesce(floor, float("-inf")),
    ]
    if exclude_id is not None:
        cond.append(f.c.id != exclude_id)
    if exclude_experiment is not None:
        cond.append(or_(f.c.experiment_id.is_(None), f.c.experiment_id != exclude_experiment))
    return and_(*cond)


def open_store(url: str) -> Store:
    """Open (creating or migrating as needed) the store at a SQLAlchemy URL."""
    engine = create_store_engine(url)
    migrated_from = ensure_schema(engine, url)
    return Store(engine, url, migrated_from=migrated_from)


class Store(
    AccountsMixin, ListingMixin, DriftReportsMixin, BreakersMixin, IngestMixin, StoreBase
):
    """Transactional access to every persisted record."""

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
        columns: Sequence[str] | None = None,
    ) -> list[Row]:
        """Experiments filtered by project, start time, status and outcome.

        ``columns`` names the columns to read (all by default): reading a few plain
        columns skips decoding every row's JSON.
        """
        e = t.experiments
        q = select(*(e.c[c] for c in columns)) if columns else select(e)
        if project is not None:
            q = q.where(e.c.project == project)
        if since is not None:
            q = q.where(e.c.started_at >= since)
        if statuses:
            q = q.where(e.c.status.in_(list(statuses)))
        if outcomes:
            q = q.where(e.c.outcome.in_(list(outcomes)))
        if ids is not None:
            q = q.where(self._in(e.c.id, ids))
        if failed:
            q = q.where(or_(e.c.status.in_(["crashed", "killed"]), e.c.outcome == "failure"))
        q = q.order_by(e.c.started_at.desc() if newest_first else e.c.started_at.asc())
        if limit is not None:
            q = q.limit(limit)
        with self.read() as conn:
            return _dicts(conn.execute(q))

    def successes_after(
        self, since: float, *, project: str, name: str, limit: int | None = None
    ) -> list[Row]:
        """Successful experiments of a project and name started at or after ``since``:
        id, project, name and started_at, oldest first (candidate fixes of a failed run).
        A range of the ``(outcome, project, name, started_at)`` index."""
        e = t.experiments
        q = (
            select(e.c.id, e.c.project, e.c.name, e.c.started_at)
            .where(
                e.c.outcome == "success",
                e.c.project == project,
                e.c.name == name,
                e.c.started_at >= since,
            )
            .order_by(e.c.started_at.asc())
        )
        if limit is not None:
            q = q.limit(limit)
        with self.read() as conn:
            return _dicts(conn.execute(q))

    def latest_success_starts(
        self, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], float]:
        """(project, name) -> start of the latest successful experiment of that name.

        One probe of the ``(outcome, project, name, started_at)`` index per pair, in one
        statement (plain SQL: a VALUES list that SQLAlchemy would recompile every call).
        """
        wanted = sorted(set(pairs))
        if not wanted:
            return {}
        rows = ", ".join(f"(:p{i}, :n{i})" for i in range(len(wanted)))
        sql = sql_text(
            f"WITH pairs (project, name) AS (VALUES {rows}) "
            "SELECT pairs.project, pairs.name, (SELECT max(e.started_at) FROM experiments e "
            "WHERE e.outcome = 'success' AND e.project = pairs.project "
            "AND e.name = pairs.name) FROM pairs"
        )
        params = {
            f"{k}{i}": v for i, pn in enumerate(wanted) for k, v in zip("pn", pn, strict=True)
        }
        with self.read() as conn:
            found = conn.execute(sql, params)
            return {(str(p), str(n)): float(m) for p, n, m in found if m is not None}

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
            return _dicts(conn.execute(q))

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
                self._in(p.c.parent_id, experiment_ids)
            )
            return [(str(a), str(b)) for a, b in conn.execute(q)]

    def all_parent_links(self) -> list[tuple[str, str]]:
        """Every (child, parent) pair."""
        p = t.experiment_parents
        with self.read() as conn:
            return [
                (str(a), str(b)) for a, b in conn.execute(select(p.c.experiment_id, p.c.parent_id))
            ]

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
            return _dicts(conn.execute(q))

    def add_artifact(self, row: Mapping[str, Any]) -> None:
        """Record an artifact's path, size and checksum."""
        with self.write() as conn:
            conn.execute(insert(t.artifacts), [dict(row)])

    def artifacts(self, experiment_id: str) -> list[Row]:
        """Artifacts of an experiment."""
        a = t.artifacts
        q = select(a).where(a.c.experiment_id == experiment_id).order_by(a.c.id)
        with self.read() as conn:
            return _dicts(conn.execute(q))

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
                conn.execute(update(e).where(e.c.id == summary[0]).values(summary=dict(summary[1])))

    def metric_series(
        self, experiment_id: str, key: str | None = None
    ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Step series of an experiment: key -> (steps, values, times), in write order."""
        m = t.metric_chunks
        q = select(m.c.key, m.c.steps, m.c.vals, m.c.times).where(
            m.c.experiment_id == experiment_id
        )
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
            q = q.where(self._in(f.c.id, ids))
        q = q.order_by(f.c.created_at.desc())
        if limit is not None:
            q = q.limit(limit)
        with self.read() as conn:
            return _dicts(conn.execute(q))

    # A group is the newest ``limit`` failures of a fingerprint, then those recorded
    # no later than ``before`` that are not ``exclude_id`` nor of ``exclude_experiment``
    # (the earlier occurrences of a failure). Groups are summarised in SQL, on the
    # covering fingerprint index, so a failure seen a thousand times is not a thousand
    # rows in Python.

    def failure_group_stats(
        self,
        fingerprints: Sequence[str],
        *,
        before: float,
        exclude_id: str | None = None,
        exclude_experiment: str | None = None,
        limit: int = 1000,
    ) -> dict[str, tuple[int, str]]:
        """fingerprint -> (failures in its group, id of the newest); empty groups left out."""
        f = t.failures
        cond = _group(f, bindparam("fp"), before, exclude_id, exclude_experiment, limit)
        if self.backend == "sqlite":
            # SQLite takes a bare column of a max() query from the row holding the max:
            # the newest failure and the count in one pass over the group.
            q = select(f.c.id, func.count(), func.max(f.c.created_at)).where(cond)
        else:
            fa = t.failures.alias("g")
            again = _group(fa, bindparam("fp"), before, exclude_id, exclude_experiment, limit)
            size = select(func.count()).select_from(fa).where(again).scalar_subquery()
            q = select(f.c.id, size).where(cond).order_by(f.c.created_at.desc()).limit(1)
        out: dict[str, tuple[int, str]] = {}
        with self.read() as conn:
            for fp in dict.fromkeys(fingerprints):
                row = conn.execute(q, {"fp": fp}).first()
                if row is not None and row[1]:
                    out[fp] = (int(row[1]), str(row[0]))
        return out

    def failure_group_lessons(
        self,
        fingerprints: Sequence[str],
        *,
        before: float,
        exclude_id: str | None = None,
        exclude_experiment: str | None = None,
        limit: int = 1000,
    ) -> dict[str, set[str]]:
        """fingerprint -> ids of the lessons whose source is a failure of its group or
        the experiment of one."""
        f = t.failures
        cond = _group(f, bindparam("fp"), before, exclude_id, exclude_experiment, limit)
        ll = t.lesson_links
        q = (
            select(ll.c.lesson_id)
            .select_from(
                f.join(ll, or_(ll.c.target_id == f.c.id, ll.c.target_id == f.c.experiment_id))
            )
            .where(cond, ll.c.relation == "source")
            .distinct()
        )
        with self.read() as conn:
            return {
                fp: {str(x) for x in conn.execute(q, {"fp": fp}).scalars()}
                for fp in dict.fromkeys(fingerprints)
            }

    def failure_group_runs(
        self,
        fingerprint: str,
        *,
        before: float,
        exclude_id: str | None = None,
        exclude_experiment: str | None = None,
        limit: int = 1000,
        offset: int = 0,
        count: int | None = None,
    ) -> list[tuple[str, float]]:
        """(experiment id, created_at) of the group's failures that belong to an
        experiment, newest first; ``count`` of them from ``offset``."""
        f = t.failures
        cond = _group(f, fingerprint, before, exclude_id, exclude_experiment, limit)
        q = (
            select(f.c.experiment_id, f.c.created_at)
            .where(cond, f.c.experiment_id.is_not(None))
            .order_by(f.c.created_at.desc())
            .offset(offset)
        )
        if count is not None:
            q = q.limit(count)
        with self.read() as conn:
            return [(str(e), float(c)) for e, c in conn.execute(q)]

    def failure_signatures(self, since: float | None) -> list[tuple[str, str, str, str, float]]:
        """(id, fingerprint, category, tokens, created_at) of failures, for the similarity index."""
        f = t.failures
        q = select(f.c.id, f.c.fingerprint, f.c.category, f.c.tokens, f.c.created_at)
        if since is not None:
            q = q.where(f.c.created_at >= since)
        with self.read() as conn:
            return [(str(a), str(b), str(c), str(d), float(e)) for a, b, c, d, e in conn.execute(q)]

    def failure_signatures_after(
        self, cursor: float | None
    ) -> tuple[list[tuple[str, str, str, str, float]], float | None]:
        """Signatures of failures added since ``cursor`` (None: all), and the next cursor.

        On SQLite the cursor is the table's rowid: one writer at a time means rowids grow
        in commit order, so a failure committed late with an older ``created_at`` is not
        missed, and the look-up is a range on the primary b-tree. Elsewhere it is
        ``created_at`` with a second of overlap (timestamps of other processes can tie).
        A few rows are read again either way; callers drop the ids they already have.
        """
        f = t.failures
        cols = (f.c.id, f.c.fingerprint, f.c.category, f.c.tokens, f.c.created_at)
        if self.backend == "sqlite":
            rowid: ColumnElement[Any] = literal_column("failures.rowid")
            q = select(rowid, *cols)
            if cursor is not None:
                q = q.where(rowid > int(cursor) - _ROWID_OVERLAP)
        else:
            q = select(f.c.created_at, *cols)
            if cursor is not None:
                q = q.where(f.c.created_at >= cursor - 1.0)
        with self.read() as conn:
            found = conn.execute(q).all()
        rows = [(str(a), str(b), str(c), str(d), float(e)) for _, a, b, c, d, e in found]
        if found:
            top = max(float(r[0]) for r in found)
            cursor = top if cursor is None else max(cursor, top)
        return rows, cursor

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
            q = q.where(self._in(ll.c.lesson_id, lesson_ids))
        if target_ids is not None:
            q = q.where(self._in(ll.c.target_id, target_ids))
        with self.read() as conn:
            return _dicts(conn.execute(q.order_by(ll.c.created_at)))

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
            q = q.where(self._in(les.c.id, ids))
        if query:
            for word in query.lower().split():
                q = q.where(func.lower(les.c.text).contains(word, autoescape=True))
        q = q.order_by(les.c.created_at.desc())
        if limit is not None:
            q = q.limit(limit)
        with self.read() as conn:
            return _dicts(conn.execute(q))

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
            return _dicts(conn.execute(q.order_by(pm.c.created_at.desc())))

    # -- dataset profiles --------------------------------------------------------------

    def save_profile(self, row: Mapping[str, Any]) -> None:
        """Store one profile version (a row of the ``profiles`` table)."""
        with self.write() as conn:
            conn.execute(insert(t.profiles).values(**row))

    def load_profile(self, project: str, name: str) -> Row | None:
        """The newest stored profile called ``name`` in ``project``, or ``None``."""
        p = t.profiles
        q = (
            select(p)
            .where(p.c.project == project, p.c.name == name)
            .order_by(p.c.created_at.desc(), p.c.id.desc())
            .limit(1)
        )
        with self.read() as conn:
            rows = _dicts(conn.execute(q))
        return rows[0] if rows else None

    def list_profiles(self, project: str | None = None) -> list[Row]:
        """Every stored profile version without its data, newest first."""
        p = t.profiles
        q = select(*(c for c in p.c if c.name != "data"))
        if project is not None:
            q = q.where(p.c.project == project)
        with self.read() as conn:
            return _dicts(conn.execute(q.order_by(p.c.created_at.desc(), p.c.id.desc())))

    # -- prediction log ----------------------------------------------------------------

    def append_predictions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert a batch of ``predictions`` rows: one multi-row insert, one transaction.

        The hot write of a served model: the JSON columns are serialised here, once per
        value, and the rows go to the driver's ``executemany`` as tuples, without
        SQLAlchemy's per-value type processing (about half the cost of a batch).
        """
        if not rows:
            return
        cols = [c.name for c in t.predictions.columns]
        json_cols = {c.name for c in t.predictions.columns if isinstance(c.type, JSON)}
        dumps = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
        params = [
            tuple(
                (None if r.get(c) is None else dumps(r[c])) if c in json_cols else r.get(c)
                for c in cols
            )
            for r in rows
        ]
        with self.write() as conn:
            conn.exec_driver_sql(self._predictions_insert(cols, json_cols), params)

    def _predictions_insert(self, cols: list[str], json_cols: set[str]) -> str:
        if self.backend == "postgresql":  # a text parameter is not json without a cast
            marks = ", ".join("%s::json" if c in json_cols else "%s" for c in cols)
        else:  # SQLite keeps JSON as text
            marks = ", ".join("?" for _ in cols)
        return f"INSERT INTO predictions ({', '.join(cols)}) VALUES ({marks})"

    def list_predictions(
        self,
        *,
        service: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[Row]:
        """Logged predictions, oldest first; ``since`` inclusive, ``until`` exclusive."""
        p = t.predictions
        q = select(p)
        if service is not None:
            q = q.where(p.c.service == service)
        if since is not None:
            q = q.where(p.c.created_at >= since)
        if until is not None:
            q = q.where(p.c.created_at < until)
        q = q.order_by(p.c.created_at, p.c.id)
        if limit is not None:
            q = q.limit(limit)
        with self.read() as conn:
            return _dicts(conn.execute(q))

    def record_outcomes(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert a batch of ``outcomes`` rows (labels, rewards) in one transaction.

        The prediction need not be stored yet: outcomes are joined at read time.
        """
        if not rows:
            return
        with self.write() as conn:
            conn.execute(insert(t.outcomes), [dict(r) for r in rows])

    def predictions_with_outcomes(
        self,
        *,
        service: str | None = None,
        since: float | None = None,
        include_unlabelled: bool = False,
    ) -> list[Row]:
        """Predictions joined with their outcomes, one row per (prediction, outcome).

        Each row is the prediction's columns plus ``outcome_id``, ``label``, ``reward``
        and ``outcome_at``; oldest prediction first, then oldest outcome. With
        ``include_unlabelled`` predictions without an outcome are included (outer
        join, the outcome columns ``None``).
        """
        p, o = t.predictions, t.outcomes
        on = o.c.prediction_id == p.c.id
        q = select(
            p,
            o.c.id.label("outcome_id"),
            o.c.label,
            o.c.reward,
            o.c.created_at.label("outcome_at"),
        ).select_from(p.outerjoin(o, on) if include_unlabelled else p.join(o, on))
        if service is not None:
            q = q.where(p.c.service == service)
        if since is not None:
            q = q.where(p.c.created_at >= since)
        q = q.order_by(p.c.created_at, p.c.id, o.c.created_at, o.c.id)
        with self.read() as conn:
            return _dicts(conn.execute(q))

    # -- review queue ----------------------------------------------------------------

    def add_review_item(self, row: Mapping[str, Any]) -> None:
        """Insert one ``review_items`` row."""
        with self.write() as conn:
            conn.execute(insert(t.review_items), [dict(row)])

    def update_review_item(
        self,
        item_id: str,
        values: Mapping[str, Any],
        *,
        expect_status: str | Sequence[str] | None = None,
    ) -> bool:
        """Update a review item if it exists (and its status is ``expect_status``).

        The check and the update are one statement, so two reviewers claiming the
        same item cannot both succeed. Returns whether a row was updated.
        """
        r = t.review_items
        q = update(r).where(r.c.id == item_id)
        if isinstance(expect_status, str):
            q = q.where(r.c.status == expect_status)
        elif expect_status is not None:
            q = q.where(r.c.status.in_(list(expect_status)))
        with self.write() as conn:
            return bool(conn.execute(q.values(**values)).rowcount == 1)

    def list_review_items(
        self,
        *,
        service: str | None = None,
        status: str | Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Row]:
        """Review items, highest priority first, then oldest first."""
        r = t.review_items
        q = select(r).where(*self._review_filter(service, status))
        q = q.order_by(r.c.priority.desc(), r.c.created_at, r.c.id)
        if limit is not None:
            q = q.limit(limit)
        with self.read() as conn:
            return _dicts(conn.execute(q))

    def count_review_items(
        self,
        *,
        service: str | None = None,
        status: str | Sequence[str] | None = None,
        due_before: float | None = None,
    ) -> int:
        """How many review items match (e.g. the pending backlog of a service, or the
        open items past their due time with ``due_before=now``)."""
        r = t.review_items
        q = select(func.count()).select_from(r).where(*self._review_filter(service, status))
        if due_before is not None:
            q = q.where(r.c.due_at < due_before)
        with self.read() as conn:
            return int(conn.execute(q).scalar_one())

    def oldest_review_item(self, *, service: str, status: str = "pending") -> Row | None:
        """The oldest item of a status (for the review queue's SLA check), or None."""
        r = t.review_items
        q = select(r).where(*self._review_filter(service, status))
        q = q.order_by(r.c.created_at, r.c.id).limit(1)
        with self.read() as conn:
            rows = _dicts(conn.execute(q))
        return rows[0] if rows else None

    # -- rollouts ----------------------------------------------------------------------

    def list_rollouts(
        self, *, service: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[Row]:
        """Rollouts, newest first."""
        r = t.rollouts
        q = select(r)
        if service is not None:
            q = q.where(r.c.service == service)
        if status is not None:
            q = q.where(r.c.status == status)
        q = q.order_by(r.c.created_at.desc(), r.c.id.desc())
        if limit is not None:
            q = q.limit(limit)
        with self.read() as conn:
            return _dicts(conn.execute(q))

    @staticmethod
    def _review_filter(
        service: str | None, status: str | Sequence[str] | None
    ) -> list[ColumnElement[bool]]:
        r = t.review_items
        cond: list[ColumnElement[bool]] = []
        if service is not None:
            cond.append(r.c.service == service)
        if isinstance(status, str):
            cond.append(r.c.status == status)
        elif status is not None:
            cond.append(r.c.status.in_(list(status)))
        return cond

    # -- maintenance -----------------------------------------------------------------

    def delete_experiment(self, experiment_id: str) -> None:
        """Delete an experiment and everything hanging off it (tests and imports)."""
        with self.write() as conn:
            for table in (t.metric_chunks, t.notes, t.artifacts, t.experiment_parents):
                conn.execute(delete(table).where(table.c.experiment_id == experiment_id))
            conn.execute(delete(t.experiments).where(t.experiments.c.id == experiment_id))
