"""Compare one column of a reference with the same column of a current dataset.

Numeric columns get the two-sample KS test: exact from raw data on both sides, or
bracketed by :mod:`hindsight.drift.bounds` against a profile. Categorical columns,
and numeric columns with few distinct values, get the chi-square test of homogeneity
with the Jensen-Shannon distance as effect size.

Large samples make every difference significant, so above ``large_sample`` rows a
column drifts only when its effect size also clears a threshold: the larger of a
practical minimum (``min_effect``) and the null level at these sample sizes. For counts,
and for numeric columns with ties (at most 4,096 distinct values), the null level is
the largest effect among ``calibration_draws`` multinomial resamples of the reference
at the same sizes; for continuous columns it is the 99.9th percentile of the KS null,
which does not depend on the distribution (resampling would reproduce it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

from hindsight._validation import Interval, validate_params
from hindsight.data.buckets import Buckets, grid_for, ks_statistic
from hindsight.data.columns import (
    CategoricalColumnProfile,
    ColumnProfile,
    NumericColumnProfile,
)
from hindsight.drift.bounds import ks_bounds_sample, ks_bounds_summaries
from hindsight.drift.stattests import Counts, get_test
from hindsight.drift.stattests.ks import EXACT_LIMIT, ks_pvalue, ks_small
from hindsight.errors import DriftError

__all__ = ["ColumnDrift", "DriftSettings", "Side", "compare_column"]

_OTHER = "(other)"
_PLOT_BINS = 30
_PLOT_CATEGORIES = 15


@dataclass(frozen=True)
class DriftSettings:
    """How drift is decided; stored in every report."""

    alpha: float = 0.05
    #: Above this many rows on both sides, a column must also clear an effect threshold.
    large_sample: int = 10_000
    #: Practical minimum effect sizes for large samples, by effect name.
    min_effect: Mapping[str, float] = field(
        default_factory=lambda: {"ks_distance": 0.02, "jensen_shannon": 0.02}
    )
    #: Numeric columns with at most this many distinct reference values are compared as counts.
    discrete_max: int = 20
    calibration_draws: int = 200
    seed: int = 0
    #: A test name (from the registry) per column, overriding the automatic choice.
    tests: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_params(
            "drift_report",
            {
                "alpha": self.alpha,
                "large_sample": self.large_sample,
                "discrete_max": self.discrete_max,
                "calibration_draws": self.calibration_draws,
            },
            {
                "alpha": Interval(float, 0.0, 1.0, closed="neither"),
                "large_sample": Interval(int, 1, None),
                "discrete_max": Interval(int, 0, 10_000),
                "calibration_draws": Interval(int, 10, 100_000),
            },
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "large_sample": self.large_sample,
            "min_effect": dict(self.min_effect),
            "discrete_max": self.discrete_max,
            "calibration_draws": self.calibration_draws,
            "seed": self.seed,
            "tests": dict(self.tests),
        }


@dataclass(frozen=True)
class Side:
    """One side of a comparison: the column's profile and, for raw numeric data, its values."""

    profile: ColumnProfile
    buckets: Buckets | None = None


@dataclass
class ColumnDrift:
    """The drift finding of one column (``p_adjusted`` and ``drifted`` set by the report)."""

    column: str
    kind: str
    test: str
    statistic: float
    p_value: float | None
    effect_name: str
    effect_size: float
    effect_threshold: float | None  # None: decided by the p-value alone (small samples)
    n_reference: int
    n_current: int
    reference_null_rate: float
    current_null_rate: float
    details: dict[str, Any]
    plot: dict[str, Any]
    p_adjusted: float | None = None
    drifted: bool = False
    decided_by: str = "p_value"
    override: bool = False

    def to_dict(self) -> dict[str, Any]:
        def fin(x: float | None) -> float | None:
            return None if x is None or not np.isfinite(x) else float(x)

        return {
            "column": self.column,
            "kind": self.kind,
            "test": self.test,
            "statistic": fin(self.statistic),
            "p_value": fin(self.p_value),
            "p_adjusted": fin(self.p_adjusted),
            "effect_name": self.effect_name,
            "effect_size": fin(self.effect_size),
            "effect_threshold": fin(self.effect_threshold),
            "decided_by": self.decided_by,
            "drifted": self.drifted,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "reference_null_rate": self.reference_null_rate,
            "current_null_rate": self.current_null_rate,
            "details": self.details,
            "plot": self.plot,
        }


