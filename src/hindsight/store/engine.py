"""Opening a store: engines tuned per backend, schema checks and migrations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError

from hindsight.errors import StoreCorrupt, StoreError, StoreUnavailable, StoreVersionError

__all__ = ["HEAD", "KNOWN_REVISIONS", "create_store_engine", "ensure_schema", "redact"]

#: Alembic revisions this version of hindsight knows, oldest first.
KNOWN_REVISIONS = (
    "0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010", "0011"
)
HEAD = KNOWN_REVISIONS[-1]
_MIGRATIONS = Path(__file__).with_name("migrations")
# Serialises concurrent first-time migrations on PostgreSQL.
_PG_LOCK_KEY = 0x68696E64


def redact(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def create_store_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite in WAL mode with a busy timeout, or a server DB."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreUnavailable(
            f"HINDSIGHT_STORE={redact(url)!r} is not a database URL. Use "
            "sqlite:///path/to/hindsight.db or postgresql+psycopg://user@host:5432/db."
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    try:
        return create_engine(url, pool_pre_ping=True, future=True)
    except NoSuchModuleError as exc:
        raise StoreUnavailable(
            f"No driver for {parsed.drivername!r}. For PostgreSQL install the extra "
            "`pip install 'hindsight[postgres]'` and use postgresql+psycopg://…"
        ) from exc
    except ModuleNotFoundError as exc:
        raise StoreUnavailable(
            f"The database driver for {parsed.drivername!r} is not installed ({exc}). "
            "For PostgreSQL: pip install 'hindsight[postgres]'."
        ) from exc


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        path = Path(database)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"Cannot create the folder for the SQLite store at {path}: {exc}. "
                "Set HINDSIGHT_HOME or HINDSIGHT_STORE to a writable place."
            ) from exc
    engine = create_engine(
        url, connect_args={"timeout": 30.0, "check_same_thread": False}, future=True
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE can be issued
        # for writes: deferred write transactions deadlock under concurrent writers.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("hindsight_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Turn driver errors into hindsight's store errors with advice."""
    try:
        yield
    except OperationalError as exc:
        msg = str(exc.orig) if exc.orig is not None else str(exc)
        if "database is locked" in msg:
            raise StoreUnavailable(
                f"The SQLite store {redact(url)} stayed locked for 30 s by another "
                "process. If many processes write at once, use PostgreSQL "
                "(HINDSIGHT_STORE=postgresql+psycopg://…)."
            ) from exc
        if "not a database" in msg or "malformed" in msg:
            raise StoreCorrupt(
                f"The store {redact(url)} is not a readable hindsight database ({msg}). "
                "Move the file aside and let hindsight create a new one, or restore "
                "it from a backup."
            ) from exc
        raise StoreUnavailable(
            f"Cannot reach the store {redact(url)}: {msg.strip()}. Check that the "
            "database server is running and HINDSIGHT_STORE is right."
        ) from exc
    except DatabaseError as exc:
        msg = str(exc.orig) if exc.orig is not None else str(exc)
        if "not a database" in msg or "malformed" in msg or "disk image" in msg:
            raise StoreCorrupt(
                f"The store {redact(url)} is not a readable hindsight database ({msg}). "
                "Move the file aside and let hindsight create a new one, or restore "
                "it from a backup."
            ) from exc
        raise StoreError(f"The store {redact(url)} refused the operation: {msg}") from exc


def current_revision(conn: Connection) -> str | None:
    """The Alembic revision stamped in the database, or None for a fresh one."""
    names = set(inspect(conn).get_table_names())
    if "alembic_version" not in names:
        if names & {"experiments", "failures", "lessons"}:
            raise StoreCorrupt(
                "The database has hindsight tables but no schema version "
                "(alembic_version is missing). Point HINDSIGHT_STORE at an empty "
                "database or restore the store from a backup."
            )
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) != 1:
        raise StoreCorrupt(f"The store's alembic_version table holds {rows!r}; expected one row.")
    return str(rows[0])


def ensure_schema(engine: Engine, url: str) -> str:
    """Check the schema version and migrate an older store; returns the revision found."""
    with translate_errors(url):
        with engine.connect() as conn:
            found = current_revision(conn)
        if found == HEAD:
            return found
        _refuse_if_newer(found, url)
        with engine.connect().execution_options(hindsight_write=True) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            # Another process may have migrated while we waited for the lock.
            found_now = current_revision(conn)
            _refuse_if_newer(found_now, url)
            if found_now != HEAD:
                _upgrade(conn)
        return found or "empty"


def _refuse_if_newer(found: str | None, url: str) -> None:
    if found is not None and found not in KNOWN_REVISIONS:
        raise StoreVersionError(
            f"The store {redact(url)} has schema revision {found!r}, written by a newer "
            f"hindsight (this one knows up to {HEAD!r}). Upgrade hindsight "
            "(pip install -U hindsight) or point HINDSIGHT_STORE at another store."
        )


def _upgrade(conn: Connection, revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def migrate_to(engine: Engine, revision: str) -> None:
    """Migrate to a given revision (tests build older stores with this)."""
    with engine.connect().execution_options(hindsight_write=True) as conn, conn.begin():
        _upgrade(conn, revision)
