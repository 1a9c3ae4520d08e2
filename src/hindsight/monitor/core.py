"""The production monitor: one mergeable profile per time window, compared with a reference.

:meth:`Monitor.log` takes a batch of logged predictions (features, and optionally the
predictions and their confidence), cuts it into time windows, profiles each window's
rows and merges that profile into the one already stored for the window. Raw rows are
not kept: a window is its profile. :meth:`Monitor.drift` then compares one window with
a calendar-aware reference (the trailing day, the same hour over the last weeks, a past
event) chosen by :func:`~hindsight.monitor.windows.reference_windows`, or with a fixed
profile such as the training data's.

Storage. Each window is one row of the store's ``monitor_windows`` table (unique on
project, monitor and window start): the window's profile and its count tables, each
action (``prediction``) per value of every ``segments`` column, which a profile's
marginal counts cannot give. A later batch of the same window is merged into the row.

Writes. One call of :meth:`Monitor.log` reads the stored rows of the windows it
touches, merges and writes them back in one write transaction: bad input, or a
batch whose columns cannot be merged with a stored window, writes nothing. On
PostgreSQL the transaction also takes an advisory lock on the monitor, so concurrent
loggers of one monitor merge one after the other instead of losing each other's rows;
on SQLite the write transaction (``BEGIN IMMEDIATE``) already serialises them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, select, update
from sqlalchemy import text as sql_text

from hindsight.data.frames import to_arrow
from hindsight.data.profile import DatasetProfile, ProfileOptions, profile_table
from hindsight.drift.engine import drift_report
from hindsight.drift.report import DriftReport
from hindsight.errors import ConfigError, DataError
from hindsight.ledger.core import Ledger, get_ledger
from hindsight.ledger.ids import new_id
from hindsight.monitor.labels import decode_keys, encode_keys, group_counts, score_bins
from hindsight.monitor.windows import (
    ReferenceRule,
    ReferenceSelection,
    WindowSpec,
    reference_windows,
    to_epoch_seconds,
)
from hindsight.store import schema as t
from hindsight.store.schema import SCHEMA_VERSION

__all__ = ["PREDICTION_COLUMNS", "Counts", "Monitor", "WindowDrift", "merge_counts"]

#: Count tables of a window: segment column -> segment value -> action -> rows.
Counts = dict[str, dict[str, dict[str, int]]]

#: Columns that ``predictions=`` and ``confidence=`` are stored as.
PREDICTION_COLUMNS = ("prediction", "confidence")
_MAX_NAME = 200


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
    with different options cannot be merged. ``segments`` names feature columns (a
    customer type, a country) by which each window also counts every action (the
    ``predictions``), so decision rates can be watched per segment; ``crosstabs`` pairs
    ``(segment, column)`` count any other column by a segment, e.g. ``("slice",
    "clicked")`` for the click rate of a holdout slice (kept as ``"slice|clicked"``).
    """

    def __init__(
        self,
        name: str,
        *,
        ledger: Ledger | None = None,
        window: str | int = "1h",
        options: ProfileOptions | None = None,
        segments: Sequence[str] = (),
        crosstabs: Sequence[tuple[str, str]] = (),
    ) -> None:
        if not isinstance(name, str) or not name or len(name) > _MAX_NAME or ":" in name:
            raise ConfigError(
                f"A monitor name must be 1 to {_MAX_NAME} characters without ':'. Got {name!r}."
            )
        self.name = name
        self.ledger = ledger if ledger is not None else get_ledger()
        self.spec = WindowSpec(every=window)
        self.options = options or ProfileOptions()
        if isinstance(segments, str) or not all(isinstance(c, str) and c for c in segments):
            raise ConfigError(
                f"segments must be a list of column names, e.g. ['customer_type']. Got "
                f"{segments!r}."
            )
        self.segments = tuple(segments)
        pairs = [tuple(p) for p in crosstabs]
        if not all(len(p) == 2 and all(isinstance(c, str) and c for c in p) for p in pairs):
            raise ConfigError(
                f"crosstabs must be (segment, column) pairs, e.g. [('slice', 'clicked')]. Got "
                f"{crosstabs!r}."
            )
        self.crosstabs = tuple((str(a), str(b)) for a, b in pairs)
        # (key in the counts, segment column, counted column) for every count table.
        self._tables = [(c, c, "prediction") for c in self.segments] + [
            (f"{a}|{b}", a, b) for a, b in self.crosstabs
        ]
        # Decoded windows kept for the length of a `cached()` block (a monitor run, where
        # consecutive targets share most of their reference windows).
        self._cache: dict[float, tuple[DatasetProfile, Counts]] | None = None

    def __repr__(self) -> str:
        return f"Monitor({self.name!r}, window={self.spec.to_dict()['every']!r})"

    # -- names -----------------------------------------------------------------------

    @property
    def _project(self) -> str:
        return self.ledger.settings.project

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
        probabilities: Any = None,
        ids: Any = None,
        timestamps: Any,
        also: Callable[[Connection], None] | None = None,
    ) -> list[float]:
        """Add a batch of logged rows to their windows; returns the window starts touched.

        ``features`` is anything :func:`~hindsight.data.frames.to_arrow` reads;
        ``predictions`` and ``confidence`` (1-D, one per row) become the columns
        ``prediction`` and ``confidence``. ``probabilities`` (n x k class probabilities,
        rows summing to 1) may stand in for ``confidence``: the top probability becomes
        ``confidence`` and the row's entropy (natural log) the column ``entropy``.
        ``timestamps`` are epoch seconds, datetime64 values, or the name of a column of
        ``features`` (which is then not profiled). ``ids`` (one request id per row) are
        kept per window with the prediction and confidence, so labels can arrive later
        by id (:meth:`log_outcomes`). Bad input raises :class:`DataError` and writes
        nothing. ``also(conn)`` runs inside the write transaction (a source records how
        far it read there, so rows are logged exactly once).
        """
        if probabilities is not None:
            if confidence is not None:
                raise DataError("Give confidence= or probabilities=, not both.")
            confidence, entropy = _from_probabilities(probabilities)
            features = to_arrow(features, what="features")
            if "entropy" in features.column_names:
                raise DataError(
                    "The features already have a column 'entropy'; rename it to log probabilities=."
                )
            features = features.append_column("entropy", pa.array(entropy))
        request_ids = None if ids is None else _column_of(ids, "ids")
        table, window_ids, starts = self._prepare(features, predictions, confidence, timestamps)
        if table.num_rows == 0:
            return []
        if request_ids is not None:
            if len(request_ids) != table.num_rows:
                raise DataError(f"Got {len(request_ids)} ids for {table.num_rows} rows.")
            if request_ids.null_count:
                raise DataError(f"{request_ids.null_count} ids are missing: every row needs one.")
            table = table.append_column("__id", pc.cast(request_ids, pa.string()))
        ids = window_ids
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        cuts = np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1
        bounds = [0, *cuts.tolist(), len(order)]
        rows = table.take(pa.array(order))
        batch: dict[float, tuple[DatasetProfile, Counts]] = {}
        keys: dict[float, tuple[int, bytes]] = {}
        for lo, hi in pairwise(bounds):
            start = float(starts[order[lo]])
            part = rows.slice(lo, hi - lo)
            if "__id" in part.column_names:
                keys[start] = (
                    part.num_rows,
                    encode_keys(
                        part.column("__id"),
                        part.column("prediction") if "prediction" in part.column_names else None,
                        part.column("confidence") if "confidence" in part.column_names else None,
                    ),
                )
                part = part.drop_columns(["__id"])
            batch[start] = (profile_table(part, self.options), self._counts(part))
        self._save(batch, keys, also)
        return sorted(batch)

    def log_outcomes(
        self, ids: Any, labels: Any, *, within_s: float = 90 * 86_400.0
    ) -> dict[str, int]:
        """Labels that arrived later, joined by request id to predictions logged with ids.

        The ids logged in the windows of the last ``within_s`` seconds (before the newest
        window) are searched; each label is counted into its prediction's window, like
        :meth:`log_labels`. Returns how many labels matched and how many did not (an id
        never logged, or older). Ids must be unique within a call; a label sent twice in
        two calls counts twice. Nothing is written when the input is bad.
        """
        lab_ids = pc.cast(_column_of(ids, "ids"), pa.string())
        lab = _column_of(labels, "labels")
        if len(lab_ids) != len(lab):
            raise DataError(f"Got {len(lab_ids)} ids for {len(lab)} labels.")
        if len(lab_ids) and pc.count_distinct(lab_ids).as_py() != len(lab_ids):
            raise DataError("ids must be unique within one call: send each label once.")
        starts = self.windows()
        if not starts or not len(lab_ids):
            return {"labelled": 0, "unmatched": len(lab_ids)}
        k = t.monitor_keys
        since = starts[-1] - within_s
        with self.ledger.store.read() as conn:
            chunks = conn.execute(
                select(k.c.window_start, k.c.data).where(
                    k.c.project == self._project,
                    k.c.monitor == self.name,
                    k.c.window_start >= since,
                )
            ).all()
        if not chunks:
            return {"labelled": 0, "unmatched": len(lab_ids)}
        parts = []
        for r in chunks:
            part = decode_keys(bytes(r.data))
            parts.append(
                part.append_column("window_start", pa.repeat(float(r.window_start), part.num_rows))
            )
        keys = pa.concat_tables(parts)
        joined = keys.join(pa.table({"id": lab_ids, "label": lab}), "id", join_type="inner")
        matched = joined.num_rows
        if matched:
            has_scores = joined.column("score").null_count < matched
            self.log_labels(
                joined.column("label"),
                predictions=joined.column("prediction"),
                timestamps=joined.column("window_start").to_numpy(),
                scores=joined.column("score") if has_scores else None,
            )
        return {"labelled": matched, "unmatched": len(lab_ids) - matched}

    def _counts(self, rows: pa.Table) -> Counts:
        """The window's count tables: every crosstab, and the score histogram."""
        out: Counts = {
            key: group_counts(rows.column(col), rows.column(target))
            for key, col, target in self._tables
        }
        if "confidence" in rows.column_names and pa.types.is_floating(
            rows.schema.field("confidence").type
        ):
            bins = score_bins(rows.column("confidence"), "confidence")
            out["score_bin"] = group_counts(pa.repeat("*", rows.num_rows), bins)
        return out

    def log_labels(
        self,
        labels: Any,
        *,
        predictions: Any,
        timestamps: Any,
        scores: Any = None,
        also: Callable[[Connection], None] | None = None,
    ) -> list[float]:
        """Count labels that arrived later into their predictions' windows.

        ``timestamps`` are the *predictions'* times (the join by request id is done
        before: see :mod:`hindsight.monitor.labels`), ``predictions`` what was predicted,
        ``scores`` the positive class's probability (for AUC and CBPE). A window with no
        logged predictions is refused, and then nothing is written.
        """
        lab = _column_of(labels, "labels")
        n = len(lab)
        pred = _column_of(predictions, "predictions")
        if len(pred) != n:
            raise DataError(f"Got {len(pred)} predictions for {n} labels.")
        if n == 0:
            return []
        ids, starts = self.spec.assign(timestamps if not isinstance(timestamps, str) else None)
        if len(ids) != n:
            raise DataError(f"Got {len(ids)} timestamps for {n} labels.")
        cols = {"label": lab, "prediction": pred}
        if scores is not None:
            sc = _column_of(scores, "scores")
            if len(sc) != n:
                raise DataError(f"Got {len(sc)} scores for {n} labels.")
            cols["score_bin"] = score_bins(sc, "scores")
        table = pa.table(cols)
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        cuts = np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1
        rows = table.take(pa.array(order))
        batch: dict[float, Counts] = {}
        for lo, hi in pairwise([0, *cuts.tolist(), n]):
            part = rows.slice(lo, hi - lo)
            counts: Counts = {
                "label|prediction": group_counts(part.column("label"), part.column("prediction"))
            }
            if "score_bin" in part.column_names:
                counts["label|score_bin"] = group_counts(
                    part.column("label"), part.column("score_bin")
                )
            batch[float(starts[order[lo]])] = counts
        self._add_counts(batch, also)
        return sorted(batch)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction that owns this monitor's windows until it ends."""
        store = self.ledger.store
        with store.write() as conn:
            if store.backend == "postgresql":
                _lock(conn, f"{self._project}\0{self.name}")
            yield conn

    def _stored(self, conn: Connection, starts: Iterable[float], *cols: Any) -> dict[float, Any]:
        """The stored rows (id, start and ``cols``) of the windows starting at ``starts``."""
        w = t.monitor_windows
        query = select(w.c.id, w.c.window_start, *cols).where(
            w.c.project == self._project,
            w.c.monitor == self.name,
            w.c.window_start.in_([float(s) for s in starts]),
        )
        return {float(r.window_start): r for r in conn.execute(query)}

    def _add_counts(
        self, batch: Mapping[float, Counts], also: Callable[[Connection], None] | None = None
    ) -> None:
        w = t.monitor_windows
        with self._writing() as conn:
            rows = self._stored(conn, batch, w.c.counts)
            missing = sorted(set(batch) - set(rows))
            if missing:
                raise DataError(
                    f"Monitor {self.name!r} has no predictions logged in the window starting "
                    f"{_fmt(missing[0])}"
                    + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                    + ": log the predictions before their labels, with the predictions' times."
                )
            now = time.time()
            for start, counts in batch.items():
                row = rows[start]
                conn.execute(
                    update(w)
                    .where(w.c.id == row.id)
                    .values(counts=merge_counts([row.counts, counts]), updated_at=now)
                )
            if also is not None:
                also(conn)

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
        if self.segments and predictions is None:
            raise DataError(
                f"Monitor {self.name!r} counts actions per segment: pass predictions= too."
            )
        for _, col, target in self._tables:
            for name in (col, target):
                if name not in table.column_names:
                    raise DataError(
                        f"The {'segment ' if name == col else ''}column {name!r} of monitor "
                        f"{self.name!r} is not in the features. Columns: "
                        f"{', '.join(table.column_names)}."
                    )
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

    def _save(
        self,
        batch: Mapping[float, tuple[DatasetProfile, Counts]],
        keys: Mapping[float, tuple[int, bytes]] | None = None,
        also: Callable[[Connection], None] | None = None,
    ) -> None:
        """Merge ``batch`` into the stored windows and write them in one transaction."""
        w = t.monitor_windows
        with self._writing() as conn:
            old = self._stored(conn, batch, w.c.profile, w.c.counts)
            now = time.time()
            inserts = []
            for start, (fresh, counts) in sorted(batch.items()):
                end = start + self.spec.width_s
                row = old.get(start)
                if row is None:
                    inserts.append(
                        {
                            "id": new_id("window"),
                            "project": self._project,
                            "monitor": self.name,
                            "window_start": start,
                            "window_end": end,
                            "n_rows": fresh.n_rows,
                            "profile": fresh.to_bytes(),
                            "counts": counts,
                            "created_at": now,
                            "updated_at": now,
                            "schema_version": SCHEMA_VERSION,
                        }
                    )
                    continue
                merged = DatasetProfile.merge(
                    [DatasetProfile.from_bytes(bytes(row.profile)), fresh]
                )
                conn.execute(
                    update(w)
                    .where(w.c.id == row.id)
                    .values(
                        n_rows=merged.n_rows,
                        profile=merged.to_bytes(),
                        counts=merge_counts([row.counts, counts]),
                        updated_at=now,
                    )
                )
            if inserts:
                conn.execute(w.insert(), inserts)
            if keys:
                conn.execute(
                    t.monitor_keys.insert(),
                    [
                        {
                            "id": new_id("keys"),
                            "project": self._project,
                            "monitor": self.name,
                            "window_start": start,
                            "n_rows": n,
                            "data": data,
                            "created_at": now,
                            "schema_version": SCHEMA_VERSION,
                        }
                        for start, (n, data) in sorted(keys.items())
                    ],
                )
            if also is not None:
                also(conn)

    # -- reading ---------------------------------------------------------------------

    def windows(self) -> list[float]:
        """Starts of the windows with stored rows, ascending."""
        w = t.monitor_windows
        with self.ledger.store.read() as conn:
            rows = conn.execute(
                select(w.c.window_start)
                .where(w.c.project == self._project, w.c.monitor == self.name)
                .order_by(w.c.window_start)
            )
            return [float(r[0]) for r in rows]

    @contextmanager
    def cached(self) -> Iterator[None]:
        """Within the block, each window is read and decoded once (nothing is logged)."""
        previous, self._cache = self._cache, {}
        try:
            yield
        finally:
            self._cache = previous

    def _load(self, starts: Sequence[float]) -> dict[float, tuple[DatasetProfile, Counts]]:
        """The stored profile and counts of each of ``starts`` found, in one query."""
        w = t.monitor_windows
        cache = self._cache
        out: dict[float, tuple[DatasetProfile, Counts]] = {}
        wanted = []
        for s in starts:
            if cache is not None and float(s) in cache:
                out[float(s)] = cache[float(s)]
            else:
                wanted.append(float(s))
        with self.ledger.store.read() as conn:
            for i in range(0, len(wanted), 500):
                rows = conn.execute(
                    select(w.c.window_start, w.c.profile, w.c.counts).where(
                        w.c.project == self._project,
                        w.c.monitor == self.name,
                        w.c.window_start.in_(wanted[i : i + 500]),
                    )
                )
                for r in rows:
                    out[float(r.window_start)] = (
                        DatasetProfile.from_bytes(bytes(r.profile)),
                        dict(r.counts),
                    )
                    if cache is not None:
                        cache[float(r.window_start)] = out[float(r.window_start)]
        return out

    def _window(self, start: Any) -> tuple[float, DatasetProfile, Counts]:
        begin = self._window_start(start)
        found = self._load([begin]).get(begin)
        if found is None:
            raise DataError(
                f"Monitor {self.name!r} has no rows in the window starting {_fmt(begin)}. "
                "Monitor.windows() lists the windows logged."
            )
        return begin, found[0], found[1]

    def window_profile(self, start: Any) -> DatasetProfile:
        """The profile of the window starting at (or holding) ``start``."""
        return self._window(start)[1]

    def window_counts(self, start: Any) -> Counts:
        """The count tables of the window starting at (or holding) ``start``."""
        return self._window(start)[2]

    def reference_profile(
        self, target_start: Any, rule: ReferenceRule | DatasetProfile
    ) -> tuple[DatasetProfile, ReferenceSelection]:
        """The merged profile of the reference windows of a target window, and the choice.

        A :class:`DatasetProfile` as ``rule`` (e.g. the training data's) is the
        reference as it is.
        """
        prof, _, selection = self.reference(target_start, rule)
        return prof, selection

    def reference(
        self, target_start: Any, rule: ReferenceRule | DatasetProfile
    ) -> tuple[DatasetProfile, Counts, ReferenceSelection]:
        """The reference of a target window: merged profile, merged counts, and the choice.

        A fixed profile has no count tables: its counts are empty.
        """
        if isinstance(rule, DatasetProfile):
            selection = ReferenceSelection(
                indices=np.empty(0, dtype=np.int64),
                description=f"a fixed profile of {rule.n_rows} rows ({rule.digest[:12]})",
                complete=True,
                expected=0,
                found=0,
            )
            return rule, {}, selection
        target = self._window_start(target_start)
        starts = np.asarray(self.windows(), dtype=np.float64)
        selection = reference_windows(target, starts, rule, spec=self.spec)
        if selection.indices.size == 0:
            raise DataError(
                f"The reference rule {rule.to_dict()} found no logged window of monitor "
                f"{self.name!r} for the window starting {_fmt(target)}: "
                f"{selection.description}. Log more history or pick another rule."
            )
        found = self._load([float(starts[i]) for i in selection.indices])
        parts = [found[k] for k in sorted(found)]
        profiles = [prof for prof, _ in parts]
        merged = profiles[0] if len(profiles) == 1 else DatasetProfile.merge(profiles)
        return merged, merge_counts([c for _, c in parts]), selection

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