def _finding(
    name: str,
    rp: ColumnProfile,
    cp: ColumnProfile,
    test: tuple[str, float, float | None],
    effect: tuple[str, float, float | None],
    sizes: tuple[int, int],
    details: dict[str, Any],
    plot: dict[str, Any],
) -> ColumnDrift:
    """A finding from ``(test, statistic, p)``, ``(effect name, size, threshold)``, sizes."""
    return ColumnDrift(
        column=name,
        kind=rp.kind,
        test=test[0],
        statistic=test[1],
        p_value=test[2],
        effect_name=effect[0],
        effect_size=effect[1],
        effect_threshold=effect[2],
        n_reference=sizes[0],
        n_current=sizes[1],
        reference_null_rate=rp.null_rate,
        current_null_rate=cp.null_rate,
        details=details,
        plot=plot,
    )


def compare_column(name: str, ref: Side, cur: Side, settings: DriftSettings) -> ColumnDrift:
    """The drift finding of one column present on both sides."""
    rp, cp = ref.profile, cur.profile
    if rp.n == 0 or cp.n == 0:
        side = "reference" if rp.n == 0 else "current"
        raise DriftError(
            f"Column {name!r} has no usable values in the {side} data (all null or NaN); "
            "exclude it with columns=[...] or fix the data."
        )
    if name in settings.tests:
        return _override(name, ref, cur, settings.tests[name], settings)
    if isinstance(rp, NumericColumnProfile) and isinstance(cp, NumericColumnProfile):
        if rp.summary.exact and rp.summary.values.size <= settings.discrete_max and rp.integer_valued:
            return _discrete(name, ref, cur, settings)
        return _numeric(name, ref, cur, settings)
    if isinstance(rp, CategoricalColumnProfile) and isinstance(cp, CategoricalColumnProfile):
        return _categorical(name, _category_counts(rp, cp), rp, cp, settings)
    raise DriftError(
        f"Column {name!r} is {rp.kind} in the reference but {cp.kind} in the current data; "
        "it is reported as retyped and not tested."
    )


# -- numeric ----------------------------------------------------------------------------
def _numeric(name: str, ref: Side, cur: Side, settings: DriftSettings) -> ColumnDrift:
    rp, cp = ref.profile, cur.profile
    assert isinstance(rp, NumericColumnProfile) and isinstance(cp, NumericColumnProfile)
    n, m = rp.n, cp.n
    details: dict[str, Any] = {}
    if ref.buckets is not None and cur.buckets is not None:
        if max(n, m) <= EXACT_LIMIT:
            d, p, details["method"] = ks_small(ref.buckets.x, cur.buckets.x)
        else:
            a, b = ref.buckets, cur.buckets
            if a.grid != b.grid:
                grid = grid_for([a.x, b.x])
                a, b = Buckets.build(a.x, grid), Buckets.build(b.x, grid)
            d = ks_statistic(a, b)
            p = ks_pvalue(d, n, m)
            details["method"] = "asymptotic"
    else:
        if cur.buckets is not None:
            bounds = ks_bounds_sample(rp.summary, cur.buckets)
        elif ref.buckets is not None:
            bounds = ks_bounds_sample(cp.summary, ref.buckets)
        else:
            bounds = ks_bounds_summaries(rp.summary, cp.summary)
        d, d_high = bounds.low, bounds.high
        p = ks_pvalue(d, n, m)
        details["method"] = "profile" if d == d_high else "profile (bounded)"
        details["statistic_bounds"] = [d, d_high]
        details["p_value_bounds"] = [ks_pvalue(d_high, n, m), p]
    threshold = None
    if min(n, m) >= settings.large_sample:
        atoms = _atoms(ref)
        if atoms is not None:
            null_level = _ks_resampled_level(atoms, n, m, settings)
            details["null_method"] = "multinomial resamples of the reference"
        else:
            null_level = _ks_null_level(n, m)
            details["null_method"] = "Kolmogorov (continuous: resampling gives the same)"
        threshold = max(settings.min_effect.get("ks_distance", 0.0), null_level)
        details["null_level"] = null_level
    details["mean_shift_in_sd"] = (cp.mean - rp.mean) / rp.std if rp.std > 0 else None
    return _finding(
        name, rp, cp, ("ks", d, p), ("ks_distance", d, threshold), (n, m), details,
        _numeric_plot(rp, cp, ref, cur),
    )


_MAX_ATOMS = 4096


