"""``drift_report(reference, current)``: every shared column tested, corrected, decided.

Columns are compared side by side on a few threads (NumPy's sorts release the GIL);
each column's sorted values live only while that column is tested, so peak memory
stays near the size of the data itself.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = {"age": rng.normal(40, 10, 5000), "plan": rng.choice(["a", "b", "c"], 5000)}
>>> cur = {"age": rng.normal(45, 10, 5000), "plan": rng.choice(["a", "b", "c"], 5000)}
>>> report = drift_report(ref, cur)
>>> report.drifted_columns, report.drift_detected
(['age'], True)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
from scipy import stats

from hindsight.data.buckets import Grid, grid_for
from hindsight.data.columns import numeric_values
from hindsight.data.frames import column_kind, to_arrow
from hindsight.data.profile import DatasetProfile, ProfileOptions, profile_column
from hindsight.data.reference import resolve_reference
from hindsight.drift.compare import ColumnDrift, DriftSettings, Side, compare_column
from hindsight.drift.report import DriftReport, SchemaChange
from hindsight.drift.stattests import get_test
from hindsight.errors import DataError, DriftError

__all__ = ["drift_report"]

Progress = Callable[[str], None]


class _Source:
    """One side of the report: a profile, or an Arrow table profiled column by column."""

    def __init__(self, data: Any, role: str, options: ProfileOptions) -> None:
        self.role = role
        self.options = options
        self.profile: DatasetProfile | None = None
        self.table: pa.Table | None = None
        if isinstance(data, DatasetProfile):
            self.profile = data
            self.kinds = dict(data.schema)
            self.rows = data.n_rows
            self.description = f"profile ({data.n_rows:,} rows, digest {data.digest[:12]})"
        else:
            self.table = to_arrow(data, what=f"{role} data")
            if self.table.num_rows == 0:
                raise DataError(f"The {role} data has no rows; there is nothing to compare.")
            self.kinds = {
                f.name: kind for f in self.table.schema if (kind := column_kind(f.type)) is not None
            }
            self.rows = self.table.num_rows
            self.description = f"data ({self.rows:,} rows)"
        self.skipped = (
            dict(self.profile.skipped)
            if self.profile is not None
            else {
                f.name: str(f.type)
                for f in self.table.schema  # type: ignore[union-attr]
                if f.name not in self.kinds
            }
        )

    def values(self, name: str) -> tuple[np.ndarray, int] | None:
        """The raw numeric column as floats (and its null count), if this side has rows."""
        if self.table is None or self.kinds[name] not in ("numeric", "datetime"):
            return None
        return numeric_values(self.table.column(name), self.kinds[name])

    def side(
        self, name: str, values: tuple[np.ndarray, int] | None = None, grid: Grid | None = None
    ) -> Side:
        if self.profile is not None:
            return Side(self.profile[name])
        assert self.table is not None
        # The report shows no distinct counts, and its quantiles and plots need no exact
        # knots (KS reads the buckets): skip those passes over the values.
        prof, buckets = profile_column(
            name, self.table.column(name), self.options, values=values, grid=grid,
            sketch_distinct=False, exact_quantiles=False,
        )
        if prof is None:  # pragma: no cover - filtered out by kinds
            raise DriftError(f"Column {name!r} has an unsupported type.")
        return Side(prof, buckets)


def drift_report(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    alpha: float = 0.05,
    drift_share: float = 0.0,
    tests: Mapping[str, str] | None = None,
    min_effect: Mapping[str, float] | None = None,
    large_sample: int = 10_000,
    multivariate: Sequence[str] = (),
    options: ProfileOptions | None = None,
    progress: Progress | None = None,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column.

    ``reference`` is data (pandas, polars, Arrow, a Parquet/CSV path), a
    :class:`DatasetProfile`, a ``.hsprof`` file or the name of a stored profile;
    ``current`` is data or a profile. ``tests`` maps column names to registry test
    names to override the automatic choice; ``multivariate`` names multivariate tests
    (``"mmd"``, ``"c2st"``, ``"pca_reconstruction"``...) run on the numeric columns
    (raw data on both sides needed). ``drift_share`` is the share of drifted columns
    at which the dataset drifts (0: any column).
    """
    started = time.perf_counter()
    # The KS statistic never reads the summaries of raw data (the buckets answer it), so
    # raw sides keep fewer knots: they only feed the report's plots and discrete columns.
    opts = options or ProfileOptions(quantile_knots=64)
    base = DriftSettings()
    settings = DriftSettings(
        alpha=alpha,
        large_sample=large_sample,
        min_effect={**base.min_effect, **(min_effect or {})},
        tests=dict(tests or {}),
    )
    if not 0.0 <= drift_share <= 1.0:
        raise DriftError(f"The 'drift_share' parameter must be in [0, 1]. Got {drift_share!r}.")
    ref = _Source(resolve_reference(reference), "reference", opts)
    cur = _Source(resolve_reference(current), "current", opts)

    changes = _schema_changes(ref.kinds, cur.kinds)
    shared = [n for n in ref.kinds if n in cur.kinds and ref.kinds[n] == cur.kinds[n]]
    if columns is not None:
        unknown = [c for c in columns if c not in ref.kinds and c not in cur.kinds]
        if unknown:
            raise DriftError(
                f"Unknown column(s) {', '.join(map(repr, unknown))}. "
                f"Columns: {', '.join(ref.kinds)}."
            )
        wanted = set(columns)
        shared = [n for n in shared if n in wanted]
    unknown_tests = [c for c in settings.tests if c not in shared]
    if unknown_tests:
        raise DriftError(
            f"tests= names column(s) not compared: {', '.join(map(repr, unknown_tests))}."
        )

    def one(name: str) -> ColumnDrift:
        # Raw numeric data on both sides: read each once, bucket both on one grid.
        rv, cv = ref.values(name), cur.values(name)
        grid = grid_for([rv[0], cv[0]]) if rv is not None and cv is not None else None
        result = compare_column(name, ref.side(name, rv, grid), cur.side(name, cv, grid), settings)
        if progress is not None:
            progress(name)
        return result

    with ThreadPoolExecutor(opts.workers(len(shared))) as pool:
        findings = list(pool.map(one, shared))
    _decide(findings, settings)
    report = DriftReport(
        columns=findings,
        schema_changes=changes,
        settings=settings,
        drift_share=drift_share,
        n_reference=ref.rows,
        n_current=cur.rows,
        reference_source=ref.description,
        current_source=cur.description,
        skipped={**ref.skipped, **cur.skipped},
        multivariate=[_multivariate(t, ref, cur, shared) for t in multivariate],
    )
    report.seconds = time.perf_counter() - started
    return report


