"""Where a scheduled monitor's rows come from: Parquet files, the serving prediction log,
or a table in the store's database.

A source ``pull(monitor, cursor, now) -> (rows_logged, new_cursor)`` logs what arrived
since its cursor into the monitor's windows and returns the new cursor, a JSON-safe
value kept in the monitor's state. Every batch it logs records the cursor in the same
transaction as its rows, so a pass that dies half way neither loses nor repeats a row.
Batches logged in Python (:meth:`Monitor.log`) need no source.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Connection, and_, or_, select, update

from hindsight._plain import plain
from hindsight.errors import ConfigError, DataError
from hindsight.monitor.core import Monitor
from hindsight.store import schema as t
from hindsight.store.schema import SCHEMA_VERSION

__all__ = [
    "ParquetSource",
    "PredictionLogSource",
    "Source",
    "SqlTableSource",
    "source_from_dict",
]


class Source(Protocol):
    def pull(
        self, monitor: Monitor, cursor: Any, now: float
    ) -> tuple[int, Any]: ...  # pragma: no cover - a protocol

    def to_dict(self) -> dict[str, Any]: ...  # pragma: no cover - a protocol


@dataclass(frozen=True)
class ParquetSource:
    """Parquet files matching ``path`` (a glob); each file is logged once.

    A file is remembered by its path, size and modification time: a file rewritten in
    place is logged again, so write new files rather than appending to old ones.
    ``timestamps`` names the time column; ``predictions`` and ``confidence`` name the
    columns logged as the monitor's ``prediction`` and ``confidence``.
    """

    path: str
    timestamps: str = "timestamp"
    predictions: str | None = None
    confidence: str | None = None

    def pull(self, monitor: Monitor, cursor: Any, now: float) -> tuple[int, Any]:
        seen: dict[str, list[float]] = dict(cursor or {})
        rows = 0
        for file in sorted(glob.glob(self.path)):
            st = os.stat(file)
            mark = [float(st.st_size), float(st.st_mtime)]
            if seen.get(file) == mark:
                continue
            try:
                table = pq.read_table(file)
            except (OSError, pa.ArrowInvalid) as exc:
                raise DataError(f"Could not read {file} as Parquet: {exc}") from exc
            seen[file] = mark
            rows += _log_table(
                monitor,
                table,
                self.timestamps,
                self.predictions,
                self.confidence,
                where=file,
                also=_committing(monitor, dict(seen)),
            )
        return rows, seen

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "parquet",
            "path": self.path,
            "timestamps": self.timestamps,
            "predictions": self.predictions,
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class SqlTableSource:
    """Rows of a table in the store's own database (say one a serving stack writes to).

    ``timestamps`` names a numeric column of epoch seconds; rows are read in time order
    up to ``lag_s`` seconds before now, in batches, and the cursor is the last time read,
    so the table should be append-only with times that only grow (a row written later
    with an older time than the cursor is not read). ``predictions`` and ``confidence``
    name the columns logged as the monitor's ``prediction`` and ``confidence``.
    """

    table: str
    timestamps: str = "timestamp"
    predictions: str | None = None
    confidence: str | None = None
    schema: str | None = None
    lag_s: float = 5.0
    batch_rows: int = 200_000

    def pull(self, monitor: Monitor, cursor: Any, now: float) -> tuple[int, Any]:
        from sqlalchemy import MetaData, Table
        from sqlalchemy.exc import NoSuchTableError

        store = monitor.ledger.store
        try:
            with store.read() as conn:
                table = Table(self.table, MetaData(), schema=self.schema, autoload_with=conn)
        except NoSuchTableError:
            raise DataError(
                f"No table {self.table!r} in the store's database; check the source's table "
                "(and schema)."
            ) from None
        if self.timestamps not in table.c:
            raise DataError(
                f"Table {self.table!r} has no column {self.timestamps!r} (the source's "
                f"timestamps=). Columns: {', '.join(table.c.keys())}."
            )
        ts = table.c[self.timestamps]
        after = None if cursor is None else float(cursor)
        until = now - self.lag_s
        total = 0
        while True:
            query = select(table).where(ts <= until)
            if after is not None:
                query = query.where(ts > after)
            query = query.order_by(ts).limit(self.batch_rows)
            with store.read() as conn:
                result = conn.execute(query)
                names = list(result.keys())
                rows = result.all()
            if not rows:
                return total, after
            # Rows sharing the batch's last time may continue past the limit: read them
            # up to (not including) that time now, and the rest on the next batch.
            last = float(rows[-1][names.index(self.timestamps)])
            if len(rows) == self.batch_rows:
                keep = [r for r in rows if float(r[names.index(self.timestamps)]) < last]
                if keep:
                    rows = keep
                    last = max(float(r[names.index(self.timestamps)]) for r in keep)
            arrow = pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})
            after = last
            total += _log_table(
                monitor,
                arrow,
                self.timestamps,
                self.predictions,
                self.confidence,
                where=f"table {self.table}",
                also=_committing(monitor, after),
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "table",
            "table": self.table,
            "timestamps": self.timestamps,
            "predictions": self.predictions,
            "confidence": self.confidence,
            "schema": self.schema,
            "lag_s": self.lag_s,
        }


def _committing(monitor: Monitor, cursor: Any) -> Callable[[Connection], None]:
    """What a source hands to ``Monitor.log``: save ``cursor`` in its transaction."""
    return lambda conn: _commit_cursor(conn, monitor, cursor)


def _commit_cursor(conn: Connection, monitor: Monitor, cursor: Any) -> None:
    """Record how far the source was read, inside the transaction that logged those rows."""
    s = t.monitor_state
    project = monitor.ledger.settings.project
    where = (s.c.project == project, s.c.monitor == monitor.name)
    row = conn.execute(select(s.c.state).where(*where)).first()
    state = {**(dict(row[0]) if row is not None else {}), "source": plain(cursor)}
    if row is None:
        conn.execute(
            s.insert().values(
                project=project,
                monitor=monitor.name,
                state=state,
                updated_at=time.time(),
                schema_version=SCHEMA_VERSION,
            )
        )
    else:
        conn.execute(update(s).where(*where).values(state=state, updated_at=time.time()))


def _log_table(
    monitor: Monitor,
    table: pa.Table,
    timestamps: str,
    predictions: str | None,
    confidence: str | None,
    *,
    where: str,
    also: Callable[[Connection], None] | None = None,
) -> int:
    if table.num_rows == 0:
        return 0
    for role, col in (("predictions", predictions), ("confidence", confidence)):
        if col is not None and col not in table.column_names:
            raise DataError(
                f"{where} has no column {col!r} (the source's {role}=). Columns: "
                f"{', '.join(table.column_names)}."
            )
    pred = table.column(predictions) if predictions else None
    conf = table.column(confidence) if confidence else None
    features = table.drop_columns([c for c in (predictions, confidence) if c])
    monitor.log(features, predictions=pred, confidence=conf, timestamps=timestamps, also=also)
    return int(table.num_rows)


@dataclass(frozen=True)
class PredictionLogSource:
    """The prediction log ``hindsight serve`` writes for ``service``, read from the store.

    Each request becomes one row: its inputs (flat JSON objects become columns), the
    ``prediction`` (the answer, when it is a number, a string or a bool), its
    ``confidence``, and the serving signals ``fell_back`` (a later tier answered) and
    ``abstained``. Rows are read in order of their time and id, up to ``lag_s`` seconds
    before now, so records still in the log's write buffer are read on the next run.
    Labels (``POST /outcomes``) are joined to their predictions by id in the store and
    counted into the predictions' windows (:meth:`Monitor.log_labels`); the predictions'
    ``str()`` is compared with the label's, and every outcome record counts once.
    """

    service: str
    lag_s: float = 5.0
    batch_rows: int = 50_000

    def pull(self, monitor: Monitor, cursor: Any, now: float) -> tuple[int, Any]:
        until = now - self.lag_s
        # Both cursors in one dict, saved whole with every batch each part logs.
        state = dict(cursor) if isinstance(cursor, Mapping) else {}
        rows = self._predictions(monitor, state, until)
        labels = self._outcomes(monitor, state, until)
        return rows + labels, state

    def _predictions(self, monitor: Monitor, state: dict[str, Any], until: float) -> int:
        p = t.predictions
        after_t, after_id = (state.get("predictions") or [None, ""])[:2]
        total = 0
        while True:
            query = select(
                p.c.id,
                p.c.created_at,
                p.c.inputs,
                p.c.output,
                p.c.confidence,
                p.c.fell_back,
                p.c.reason,
            ).where(p.c.service == self.service, p.c.created_at <= until)
            query = _after(query, p.c.created_at, p.c.id, after_t, after_id)
            query = query.order_by(p.c.created_at, p.c.id).limit(self.batch_rows)
            with monitor.ledger.store.read() as conn:
                rows = conn.execute(query).all()
            if not rows:
                state["predictions"] = [after_t, after_id]
                return total
            after_t, after_id = float(rows[-1].created_at), str(rows[-1].id)
            state["predictions"] = [after_t, after_id]
            table, kwargs = _log_frame(rows)
            monitor.log(table, **kwargs, also=_committing(monitor, dict(state)))
            total += len(rows)

    def _outcomes(self, monitor: Monitor, state: dict[str, Any], until: float) -> int:
        """Labels recorded since the cursor, joined to their predictions by id."""
        p, o = t.predictions, t.outcomes
        after_t, after_id = (state.get("outcomes") or [None, ""])[:2]
        total = 0
        while True:
            query = (
                select(o.c.id, o.c.created_at, o.c.label, p.c.output, p.c.created_at.label("at"))
                .join(p, p.c.id == o.c.prediction_id)
                .where(p.c.service == self.service, o.c.created_at <= until)
            )
            query = _after(query, o.c.created_at, o.c.id, after_t, after_id)
            query = query.order_by(o.c.created_at, o.c.id).limit(self.batch_rows)
            with monitor.ledger.store.read() as conn:
                rows = conn.execute(query).all()
            if not rows:
                state["outcomes"] = [after_t, after_id]
                return total
            after_t, after_id = float(rows[-1].created_at), str(rows[-1].id)
            state["outcomes"] = [after_t, after_id]
            labelled = [r for r in rows if r.label is not None]
            if labelled:
                monitor.log_labels(
                    pa.array([str(r.label) for r in labelled]),
                    predictions=pa.array([str(r.output) for r in labelled]),
                    timestamps=np.array([float(r.at) for r in labelled]),
                    also=_committing(monitor, dict(state)),
                )
            total += len(labelled)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "prediction_log", "service": self.service, "lag_s": self.lag_s}


def _after(query: Any, at: Any, ident: Any, after_t: float | None, after_id: str) -> Any:
    """Rows strictly after the cursor ``(time, id)``."""
    if after_t is None:
        return query
    return query.where(or_(at > after_t, and_(at == after_t, ident > after_id)))


def _scalar(value: Any) -> Any:
    return value if isinstance(value, bool | int | float | str) else None


def _log_frame(rows: Sequence[Any]) -> tuple[pa.Table, dict[str, Any]]:
    inputs = [r.inputs if isinstance(r.inputs, Mapping) else {} for r in rows]
    table = pa.Table.from_pylist(inputs) if any(inputs) else pa.table({})
    reasons = pa.array([r.reason or "" for r in rows], pa.string())
    signals = {
        "fell_back": pa.array([bool(r.fell_back) for r in rows], pa.bool_()),
        "abstained": pc.match_substring(reasons, "abstained"),
    }
    for name, values in signals.items():
        if name not in table.column_names:
            table = table.append_column(name, values)
    outputs = [_scalar(r.output) for r in rows]
    kwargs: dict[str, Any] = {
        "timestamps": np.array([float(r.created_at) for r in rows], dtype=np.float64),
    }
    if any(o is not None for o in outputs):
        try:
            kwargs["predictions"] = pa.array(outputs)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            kwargs["predictions"] = pa.array([None if o is None else str(o) for o in outputs])
    conf = [r.confidence for r in rows]
    if any(c is not None for c in conf):
        kwargs["confidence"] = pa.array(conf, pa.float64())
    return table, kwargs


def source_from_dict(spec: Mapping[str, Any] | None, where: str = "source") -> Any:
    """A source from its ``to_dict()`` form; ``None`` for monitors fed in Python."""
    if spec is None:
        return None
    kinds: dict[str, Any] = {
        "parquet": ParquetSource,
        "prediction_log": PredictionLogSource,
        "table": SqlTableSource,
    }
    if not isinstance(spec, Mapping) or spec.get("kind") not in kinds:
        raise ConfigError(
            f"{where} must be {{kind: parquet, path: 'logs/*.parquet', timestamps: ts}}, "
            f"{{kind: prediction_log, service: NAME}} or {{kind: table, table: NAME, "
            f"timestamps: ts}}. Got {spec!r}."
        )
    options = {k: v for k, v in spec.items() if k != "kind"}
    cls = kinds[spec["kind"]]
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
