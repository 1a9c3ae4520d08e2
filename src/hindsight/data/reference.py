"""Reference profiles kept in the hindsight store by name, and reading a reference from anything.

>>> import numpy as np
>>> from hindsight.data import profile
>>> from hindsight.ledger import Ledger
>>> ledger = Ledger.at("sqlite://")
>>> prof = profile({"x": np.arange(100.0)})
>>> saved = save_profile(prof, "train-2026-11", ledger=ledger)
>>> load_profile("train-2026-11", ledger=ledger).digest == prof.digest
True
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hindsight.data.profile import DatasetProfile
from hindsight.errors import DataError
from hindsight.ledger.core import Ledger, get_ledger
from hindsight.ledger.ids import new_id
from hindsight.store.schema import SCHEMA_VERSION

__all__ = ["PROFILE_SUFFIX", "list_profiles", "load_profile", "resolve_reference", "save_profile"]

#: Conventional suffix of a profile written to a file.
PROFILE_SUFFIX = ".hsprof"
_DATA_SUFFIXES = (PROFILE_SUFFIX, ".parquet", ".pq", ".csv", ".tsv", ".gz")


def save_profile(
    prof: DatasetProfile, name: str, *, ledger: Ledger | None = None, project: str | None = None
) -> str:
    """Store ``prof`` under ``name`` (a new version each time); returns the record id."""
    if not name or len(name) > 200:
        raise DataError("A profile name must be 1 to 200 characters long.")
    led = ledger or get_ledger()
    data = prof.to_bytes()
    record_id = new_id("profile")
    led.store.save_profile(
        {
            "id": record_id,
            "project": project or led.settings.project,
            "name": name,
            "digest": prof.digest,
            "n_rows": prof.n_rows,
            "n_columns": len(prof.columns),
            "format_version": prof.version,
            "data": data,
            "created_at": time.time(),
            "schema_version": SCHEMA_VERSION,
        }
    )
    return record_id


def load_profile(
    name: str, *, ledger: Ledger | None = None, project: str | None = None
) -> DatasetProfile:
    """The newest profile stored under ``name``."""
    led = ledger or get_ledger()
    row = led.store.load_profile(project or led.settings.project, name)
    if row is None:
        known = sorted({r["name"] for r in led.store.list_profiles(project or led.settings.project)})
        hint = f" Stored profiles: {', '.join(known)}." if known else " None are stored yet."
        raise DataError(
            f"No stored profile named {name!r}.{hint} Save one with "
            "`hindsight profile DATA --save NAME` or hindsight.save_profile(profile, NAME)."
        )
    return DatasetProfile.from_bytes(bytes(row["data"]))


def list_profiles(*, ledger: Ledger | None = None, project: str | None = None) -> list[dict[str, Any]]:
    """Stored profile versions (without their data), newest first."""
    led = ledger or get_ledger()
    return led.store.list_profiles(project)


def resolve_reference(ref: Any, *, ledger: Ledger | None = None) -> DatasetProfile | Any:
    """A profile from a ``.hsprof`` path or a stored name; data is returned as it is.

    Strings are read as: an existing ``*.hsprof`` file → that profile; another existing
    path → data; otherwise a stored profile name.
    """
    if isinstance(ref, DatasetProfile):
        return ref
    if isinstance(ref, str | Path):
        path = Path(ref)
        if path.exists():
            if path.suffix == PROFILE_SUFFIX:
                return DatasetProfile.load(path)
            return ref
        looks_like_file = path.suffix.lower() in _DATA_SUFFIXES or any(c in str(ref) for c in "/\\")
        if isinstance(ref, str) and not looks_like_file:
            return load_profile(ref, ledger=ledger)
        raise DataError(
            f"{str(ref)!r} is neither an existing file nor a stored profile name. Pass a data "
            f"file, a {PROFILE_SUFFIX} profile, or the name of a profile saved with --save."
        )
    return ref

