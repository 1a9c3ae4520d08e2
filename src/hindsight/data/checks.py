"""Dataset checks against a reference: schema, nulls, duplicates, ranges, categories, outliers.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = {"age": rng.normal(40, 10, 2000), "plan": rng.choice(["a", "b"], 2000)}
>>> cur = {"age": np.append(rng.normal(40, 10, 1990), [900.0] * 10), "plan": ["c"] * 2000}
>>> report = check_dataset(cur, reference=ref, checks=["range", "categories"])
>>> [(c.check, c.column, c.status) for c in report.failed]
[('categories', 'plan', 'fail')]
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from hindsight.data.columns import CategoricalColumnProfile, NumericColumnProfile, numeric_values
from hindsight.data.frames import column_kind, to_arrow
from hindsight.data.profile import DatasetProfile, ProfileOptions, profile_table
from hindsight.data.reference import resolve_reference
from hindsight.data.sketch import QuantileSummary, hash_floats, hash_strings
from hindsight.drift.engine import drift_report
from hindsight.errors import DataError, DataQualityError

__all__ = ["ALL_CHECKS", "CheckResult", "DatasetCheckReport", "check_dataset"]

#: Checks run by default, in order; "normality" runs only when asked.
ALL_CHECKS = ("schema", "nulls", "duplicates", "range", "categories", "outliers", "distribution")
_KNOWN = (*ALL_CHECKS, "normality")
_STATUS_ORDER = {"fail": 0, "warn": 1, "pass": 2}


@dataclass(frozen=True)
class CheckResult:
    """One check on one column (or on the whole dataset when ``column`` is None)."""

    check: str
    column: str | None
    status: str  # "pass", "warn" or "fail"
    message: str
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "column": self.column,
            "status": self.status,
            "message": self.message,
            "metrics": dict(self.metrics),
        }


@dataclass
class DatasetCheckReport:
    """Every check that ran, with its numbers; failed checks first."""

    results: list[CheckResult]
    n_rows: int
    reference: str | None

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "fail"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "warn"]

    @property
    def passed(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "hindsight.check_report/1",
            "passed": self.passed,
            "n_rows": self.n_rows,
            "reference": self.reference,
            "counts": {s: sum(r.status == s for r in self.results) for s in ("fail", "warn", "pass")},
            "results": [r.to_dict() for r in self.results],
        }

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def raise_for(self, level: str = "error") -> None:
        """Raise :class:`DataQualityError` naming every failed (or warned) check."""
        bad = self.failed if level == "error" else self.failed + self.warnings
        if bad:
            lines = "\n".join(
                f"- {r.check}{f' [{r.column}]' if r.column else ''}: {r.message}" for r in bad
            )
            raise DataQualityError(f"{len(bad)} data check(s) did not pass:\n{lines}", report=self)


def check_dataset(
    data: Any,
    reference: Any = None,
    *,
    checks: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    raise_on: str | None = None,
    max_null_increase: float = 0.05,
    max_duplicate_share: float = 0.01,
    range_tolerance: float = 0.01,
    unseen_tolerance: float = 0.01,
    outlier_method: str = "iqr",
    outlier_tolerance: float = 0.01,
    normality: Sequence[str] = (),
    options: ProfileOptions | None = None,
) -> DatasetCheckReport:
    """Check ``data`` (and, where given, check it against ``reference``).

    ``reference`` is data, a :class:`DatasetProfile`, a ``.hsprof`` file or a stored
    profile name. Without it only the checks that need none run (nulls, duplicates,
    normality). ``raise_on="error"`` raises :class:`DataQualityError` when a check
    fails; ``"warning"`` also on warnings. Shares and tolerances are fractions of rows.
    """
    wanted = list(checks) if checks is not None else list(ALL_CHECKS)
    if normality and "normality" not in wanted:
        wanted.append("normality")
    unknown = [c for c in wanted if c not in _KNOWN]
    if unknown:
        raise DataError(f"Unknown check(s) {', '.join(map(repr, unknown))}. Known: {', '.join(_KNOWN)}.")
    if raise_on not in (None, "error", "warning"):
        raise DataError(f"raise_on must be None, 'error' or 'warning'. Got {raise_on!r}.")
    if outlier_method not in ("iqr", "zscore"):
        raise DataError(f"outlier_method must be 'iqr' or 'zscore'. Got {outlier_method!r}.")
    opts = options or ProfileOptions()
    table = to_arrow(data, what="data")
    if table.num_rows == 0:
        raise DataError("The data has no rows; there is nothing to check.")
    names = list(columns) if columns is not None else table.column_names
    missing_cols = [c for c in names if c not in table.column_names]
    if missing_cols:
        raise DataError(
            f"Unknown column(s) {', '.join(map(repr, missing_cols))}. "
            f"Columns: {', '.join(table.column_names)}."
        )
    table = table.select(names)
    current = profile_table(table, opts)
    ref_prof: DatasetProfile | None = None
    ref_desc: str | None = None
    if reference is not None:
        resolved = resolve_reference(reference)
        ref_prof = resolved if isinstance(resolved, DatasetProfile) else profile_table(
            to_arrow(resolved, what="reference"), opts
        )
        ref_desc = f"{ref_prof.n_rows:,} rows (digest {ref_prof.digest[:12]})"

    results: list[CheckResult] = []
    needs_ref = {"schema", "range", "categories", "outliers", "distribution"}
    for check in wanted:
        if check in needs_ref and ref_prof is None:
            continue
        if check == "schema":
            assert ref_prof is not None
            results += _schema(table, current, ref_prof, columns)
        elif check == "nulls":
            results += _nulls(current, ref_prof, max_null_increase)
        elif check == "duplicates":
            results.append(_duplicates(table, max_duplicate_share))
        elif check == "range":
            assert ref_prof is not None
            results += _ranges(table, current, ref_prof, range_tolerance)
        elif check == "categories":
            assert ref_prof is not None
            results += _categories(current, ref_prof, unseen_tolerance)
        elif check == "outliers":
            assert ref_prof is not None
            results += _outliers(table, current, ref_prof, outlier_method, outlier_tolerance)
        elif check == "distribution":
            assert ref_prof is not None
            results += _distribution(current, ref_prof)
        elif check == "normality":
            results += _normality(table, current, normality)
    results.sort(key=lambda r: _STATUS_ORDER[r.status])
    report = DatasetCheckReport(results, table.num_rows, ref_desc)
    if raise_on is not None:
        report.raise_for(raise_on)
    return report


def _pct(x: float) -> str:
    return f"{x:.2%}"


def _schema(
    table: pa.Table, current: DatasetProfile, ref: DatasetProfile, columns: Sequence[str] | None
) -> list[CheckResult]:
    out: list[CheckResult] = []
    cur_kinds = {f.name: column_kind(f.type) for f in table.schema}
    ref_kinds = dict(ref.schema)
    scope = set(columns) if columns is not None else None
    for name, kind in ref_kinds.items():
        if scope is not None and name not in scope:
            continue
        if name not in cur_kinds:
            out.append(CheckResult("schema", name, "fail", f"column {name!r} is missing", {"expected": kind}))
        elif cur_kinds[name] != kind:
            out.append(
                CheckResult(
                    "schema",
                    name,
                    "fail",
                    f"column {name!r} is {cur_kinds[name]} but the reference has {kind}",
                    {"expected": kind, "got": cur_kinds[name]},
                )
            )
    extra = [n for n in cur_kinds if n not in ref_kinds and n not in ref.skipped]
    for name in extra:
        out.append(CheckResult("schema", name, "warn", f"column {name!r} is not in the reference", {}))
    if not out:
        out.append(CheckResult("schema", None, "pass", f"{len(current.columns)} columns match the reference", {}))
    return out


def _nulls(current: DatasetProfile, ref: DatasetProfile | None, max_increase: float) -> list[CheckResult]:
    out = []
    for name, col in current.columns.items():
        rate = col.null_rate
        ref_col = ref.columns.get(name) if ref is not None else None
        if ref_col is None:
            status = "warn" if rate == 1.0 else "pass"
            out.append(CheckResult("nulls", name, status, f"null rate {_pct(rate)}", {"null_rate": rate}))
            continue
        base = ref_col.null_rate
        increase = rate - base
        status = "fail" if increase > max_increase else "warn" if increase > max_increase / 5 else "pass"
        out.append(
            CheckResult(
                "nulls",
                name,
                status,
                f"null rate {_pct(rate)} vs {_pct(base)} in the reference (tolerance +{_pct(max_increase)})",
                {"null_rate": rate, "reference_null_rate": base, "increase": increase},
            )
        )
    return out


def _row_hashes(table: pa.Table) -> np.ndarray:
    """A 64-bit hash per row, combining every column's value hashes (nulls hash alike)."""
    h = np.zeros(table.num_rows, dtype=np.uint64)
    prime = np.uint64(0x100000001B3)
    for i, col in enumerate(table.columns):
        kind = column_kind(col.type)
        if kind in ("numeric", "datetime"):
            vals, nulls = numeric_values(col, kind)
            if nulls:
                full = np.zeros(table.num_rows)
                full[col.is_valid().to_numpy(zero_copy_only=False)] = vals
                vals = full
            ch = hash_floats(vals)
        else:
            enc = pc.cast(col, pa.string()).combine_chunks().dictionary_encode()
            codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            dict_h = hash_strings(enc.dictionary)
            ch = np.where(codes >= 0, dict_h[np.maximum(codes, 0)], np.uint64(i + 1))
        if col.null_count:
            ch = np.where(col.is_null().to_numpy(zero_copy_only=False), np.uint64(0xA5A5 + i), ch)
        with np.errstate(over="ignore"):
            h = (h ^ ch) * prime
    return h


