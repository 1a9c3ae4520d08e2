"""Clear errors for stores that cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hindsight.errors import StoreCorrupt, StoreUnavailable
from hindsight.store import open_store


def test_corrupt_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "hindsight.db"
    db.write_bytes(b"this is not a database, just some bytes " * 200)
    with pytest.raises(StoreCorrupt, match="not a readable hindsight database"):
        open_store(f"sqlite:///{db}")


def test_unreachable_postgres() -> None:
    with pytest.raises(StoreUnavailable, match="Cannot reach the store"):
        open_store("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2")


def test_password_is_not_printed() -> None:
    with pytest.raises(StoreUnavailable) as info:
        open_store("postgresql+psycopg://bob:s3cret@127.0.0.1:1/test?connect_timeout=2")
    assert "s3cret" not in str(info.value)


def test_not_a_url() -> None:
    with pytest.raises(StoreUnavailable, match="not a database URL"):
        open_store("definitely not a url")


def test_foreign_tables_without_version(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'other.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE experiments (id TEXT)"))
    engine.dispose()
    with pytest.raises(StoreCorrupt, match="no schema version"):
        open_store(url)


def test_unwritable_home(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreUnavailable, match="Cannot create the folder"):
        open_store(f"sqlite:///{blocker}/sub/hindsight.db")