def _schema_changes(ref: Mapping[str, str], cur: Mapping[str, str]) -> list[SchemaChange]:
    out = [SchemaChange(n, "missing", k, None) for n, k in ref.items() if n not in cur]
    out += [SchemaChange(n, "extra", None, k) for n, k in cur.items() if n not in ref]
    out += [SchemaChange(n, "retyped", k, cur[n]) for n, k in ref.items() if n in cur and cur[n] != k]
    return out


def _decide(findings: list[ColumnDrift], settings: DriftSettings) -> None:
    """Benjamini-Hochberg across columns, then each column's rule."""
    auto = [f for f in findings if not f.override and f.p_value is not None]
    if auto:
        ps = np.array([f.p_value for f in auto], dtype=np.float64)
        adjusted = stats.false_discovery_control(np.clip(ps, 0.0, 1.0), method="bh")
        for f, q in zip(auto, adjusted, strict=True):
            f.p_adjusted = float(q)
            significant = bool(q < settings.alpha)
            if f.effect_threshold is None:
                f.drifted = significant
                f.decided_by = "p_value"
            else:
                f.drifted = significant and f.effect_size >= f.effect_threshold
                f.decided_by = "p_value and effect_size"


def _multivariate(test_name: str, ref: _Source, cur: _Source, shared: Sequence[str]) -> dict[str, Any]:
    """Run one multivariate test on the numeric columns both sides share (raw data only)."""
    test = get_test(test_name)
    if "multivariate" not in test.kinds:
        raise DriftError(f"{test_name!r} is not a multivariate test.")
    if ref.table is None or cur.table is None:
        raise DriftError(
            f"The multivariate test {test_name!r} needs raw data on both sides, not a profile."
        )
    cols = [n for n in shared if ref.kinds[n] in ("numeric", "datetime")]
    if len(cols) < 2:
        raise DriftError("Multivariate tests need at least two numeric columns shared by both sides.")
    a = _matrix(ref.table, cols, ref.kinds, seed=1)
    b = _matrix(cur.table, cols, cur.kinds, seed=2)
    result = test(a, b)
    return {**result.to_dict(), "columns": cols, "rows": [int(a.shape[0]), int(b.shape[0])]}


_MAX_MULTIVARIATE_ROWS = 20_000


def _matrix(table: pa.Table, cols: Sequence[str], kinds: Mapping[str, str], seed: int) -> np.ndarray:
    """Rows without nulls of ``cols`` as a float matrix, at most a seeded subsample."""
    n = table.num_rows
    rng = np.random.default_rng(seed)
    sub = table.select(list(cols))
    if n > _MAX_MULTIVARIATE_ROWS:
        take = np.sort(rng.choice(n, _MAX_MULTIVARIATE_ROWS, replace=False))
        sub = sub.take(pa.array(take))
    out = np.empty((sub.num_rows, len(cols)))
    keep = np.ones(sub.num_rows, dtype=bool)
    for j, name in enumerate(cols):
        col = sub.column(name)
        values, nulls = numeric_values(col, kinds[name])
        if nulls:
            full = np.full(sub.num_rows, np.nan)
            full[col.is_valid().to_numpy(zero_copy_only=False)] = values
            values = full
        out[:, j] = values
        keep &= np.isfinite(values)
    return out[keep]