def _duplicates(table: pa.Table, max_share: float) -> CheckResult:
    h = _row_hashes(table)
    dupes = int(h.size - np.unique(h).size)
    share = dupes / table.num_rows
    status = "fail" if share > max_share else "warn" if dupes else "pass"
    return CheckResult(
        "duplicates",
        None,
        status,
        f"{dupes:,} duplicate rows ({_pct(share)}; tolerance {_pct(max_share)})",
        {"duplicate_rows": dupes, "share": share},
    )


def _ranges(table: pa.Table, current: DatasetProfile, ref: DatasetProfile, tol: float) -> list[CheckResult]:
    out = []
    for name, col in current.columns.items():
        rc = ref.columns.get(name)
        if not isinstance(col, NumericColumnProfile) or not isinstance(rc, NumericColumnProfile) or rc.n == 0:
            continue
        if col.n == 0:
            continue
        lo_b, _ = col.summary.rank_bounds(np.array([rc.min]), strict=True)
        le_hi, _ = col.summary.rank_bounds(np.array([rc.max]))
        below, above = int(lo_b[0]), int(col.n - le_hi[0])
        share = (below + above) / col.n
        status = "fail" if share > tol else "warn" if below + above else "pass"
        out.append(
            CheckResult(
                "range",
                name,
                status,
                f"{below + above:,} values ({_pct(share)}) outside the reference range "
                f"[{rc.min:g}, {rc.max:g}]; current range [{col.min:g}, {col.max:g}]",
                {"below": below, "above": above, "share": share, "reference_min": rc.min, "reference_max": rc.max},
            )
        )
    return out


