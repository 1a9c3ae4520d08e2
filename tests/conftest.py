"""Shared fixtures: stores on SQLite and on the PostgreSQL server at 127.0.0.1:5432."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hindsight.config import Settings
from hindsight.ledger import Ledger, set_ledger

# Real local alert endpoints, shared by the alert channels' tests and the training guard's.
from receivers import (  # noqa: F401
    closed_port,
    fake_sleep,
    http_receiver,
    smtp_auth_server,
    smtp_server,
)

PG_BASE = os.environ.get(
    "HINDSIGHT_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    try:
        engine = sqlalchemy.create_engine(PG_BASE)
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except Exception as exc:  # no server: a skip locally, a failure in CI
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_BASE}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_BASE}: {exc}")
    schema = f"hs_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hindsight.db'}"
    else:
        yield from _pg_schema_url()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema URL."""
    yield from _pg_schema_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite store URL."""
    return f"sqlite:///{tmp_path / 'hindsight.db'}"


def make_ledger(url: str, home: Path, **settings: object) -> Ledger:
    """A ledger on a store URL with test settings."""
    return Ledger(Settings(home=home, store=url, **settings))  # type: ignore[arg-type]


@pytest.fixture
def ledger(sqlite_url: str, tmp_path: Path) -> Iterator[Ledger]:
    """A ledger on a fresh SQLite store, installed as the process-wide default."""
    led = make_ledger(sqlite_url, tmp_path)
    previous = set_ledger(led)
    try:
        yield led
    finally:
        set_ledger(previous)
        led.close()


@pytest.fixture
def any_ledger(store_url: str, tmp_path: Path) -> Iterator[Ledger]:
    """A ledger on each backend, installed as the process-wide default."""
    led = make_ledger(store_url, tmp_path)
    previous = set_ledger(led)
    try:
        yield led
    finally:
        set_ledger(previous)
        led.close()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep tests away from the developer's own store and settings."""
    for var in (
        "HINDSIGHT_STORE",
        "HINDSIGHT_HOME",
        "HINDSIGHT_PROJECT",
        "HINDSIGHT_CONFIG",
        "HINDSIGHT_MLFLOW_TRACKING_URI",
        "HINDSIGHT_HEARTBEAT",
        "HINDSIGHT_STALE_AFTER",
        "HINDSIGHT_ALERTS",
        "HINDSIGHT_SERVER_URL",
        "HINDSIGHT_SERVER_TOKEN",
        "HINDSIGHT_SERVER_TIMEOUT",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