def _atoms(side: Side) -> np.ndarray | None:
    """Counts of each distinct reference value, when there are few (ties), else None."""
    prof = side.profile
    assert isinstance(prof, NumericColumnProfile)
    if side.buckets is not None:
        dv = side.buckets.distinct_values()
        counts = dv[1] if dv is not None else None
    elif prof.summary.exact:
        counts = prof.summary.le_lo - prof.summary.lt_lo
    else:
        counts = None
    if counts is None or not 1 < counts.size <= _MAX_ATOMS:
        return None
    return counts.astype(np.float64)


def _ks_resampled_level(atoms: np.ndarray, n: int, m: int, settings: DriftSettings) -> float:
    """Largest KS distance between multinomial resamples of a tied reference at sizes n, m.

    With ties the KS null depends on the distribution (and is smaller than Kolmogorov's),
    so it is calibrated on the reference itself.
    """
    rng = np.random.default_rng(settings.seed)
    p = atoms / atoms.sum()
    draws = settings.calibration_draws
    a = np.cumsum(rng.multinomial(n, p, size=draws), axis=1) / n
    b = np.cumsum(rng.multinomial(m, p, size=draws), axis=1) / m
    return float(np.abs(a - b).max())


def _ks_null_level(n: int, m: int) -> float:
    """99.9th percentile of the KS distance between two same-distribution samples.

    Kolmogorov's limiting distribution (used only above ``large_sample`` rows, where it
    agrees with the exact one to a fraction of a percent).
    """
    return float(special.kolmogi(0.001) / np.sqrt(n * m / (n + m)))


def _plot_range(rp: NumericColumnProfile, cp: NumericColumnProfile) -> tuple[float, float]:
    lo = float(min(rp.summary.quantiles([0.005])[0], cp.summary.quantiles([0.005])[0]))
    hi = float(max(rp.summary.quantiles([0.995])[0], cp.summary.quantiles([0.995])[0]))
    if not hi > lo:
        lo, hi = min(rp.min, cp.min), max(rp.max, cp.max)
    return lo, hi


def _numeric_plot(
    rp: NumericColumnProfile, cp: NumericColumnProfile, ref: Side | None = None, cur: Side | None = None
) -> dict[str, Any]:
    """Shares of both samples on shared bins between their 0.5th and 99.5th percentiles.

    Raw data on both sides is counted exactly; against a profile, the current side is
    counted to the bucket (within a share of about 1e-5) and the profile's side within
    its rank error.
    """
    lo, hi = _plot_range(rp, cp)
    if not hi > lo:
        return {"type": "histogram", "edges": [lo, lo], "reference": [1.0], "current": [1.0]}
    edges = np.linspace(lo, hi, _PLOT_BINS + 1)
    # Outer bins take everything beyond the plotted range so shares sum to one.
    exact = ref is not None and cur is not None and ref.buckets is not None and cur.buckets is not None
    ref_counts = _bin_counts(rp, ref, edges[1:-1], exact)
    cur_counts = _bin_counts(cp, cur, edges[1:-1], exact)
    return {
        "type": "histogram",
        "edges": [round(float(e), 12) for e in edges],
        "reference": [round(float(x), 6) for x in ref_counts / max(rp.n, 1)],
        "current": [round(float(x), 6) for x in cur_counts / max(cp.n, 1)],
    }


def _bin_counts(
    prof: NumericColumnProfile, side: Side | None, inner: np.ndarray, exact: bool
) -> np.ndarray:
    if side is not None and side.buckets is not None:
        b = side.buckets
        if exact:
            at = b.count_le(inner)
        else:
            lo, hi = b.count_bounds(inner)
            at = (lo + hi) // 2
        return np.diff(np.concatenate([[0], at, [b.n]])).astype(np.float64)
    counts, _ = prof.summary.bin_counts(inner)
    return counts


