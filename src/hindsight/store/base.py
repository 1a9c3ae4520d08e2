"""The Store's foundation: the engine, transactions and generic record access."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Engine,
    Select,
    String,
    Table,
    any_,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.sql import FromClause

from hindsight.errors import NotFound
from hindsight.store import schema as t
from hindsight.store.engine import redact, translate_errors

__all__ = ["Row", "StoreBase"]

Row = dict[str, Any]

# Longer id lists are bound as one array (see Store._in).
_BIND_EACH_UP_TO = 64

_TABLES: dict[str, Table] = {
    "experiment": t.experiments,
    "failure": t.failures,
    "lesson": t.lessons,
    "postmortem": t.postmortems,
    "prediction": t.predictions,
    "review_item": t.review_items,
    "rollout": t.rollouts,
    "user": t.users,
    "api_token": t.api_tokens,
}


def _dicts(result: CursorResult[Any]) -> list[Row]:
    """A result's rows as dicts keyed by column name (fetched at once, no per-row mapping)."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]


class StoreBase:
    """Engine, transactions and by-id access shared by every kind of record."""

    def __init__(self, engine: Engine, url: str, *, migrated_from: str | None = None) -> None:
        self.engine = engine
        self.url = url
        self.migrated_from = migrated_from
        # The write transaction this thread has open, if any: writes and reads inside
        # ``with store.write():`` join it, so several calls commit (or roll back) as one.
        self._tx = threading.local()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact(self.url)!r})"

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE on SQLite).

        Nested inside another ``write()`` of this thread, it joins the outer one: the
        store's methods called in ``with store.write():`` land together or not at all.
        """
        outer: Connection | None = getattr(self._tx, "conn", None)
        if outer is not None:
            with translate_errors(self.url):
                yield outer
            return
        with (
            translate_errors(self.url),
            self.engine.connect().execution_options(hindsight_write=True) as conn,
            conn.begin(),
        ):
            self._tx.conn = conn
            try:
                yield conn
            finally:
                self._tx.conn = None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One read transaction (or this thread's open write transaction, which it joins)."""
        outer: Connection | None = getattr(self._tx, "conn", None)
        if outer is not None:
            with translate_errors(self.url):
                yield outer
            return
        with translate_errors(self.url), self.engine.connect() as conn, conn.begin():
            yield conn

    def _in(self, col: ColumnElement[Any], ids: Iterable[str]) -> ColumnElement[bool]:
        """``col IN ids``; a long list travels as one bound array, not a parameter each.

        Thousands of ids (the failures of a recurring fingerprint, their experiments)
        cost more to bind one by one than to look up: SQLite reads them from one JSON
        parameter with ``json_each``, PostgreSQL from one array with ``= ANY``.
        """
        values = list(ids)
        if len(values) <= _BIND_EACH_UP_TO:
            return col.in_(values)
        if self.backend == "sqlite":
            each = func.json_each(bindparam(None, json.dumps(values))).table_valued("value")
            return col.in_(select(each.c.value))
        if self.backend == "postgresql":
            return col == any_(bindparam(None, values, type_=ARRAY(String)))
        return col.in_(values)

    # -- paged listings ---------------------------------------------------------------

    def page_and_count(
        self, page: Select[Any], table: FromClause, where: Sequence[ColumnElement[bool]]
    ) -> tuple[list[Row], int]:
        """The rows of one page and how many rows of ``table`` match ``where`` in all
        (one read transaction: the page and the count agree)."""
        count = select(func.count()).select_from(table).where(*where)
        with self.read() as conn:
            return _dicts(conn.execute(page)), int(conn.execute(count).scalar_one())

    def distinct_values(self, column: ColumnElement[Any]) -> list[str]:
        """The distinct values of a column, sorted (the choices of a filter)."""
        with self.read() as conn:
            q = select(column).distinct().order_by(column)
            return [str(v) for v in conn.execute(q).scalars()]

    # -- generic records --------------------------------------------------------------

    def insert(self, kind: str, row: Mapping[str, Any]) -> None:
        """Insert one record of a kind (experiment, failure, lesson, postmortem)."""
        with self.write() as conn:
            conn.execute(insert(_TABLES[kind]), [dict(row)])

    def insert_and_update(
        self,
        kind: str,
        row: Mapping[str, Any],
        other: str,
        other_id: str,
        values: Mapping[str, Any],
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
                select(table.c.id)
                .where(table.c.id.startswith(record_id_prefix, autoescape=True))
                .limit(5)
            )
            return [str(i) for i in ids.scalars()]