def _categories(current: DatasetProfile, ref: DatasetProfile, tol: float) -> list[CheckResult]:
    out = []
    for name, col in current.columns.items():
        rc = ref.columns.get(name)
        if not isinstance(col, CategoricalColumnProfile) or not isinstance(rc, CategoricalColumnProfile):
            continue
        known = set(rc.labels)
        unseen = [(lab, int(c)) for lab, c in zip(col.labels, col.counts, strict=True) if lab not in known]
        count = sum(c for _, c in unseen)
        share = count / col.n if col.n else 0.0
        # A reference that folded categories into "other" cannot tell new from rare.
        status = "fail" if share > tol else "warn" if unseen else "pass"
        if unseen and not rc.exact:
            status = "warn"
        names = ", ".join(repr(lab) for lab, _ in unseen[:5]) + (" ..." if len(unseen) > 5 else "")
        out.append(
            CheckResult(
                "categories",
                name,
                status,
                f"{len(unseen)} unseen categories in {_pct(share)} of rows" + (f": {names}" if unseen else ""),
                {"unseen": [lab for lab, _ in unseen[:50]], "unseen_rows": count, "share": share},
            )
        )
    return out


def _mad(s: QuantileSummary, median: float) -> float:
    """Median absolute deviation from ``median``, read off the quantile summary."""
    d = np.unique(np.abs(s.values - median))
    lo, _ = s.rank_bounds(median - d, strict=True)
    _, hi = s.rank_bounds(median + d)
    inside = (hi - lo) / max(s.n, 1)
    j = int(np.searchsorted(inside, 0.5, side="left"))
    return float(d[min(j, d.size - 1)])