def _discrete(name: str, ref: Side, cur: Side, settings: DriftSettings) -> ColumnDrift:
    """A numeric column with few distinct values, compared as counts per value."""
    rp, cp = ref.profile, cur.profile
    assert isinstance(rp, NumericColumnProfile) and isinstance(cp, NumericColumnProfile)
    values = rp.summary.values
    ref_counts = (rp.summary.le_lo - rp.summary.lt_lo).astype(np.float64)
    if cur.buckets is not None:
        dv = cur.buckets.distinct_values()
        if dv is not None:  # counts per value straight from the buckets, no pass over x
            cur_values, per_value = dv
            at = np.clip(np.searchsorted(cur_values, values), 0, max(cur_values.size - 1, 0))
            hit = cur_values[at] == values if cur_values.size else np.zeros(values.size, bool)
            cur_counts = np.where(hit, per_value[at] if per_value.size else 0, 0).astype(np.float64)
        else:
            le, lt = cur.buckets.count_both(values)
            cur_counts = (le - lt).astype(np.float64)
    else:
        le_lo, le_hi = cp.summary.rank_bounds(values)
        lt_lo, lt_hi = cp.summary.rank_bounds(values, strict=True)
        cur_counts = np.maximum(((le_lo + le_hi) - (lt_lo + lt_hi)) / 2.0, 0.0)
    labels = [f"{v:g}" for v in values]
    unseen = float(cp.n - cur_counts.sum())
    if unseen > 0.5:
        ref_counts = np.append(ref_counts, 0.0)
        cur_counts = np.append(cur_counts, unseen)
        labels.append(_OTHER)
    result = _categorical(name, Counts(ref_counts, cur_counts, tuple(labels)), rp, cp, settings)
    result.details["discrete_numeric"] = True
    return result


# -- categorical --------------------------------------------------------------------------
def _category_counts(rp: CategoricalColumnProfile, cp: CategoricalColumnProfile) -> Counts:
    """Counts aligned on the union of both sides' labels, plus an "(other)" bucket if needed."""
    ref_map = rp.frequencies()
    cur_map = cp.frequencies()
    labels = list(rp.labels) + [lab for lab in cp.labels if lab not in ref_map]
    ref_counts = np.array([ref_map.get(lab, 0) for lab in labels], dtype=np.float64)
    cur_counts = np.array([cur_map.get(lab, 0) for lab in labels], dtype=np.float64)
    if rp.other_count or cp.other_count:
        labels.append(_OTHER)
        ref_counts = np.append(ref_counts, rp.other_count)
        cur_counts = np.append(cur_counts, cp.other_count)
    return Counts(ref_counts, cur_counts, tuple(labels))


def _categorical(
    name: str,
    counts: Counts,
    rp: ColumnProfile,
    cp: ColumnProfile,
    settings: DriftSettings,
) -> ColumnDrift:
    present = (counts.reference + counts.current) > 0
    ref_c, cur_c = counts.reference[present], counts.current[present]
    labels = tuple(np.asarray(counts.labels or (), dtype=object)[present]) if counts.labels else None
    n, m = int(ref_c.sum()), int(cur_c.sum())
    pooled_ref, pooled_cur, pooled = _pool_sparse(ref_c, cur_c)
    if pooled_ref.size < 2:
        stat, p = 0.0, 1.0
    else:
        res = stats.chi2_contingency(np.vstack([pooled_ref, pooled_cur]), correction=False)
        stat, p = float(res.statistic), float(res.pvalue)
    effect = float(jensenshannon(ref_c / n, cur_c / m, base=2))
    details: dict[str, Any] = {"categories": int(ref_c.size)}
    if pooled:
        details["pooled_for_test"] = pooled
    if labels is not None:
        unseen = [str(lab) for lab, rc, cc in zip(labels, ref_c, cur_c, strict=True) if rc == 0 and cc > 0]
        if unseen:
            details["unseen_categories"] = unseen[:20]
            details["unseen_share"] = float(cur_c[ref_c == 0].sum() / m)
    threshold = None
    if min(n, m) >= settings.large_sample:
        null_level = _js_null_level(ref_c, n, m, settings)
        threshold = max(settings.min_effect.get("jensen_shannon", 0.0), null_level)
        details["null_level"] = null_level
    return _finding(
        name, rp, cp, ("chi_square", stat, p), ("jensen_shannon", effect, threshold), (n, m),
        details, _category_plot(labels, ref_c / n, cur_c / m),
    )