def _from_probabilities(probabilities: Any) -> tuple[np.ndarray, np.ndarray]:
    """The top probability and the entropy (natural log) of each row of class probabilities."""
    from scipy.special import entr

    try:
        arr = np.asarray(probabilities, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"probabilities= must be an n x k array of numbers: {exc}") from None
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise DataError(f"probabilities= must be n x k (k >= 2 classes). Got shape {arr.shape}.")
    if not np.isfinite(arr).all() or arr.min(initial=0.0) < 0 or arr.max(initial=0.0) > 1:
        raise DataError("probabilities= must be finite numbers in [0, 1].")
    sums = arr.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
    if bad.size:
        raise DataError(
            f"{bad.size} rows of probabilities= do not sum to 1 (row {int(bad[0])} sums to "
            f"{sums[bad[0]]:.6g}); pass softmax outputs."
        )
    return arr.max(axis=1), entr(arr).sum(axis=1)


def _column_of(values: Any, what: str) -> pa.Array | pa.ChunkedArray:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(f"{what} must be 1-D. Got shape {arr.shape}.")
    try:
        return pa.array(arr if arr.dtype != object else arr.tolist())
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{what} could not be read as one column: {exc}") from exc


def merge_counts(tables: Sequence[Mapping[str, Any]]) -> Counts:
    """The sum of several windows' count tables (counts are mergeable by addition)."""
    out: Counts = {}
    for table in tables:
        for col, segs in table.items():
            dst = out.setdefault(col, {})
            for seg, acts in segs.items():
                row = dst.setdefault(seg, {})
                for act, n in acts.items():
                    row[act] = row.get(act, 0) + int(n)
    return out


def _lock(conn: Connection, key: str) -> None:
    """A PostgreSQL advisory lock on ``key``, held until the transaction ends."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    number = int.from_bytes(digest[:8], "big", signed=True)
    conn.execute(sql_text("SELECT pg_advisory_xact_lock(:k)"), {"k": number})
