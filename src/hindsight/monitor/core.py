"""The production monitor: one mergeable profile per time window, compared with a reference.

:meth:`Monitor.log` takes a batch of logged predictions (features, and optionally the
predictions and their confidence), cuts it into time windows, profiles each window's
rows and merges that profile into the one already stored for the window. Raw rows are
not kept: a window is its profile. :meth:`Monitor.drift` then compares one window with
a calendar-aware reference (the trailing day, the same hour over the last weeks, a past
event) chosen by :func:`~hindsight.monitor.windows.reference_windows`, or with a fixed
profile such as the training data's.

Storage. Window profiles live in the store's ``profiles`` table under the name
``monitor:<name>:<window start in epoch seconds>``; every merge adds a new version and
the newest version is the window's profile. This reuses the table reference profiles
already live in; a dedicated table with an index on ``(monitor, window_start)``, which
also lets old versions be pruned, comes later. Until then :meth:`Monitor.windows` reads
the names of every stored profile of the project.

Writes. One call of :meth:`Monitor.log` reads the stored profiles of the windows it
touches, merges and writes the new versions in one write transaction: bad input, or a
batch whose columns cannot be merged with a stored window, writes nothing. On
PostgreSQL the transaction also takes an advisory lock on the monitor, so concurrent
loggers of one monitor merge one after the other instead of losing each other's rows;
on SQLite the write transaction (``BEGIN IMMEDIATE``) already serialises them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, select
from sqlalchemy import text as sql_text

from hindsight.data.frames import to_arrow
from hindsight.data.profile import DatasetProfile, ProfileOptions, profile_table
from hindsight.drift.engine import drift_report
from hindsight.drift.report import DriftReport
from hindsight.errors import ConfigError, DataError
from hindsight.ledger.core import Ledger, get_ledger
from hindsight.ledger.ids import new_id
from hindsight.monitor.windows import (
    ReferenceRule,
    ReferenceSelection,
    WindowSpec,
    reference_windows,
    to_epoch_seconds,
)
from hindsight.store import schema as t
from hindsight.store.schema import SCHEMA_VERSION

__all__ = ["PREDICTION_COLUMNS", "Monitor", "WindowDrift"]

#: Columns that ``predictions=`` and ``confidence=`` are stored as.
PREDICTION_COLUMNS = ("prediction", "confidence")
_PREFIX = "monitor:"
_MAX_NAME = 150  # leaves room for the prefix and the window start in 200 characters


def _fmt(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class WindowDrift:
    """The drift of one window against its reference, and how the reference was chosen."""

    window_start: float
    reference_description: str
    report: DriftReport

    @property
    def drift_detected(self) -> bool:
        return self.report.drift_detected

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_start": self.window_start,
            "reference_description": self.reference_description,
            "report": self.report.to_dict(),
        }


class Monitor:
    """Window profiles of a served model's predictions, kept in the hindsight store.

    ``window`` is the width of the time windows (``"15min"``, ``"1h"``, ``"1d"``;
    aligned to the UTC epoch). ``options`` are the :class:`ProfileOptions` of every
    window profile; keep them the same for the life of a monitor, since profiles built
    with different options cannot be merged.
    """

    def __init__(
        self,
        name: str,
        *,
        ledger: Ledger | None = None,
        window: str | int = "1h",
        options: ProfileOptions | None = None,
    ) -> None:
        if not isinstance(name, str) or not name or len(name) > _MAX_NAME or ":" in name:
            raise ConfigError(
                f"A monitor name must be 1 to {_MAX_NAME} characters without ':'. Got {name!r}."
            )
        self.name = name
        self.ledger = ledger if ledger is not None else get_ledger()
        self.spec = WindowSpec(every=window)
        self.options = options or ProfileOptions()

    def __repr__(self) -> str:
        return f"Monitor({self.name!r}, window={self.spec.to_dict()['every']!r})"

    # -- names -----------------------------------------------------------------------

    @property
    def _project(self) -> str:
        return self.ledger.settings.project

    @property
    def _prefix(self) -> str:
        return f"{_PREFIX}{self.name}:"

    def _profile_name(self, start: float) -> str:
        return f"{self._prefix}{int(start)}"

    def _window_start(self, instant: Any) -> float:
        """The start of the window holding ``instant`` (epoch seconds or a datetime)."""
        if isinstance(instant, datetime):
            moment = instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)
            value: Any = np.array([moment.timestamp()])
        else:
            value = np.array([instant])
        try:
            _, starts = self.spec.assign(to_epoch_seconds(value))
        except DataError as exc:
            raise ConfigError(
                f"A window start must be epoch seconds or a datetime. Got {instant!r}."
            ) from exc
        return float(starts[0])

    # -- logging ---------------------------------------------------------------------

    def log(
        self,
        features: Any,
        *,
        predictions: Any = None,
        confidence: Any = None,
        timestamps: Any,
    ) -> list[float]:
        """Add a batch of logged rows to their windows; returns the window starts touched.

        ``features`` is anything :func:`~hindsight.data.frames.to_arrow` reads;
        ``predictions`` and ``confidence`` (1-D, one per row) become the columns
        ``prediction`` and ``confidence``. ``timestamps`` are epoch seconds, datetime64
        values, or the name of a column of ``features`` (which is then not profiled).
        Bad input raises :class:`DataError` and writes nothing.
        """
        table, ids, starts = self._prepare(features, predictions, confidence, timestamps)
        if table.num_rows == 0:
            return []
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        cuts = np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1
        bounds = [0, *cuts.tolist(), len(order)]
        rows = table.take(pa.array(order))
        batch: dict[float, DatasetProfile] = {}
        for lo, hi in pairwise(bounds):
            start = float(starts[order[lo]])
            batch[start] = profile_table(rows.slice(lo, hi - lo), self.options)
        self._save(batch)
        return sorted(batch)

    def _prepare(
        self, features: Any, predictions: Any, confidence: Any, timestamps: Any
    ) -> tuple[pa.Table, np.ndarray, np.ndarray]:
        """The table to profile and its timestamps, checked; raises before any write."""
        table = to_arrow(features, what="features")
        n = table.num_rows
        if timestamps is None:
            raise DataError(
                "timestamps= is missing: pass epoch seconds, datetime64 values or the name "
                "of a column of the features, one per row."
            )
        if isinstance(timestamps, str):
            if timestamps not in table.column_names:
                raise DataError(
                    f"timestamps={timestamps!r} is not a column of the features. Columns: "
                    f"{', '.join(table.column_names)}."
                )
            column = table.column(timestamps)
            if column.null_count:
                raise DataError(
                    f"{column.null_count} values of the timestamp column {timestamps!r} are "
                    "missing: drop or fill them first."
                )
            table = table.drop_columns([timestamps])
            raw: Any = column.to_numpy()
        else:
            raw = timestamps
        for col, values in zip(PREDICTION_COLUMNS, (predictions, confidence), strict=True):
            if values is None:
                continue
            if col in table.column_names:
                raise DataError(
                    f"The features already have a column {col!r}; rename it, or drop it and "
                    f"pass the values as {col if col == 'confidence' else 'predictions'}=."
                )
            arr = values if isinstance(values, pa.Array | pa.ChunkedArray) else np.asarray(values)
            if getattr(arr, "ndim", 1) != 1:
                raise DataError(f"{col} values must be 1-D. Got shape {np.shape(arr)}.")
            if len(arr) != n:
                raise DataError(f"Got {len(arr)} {col} values for {n} rows of features.")
            table = table.append_column(col, pa.array(arr) if isinstance(arr, np.ndarray) else arr)
        if table.num_columns == 0:
            raise DataError("Nothing to profile: the features have no column besides timestamps.")
        try:
            count = len(raw)
        except TypeError:
            raise DataError(
                f"timestamps= must hold one value per row. Got {type(raw).__name__}."
            ) from None
        if count != n:
            raise DataError(f"Got {count} timestamps for {n} rows of features.")
        # Read and check them (NaN, NaT, dtype) now, so that nothing later fails on them.
        ids, starts = self.spec.assign(raw)
        return table, ids, starts

    def _save(self, batch: Mapping[float, DatasetProfile]) -> None:
        """Merge ``batch`` into the stored window profiles and write them in one transaction."""
        store = self.ledger.store
        p = t.profiles
        with store.write() as conn:
            if store.backend == "postgresql":
                _lock(conn, f"{self._project}\0{self._prefix}")
            rows = []
            for start, fresh in sorted(batch.items()):
                name = self._profile_name(start)
                old = conn.execute(
                    select(p.c.data, p.c.created_at)
                    .where(p.c.project == self._project, p.c.name == name)
                    .order_by(p.c.created_at.desc(), p.c.id.desc())
                    .limit(1)
                ).first()
                now = time.time()
                merged = fresh
                if old is not None:
                    merged = DatasetProfile.merge([DatasetProfile.from_bytes(bytes(old[0])), fresh])
                    # The newest version is found by created_at: keep it strictly increasing.
                    now = max(now, float(old[1]) + 1e-6)
                rows.append(_profile_row(merged, self._project, name, now))
            conn.execute(p.insert(), rows)

    # -- reading ---------------------------------------------------------------------

    def windows(self) -> list[float]:
        """Starts of the windows with a stored profile, ascending."""
        prefix = self._prefix
        starts: set[float] = set()
        for row in self.ledger.store.list_profiles(self._project):
            name = row["name"]
            if name.startswith(prefix):
                try:
                    starts.add(float(int(name[len(prefix) :])))
                except ValueError:
                    continue
        return sorted(starts)

    def window_profile(self, start: Any) -> DatasetProfile:
        """The profile of the window starting at (or holding) ``start``."""
        begin = self._window_start(start)
        row = self.ledger.store.load_profile(self._project, self._profile_name(begin))
        if row is None:
            raise DataError(
                f"Monitor {self.name!r} has no rows in the window starting {_fmt(begin)}. "
                "Monitor.windows() lists the windows logged."
            )
        return DatasetProfile.from_bytes(bytes(row["data"]))

    def reference_profile(
        self, target_start: Any, rule: ReferenceRule | DatasetProfile
    ) -> tuple[DatasetProfile, ReferenceSelection]:
        """The merged profile of the reference windows of a target window, and the choice.

        A :class:`DatasetProfile` as ``rule`` (e.g. the training data's) is the
        reference as it is.
        """
        if isinstance(rule, DatasetProfile):
            selection = ReferenceSelection(
                indices=np.empty(0, dtype=np.int64),
                description=f"a fixed profile of {rule.n_rows} rows ({rule.digest[:12]})",
                complete=True,
                expected=0,
                found=0,
            )
            return rule, selection
        target = self._window_start(target_start)
        starts = np.asarray(self.windows(), dtype=np.float64)
        selection = reference_windows(target, starts, rule, spec=self.spec)
        if selection.indices.size == 0:
            raise DataError(
                f"The reference rule {rule.to_dict()} found no logged window of monitor "
                f"{self.name!r} for the window starting {_fmt(target)}: "
                f"{selection.description}. Log more history or pick another rule."
            )
        profiles = [self.window_profile(float(starts[i])) for i in selection.indices]
        merged = profiles[0] if len(profiles) == 1 else DatasetProfile.merge(profiles)
        return merged, selection

    def drift(
        self,
        target_start: Any,
        reference: ReferenceRule | DatasetProfile,
        *,
        columns: Sequence[str] | None = None,
        alpha: float = 0.05,
    ) -> WindowDrift:
        """Compare one window with its reference (see :meth:`reference_profile`)."""
        target = self._window_start(target_start)
        current = self.window_profile(target)
        ref, selection = self.reference_profile(target, reference)
        report = drift_report(ref, current, columns=columns, alpha=alpha)
        return WindowDrift(
            window_start=target, reference_description=selection.description, report=report
        )


def _profile_row(prof: DatasetProfile, project: str, name: str, at: float) -> dict[str, Any]:
    return {
        "id": new_id("profile"),
        "project": project,
        "name": name,
        "digest": prof.digest,
        "n_rows": prof.n_rows,
        "n_columns": len(prof.columns),
        "format_version": prof.version,
        "data": prof.to_bytes(),
        "created_at": at,
        "schema_version": SCHEMA_VERSION,
    }


def _lock(conn: Connection, key: str) -> None:
    """A PostgreSQL advisory lock on ``key``, held until the transaction ends."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    number = int.from_bytes(digest[:8], "big", signed=True)
    conn.execute(sql_text("SELECT pg_advisory_xact_lock(:k)"), {"k": number})