def _pool_sparse(
    ref_c: np.ndarray, cur_c: np.ndarray, min_expected: float = 5.0
) -> tuple[np.ndarray, np.ndarray, int]:
    """Cells pooled until every expected count is at least ``min_expected`` (Cochran).

    The chi-square approximation fails on cells expected to hold fewer than about five
    rows: a rare value seen twice in a small window would look like strong drift. The
    rarest cells (by their total) are merged into one until its expected counts clear
    the bar. Returns the pooled tables and how many cells went into the pool (0: none).
    """
    total = ref_c + cur_c
    n_all = float(total.sum())
    if n_all <= 0 or ref_c.size < 2:
        return ref_c, cur_c, 0
    smaller = min(float(ref_c.sum()), float(cur_c.sum()))
    expected_min = total * smaller / n_all
    if expected_min.min() >= min_expected:
        return ref_c, cur_c, 0
    order = np.argsort(total, kind="stable")
    # Pool the k rarest cells, k the smallest count whose pooled expectation is enough
    # and which leaves every other cell above the bar (they are sorted, so it suffices
    # that the first cell left out clears it).
    cum = np.cumsum(total[order]) * smaller / n_all
    k = int(np.searchsorted(cum, min_expected, side="left")) + 1
    k = max(k, int(np.searchsorted(expected_min[order], min_expected, side="left")))
    k = min(k, order.size)
    keep, pool = np.sort(order[k:]), order[:k]
    ref_p = np.append(ref_c[keep], ref_c[pool].sum())
    cur_p = np.append(cur_c[keep], cur_c[pool].sum())
    return ref_p, cur_p, int(k) if k > 1 else 0


def _js_null_level(ref_c: np.ndarray, n: int, m: int, settings: DriftSettings) -> float:
    """Largest JS distance between multinomial resamples of the reference at sizes n and m."""
    rng = np.random.default_rng(settings.seed)
    p = ref_c / ref_c.sum()
    draws = settings.calibration_draws
    a = rng.multinomial(n, p, size=draws) / n
    b = rng.multinomial(m, p, size=draws) / m
    return float(jensenshannon(a, b, base=2, axis=1).max())


def _category_plot(
    labels: tuple[Any, ...] | None, ref_share: np.ndarray, cur_share: np.ndarray
) -> dict[str, Any]:
    names = [str(x) for x in (labels or range(ref_share.size))]
    order = np.argsort(-np.maximum(ref_share, cur_share), kind="stable")[:_PLOT_CATEGORIES]
    out_labels = [names[i] for i in order]
    ref_out = [round(float(ref_share[i]), 6) for i in order]
    cur_out = [round(float(cur_share[i]), 6) for i in order]
    if ref_share.size > _PLOT_CATEGORIES:
        out_labels.append("(rest)")
        ref_out.append(round(float(1.0 - sum(ref_out)), 6))
        cur_out.append(round(float(1.0 - sum(cur_out)), 6))
    return {"type": "bars", "labels": out_labels, "reference": ref_out, "current": cur_out}


# -- user-chosen tests --------------------------------------------------------------------
def _override(name: str, ref: Side, cur: Side, test_name: str, settings: DriftSettings) -> ColumnDrift:
    test = get_test(test_name)
    rp, cp = ref.profile, cur.profile
    if "multivariate" in test.kinds and len(test.kinds) == 1:
        raise DriftError(f"{test_name!r} is a multivariate test; it cannot be set for one column.")
    if isinstance(rp, CategoricalColumnProfile) and isinstance(cp, CategoricalColumnProfile):
        if "categorical" not in test.kinds:
            raise DriftError(
                f"Test {test_name!r} takes numeric data but column {name!r} is categorical."
            )
        counts = _category_counts(rp, cp)
        result = test(counts, None)
        plot = _category_plot(
            counts.labels, counts.reference / counts.n_reference, counts.current / counts.n_current
        )
    else:
        assert isinstance(rp, NumericColumnProfile) and isinstance(cp, NumericColumnProfile)
        if ref.buckets is None or cur.buckets is None:
            if "categorical" not in test.kinds:  # not a binned test
                raise DriftError(
                    f"Test {test_name!r} needs raw values on both sides, but column {name!r} "
                    "comes from a profile. Pass data, or choose ks, psi, jensen_shannon, "
                    "hellinger, kl_divergence or total_variation."
                )
            edges = np.unique(rp.summary.quantiles(np.linspace(0, 1, 11)[1:-1]))
            ref_counts, _ = rp.summary.bin_counts(edges)
            cur_counts, _ = cp.summary.bin_counts(edges)
            result = test(Counts(ref_counts, cur_counts), None)
        else:
            result = test(ref.buckets.x, cur.buckets.x)
        plot = _numeric_plot(rp, cp, ref, cur)
    drift = _finding(
        name,
        rp,
        cp,
        (result.test, result.statistic, result.p_value),
        (
            str(result.details.get("effect", "effect_size")),
            result.effect_size,
            result.threshold if result.threshold_on == "effect_size" else None,
        ),
        (rp.n, cp.n),
        {k: v for k, v in result.details.items() if k != "effect"},
        plot,
    )
    drift.override = True
    drift.drifted = result.drifted
    drift.decided_by = result.threshold_on
    return drift