def _fences(rc: NumericColumnProfile, method: str) -> tuple[float, float, dict[str, float]]:
    q1, med, q3 = rc.summary.quantiles([0.25, 0.5, 0.75])
    if method == "iqr":
        iqr = float(q3 - q1)
        return float(q1 - 3.0 * iqr), float(q3 + 3.0 * iqr), {"q1": float(q1), "q3": float(q3), "k": 3.0}
    mad = _mad(rc.summary, float(med))
    scale = mad / 0.6745 if mad > 0 else 0.0
    return float(med - 5.0 * scale), float(med + 5.0 * scale), {"median": float(med), "mad": mad, "z": 5.0}


def _outside_share(s: QuantileSummary, lo: float, hi: float) -> float:
    below, _ = s.rank_bounds(np.array([lo]), strict=True)
    inside_hi, _ = s.rank_bounds(np.array([hi]))
    return float((below[0] + s.n - inside_hi[0]) / max(s.n, 1))


def _outliers(
    table: pa.Table, current: DatasetProfile, ref: DatasetProfile, method: str, tol: float
) -> list[CheckResult]:
    out = []
    for name, col in current.columns.items():
        rc = ref.columns.get(name)
        if not isinstance(col, NumericColumnProfile) or not isinstance(rc, NumericColumnProfile):
            continue
        if rc.n == 0 or col.n == 0:
            continue
        lo, hi, params = _fences(rc, method)
        if not hi > lo:
            continue  # a constant reference: the range check covers it
        share = _outside_share(col.summary, lo, hi)
        base = _outside_share(rc.summary, lo, hi)
        excess = share - base
        status = "fail" if excess > tol else "warn" if excess > tol / 10 else "pass"
        label = "IQR fences (k=3)" if method == "iqr" else "robust z-score > 5"
        out.append(
            CheckResult(
                "outliers",
                name,
                status,
                f"{_pct(share)} of values beyond {label} [{lo:g}, {hi:g}] vs {_pct(base)} in the reference",
                {"share": share, "reference_share": base, "lower": lo, "upper": hi, **params},
            )
        )
    return out


def _distribution(current: DatasetProfile, ref: DatasetProfile) -> list[CheckResult]:
    report = drift_report(ref, current)
    out = []
    for f in report.columns:
        status = "fail" if f.drifted else "pass"
        p = f"adjusted p {f.p_adjusted:.3g}" if f.p_adjusted is not None else "no p-value"
        out.append(
            CheckResult(
                "distribution",
                f.column,
                status,
                f"{f.test} {f.effect_name} {f.effect_size:.4f}, {p}" + (" (drifted)" if f.drifted else ""),
                {"test": f.test, "effect_size": f.effect_size, "p_adjusted": f.p_adjusted, "drifted": f.drifted},
            )
        )
    return out


def _normality(table: pa.Table, current: DatasetProfile, wanted: Sequence[str]) -> list[CheckResult]:
    names = list(wanted) or [n for n, c in current.columns.items() if isinstance(c, NumericColumnProfile)]
    out = []
    for name in names:
        col = current.columns.get(name)
        if not isinstance(col, NumericColumnProfile):
            raise DataError(f"The normality test needs a numeric column; {name!r} is not one.")
        values, _ = numeric_values(table.column(name), col.kind)
        values = values[np.isfinite(values)]
        if values.size < 20:
            out.append(CheckResult("normality", name, "warn", f"only {values.size} values; need 20", {}))
            continue
        res = stats.normaltest(values)
        p = float(res.pvalue)
        status = "warn" if p < 0.05 else "pass"
        out.append(
            CheckResult(
                "normality",
                name,
                status,
                f"D'Agostino-Pearson K² {float(res.statistic):.3g}, p {p:.3g}"
                + (" (not normal)" if p < 0.05 else ""),
                {"statistic": float(res.statistic), "p_value": p},
            )
        )
    return out

