"""Checks of one stored window against its reference, from window aggregates alone.

A scheduled monitor keeps no raw rows: each window is a mergeable profile plus count
tables (:mod:`hindsight.monitor.core`). Every check here reads only those, so it runs
on a window logged a month ago as well as on the last hour, and a reference merged from
many windows costs no more than one. Each check is a small frozen value with a stable
``name`` (what :class:`~hindsight.monitor.alerting.AlertRule` matches on) and
``judge(window_start, current, reference) -> list[Finding]``:

* :class:`DriftCheck` — input, feature and prediction drift: the drift engine on the two
  profiles (Benjamini-Hochberg across columns, effect thresholds at large n), one
  finding per column.
* :class:`ConfidenceCheck` — the mean confidence (Welch's t-test from the profiles'
  moments, as ``scipy.stats.ttest_ind_from_stats``) and the low-confidence share.
* :class:`HealthCheck` — silent failures of the predictions: NaN/missing bursts and
  constant or near-constant output.
* :class:`DecisionCheck` — each action's rate in each segment (approve, block, ...)
  against the same segment's reference rate, Benjamini-Hochberg across them.
* :class:`RateCheck` — the share of true values of a boolean column, such as the
  serving log's ``fell_back`` or ``abstained``: rising fallback and abstention rates.
* :class:`ExposureCheck` and :class:`HoldoutCheck` — feedback loops: recommended items'
  exposure concentrating over time, and treated traffic falling behind a random holdout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
from scipy import stats as sps

from hindsight.data.columns import CategoricalColumnProfile, NumericColumnProfile
from hindsight.data.profile import DatasetProfile
from hindsight.drift.engine import drift_report
from hindsight.errors import ConfigError
from hindsight.monitor.alerting import Finding
from hindsight.monitor.feedback import gini, linear_trend
from hindsight.monitor.online_fdr import LordPlusPlus
from hindsight.monitor.signals import bh_adjust
from hindsight.serving.rollout.stats import compare_rates

__all__ = [
    "Check",
    "ConfidenceCheck",
    "DecisionCheck",
    "DriftCheck",
    "ExposureCheck",
    "HealthCheck",
    "HoldoutCheck",
    "RateCheck",
    "WindowData",
    "check_from_dict",
]


@dataclass(frozen=True)
class WindowData:
    """What a check reads of a window (or of a merged reference): profile and counts."""

    profile: DatasetProfile
    counts: Mapping[str, Mapping[str, Mapping[str, int]]]
    description: str = ""


class Check(Protocol):
    """What a check is: a stable name, a verdict per window, a serialisable form."""

    name: ClassVar[str]

    def judge(
        self,
        window_start: float,
        current: WindowData,
        reference: WindowData,
        memory: dict[str, Any] | None = None,
    ) -> list[Finding]: ...  # pragma: no cover - a protocol

    def to_dict(self) -> dict[str, Any]: ...  # pragma: no cover - a protocol


def _column(prof: DatasetProfile, name: str) -> Any:
    return prof.columns.get(name)


def _unit(owner: str, name: str, value: float, *, open_low: bool = True) -> float:
    v = float(value)
    ok = (0.0 < v < 1.0) if open_low else (0.0 <= v < 1.0)
    if not ok:
        raise ConfigError(f"The '{name}' parameter of {owner} must be in (0, 1). Got {value!r}.")
    return v


@dataclass(frozen=True)
class DriftCheck:
    """Drift of every column (or ``columns``) of a window against its reference.

    Within a window, Benjamini-Hochberg across columns (the drift engine's, with its
    effect thresholds at large n). Across windows, ``repeated="lord"`` (the default)
    tests each window at its LORD++ level (:mod:`hindsight.monitor.online_fdr`) instead
    of ``alpha``, so a monitor that checks every hour for months keeps its false
    discovery rate at ``alpha`` rather than raising a false alarm every ``1 / alpha``
    windows; ``repeated="none"`` tests every window at ``alpha``. A column is flagged
    when it drifts and its adjusted p-value is within the window's level.
    """

    name: ClassVar[str] = "drift"
    columns: tuple[str, ...] | None = None
    alpha: float = 0.05
    repeated: str = "lord"

    def __post_init__(self) -> None:
        _unit("DriftCheck", "alpha", self.alpha)
        if self.columns is not None:
            object.__setattr__(self, "columns", tuple(self.columns))
        if self.repeated not in ("lord", "none"):
            raise ConfigError(
                f"DriftCheck: repeated must be 'lord' or 'none'. Got {self.repeated!r}."
            )

    def judge(
        self,
        window_start: float,
        current: WindowData,
        reference: WindowData,
        memory: dict[str, Any] | None = None,
    ) -> list[Finding]:
        report = drift_report(
            reference.profile, current.profile, columns=self.columns, alpha=self.alpha
        )
        level = self.alpha
        if self.repeated == "lord":
            mem = {} if memory is None else memory
            lord = (
                LordPlusPlus.from_dict(mem["lord"]) if "lord" in mem else LordPlusPlus(self.alpha)
            )
            level = lord.level()
            # The window's test: the smallest adjusted p-value among columns whose effect
            # is large enough to count (Simes' test of "no column drifted").
            candidates: list[float] = [
                0.0 if col.override or col.p_adjusted is None else col.p_adjusted
                for col in report.columns
                if col.override
                or (
                    col.p_adjusted is not None
                    and (col.effect_threshold is None or col.effect_size >= col.effect_threshold)
                )
            ]
            lord.test(min(candidates) if candidates else 1.0)
            mem["lord"] = lord.to_dict()
        out = []
        for col in report.columns:
            within = col.override or (col.p_adjusted is not None and col.p_adjusted <= level)
            flagged = bool(col.drifted and within)
            d = col.to_dict()
            d.pop("plot", None)
            out.append(
                Finding(
                    monitor=self.name,
                    window_start=window_start,
                    key=col.column,
                    value=col.effect_size,
                    flagged=flagged,
                    detail=(
                        f"{col.column}: {col.test} {col.effect_name} {col.effect_size:.3g}"
                        + (
                            f", adjusted p {col.p_adjusted:.3g}"
                            if col.p_adjusted is not None
                            else ""
                        )
                        + f" (window level {level:.3g})"
                        + (" — drifted" if flagged else "")
                        + f" against {reference.description or report.reference_source}"
                    ),
                    evidence={**d, "window_level": level, "plot": col.plot},
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "columns": self.columns,
            "alpha": self.alpha,
            "repeated": self.repeated,
        }


def _numeric(prof: DatasetProfile, column: str, owner: str) -> NumericColumnProfile | None:
    col = _column(prof, column)
    if col is None:
        return None
    if not isinstance(col, NumericColumnProfile):
        raise ConfigError(
            f"{owner}: column {column!r} is {col.kind}, not numeric; point column= at the "
            "confidence scores."
        )
    return col


@dataclass(frozen=True)
class ConfidenceCheck:
    """The window's mean confidence and low-confidence share against the reference.

    ``shifted`` when Welch's t-test of the means is significant at ``alpha`` and the mean
    moved by at least ``min_effect``, or the share below ``low`` rose significantly
    (two-proportion test) by at least ``min_effect``. The share is read off the
    profiles' quantile summaries (exact up to 2,049 distinct values; otherwise within
    their rank error).
    """

    name: ClassVar[str] = "confidence"
    column: str = "confidence"
    low: float = 0.6
    alpha: float = 0.01
    min_effect: float = 0.02
    min_samples: int = 30

    def __post_init__(self) -> None:
        _unit("ConfidenceCheck", "low", self.low)
        _unit("ConfidenceCheck", "alpha", self.alpha)
        if self.min_effect < 0 or self.min_samples < 2:
            raise ConfigError(
                "ConfidenceCheck: min_effect must be >= 0 and min_samples >= 2. "
                f"Got {self.min_effect!r}, {self.min_samples!r}."
            )

    def _low_count(self, col: NumericColumnProfile) -> int:
        lo, hi = col.summary.rank_bounds(np.array([self.low]), strict=True)
        return round((int(lo[0]) + int(hi[0])) / 2)

    def judge(
        self,
        window_start: float,
        current: WindowData,
        reference: WindowData,
        memory: dict[str, Any] | None = None,
    ) -> list[Finding]:
        cur = _numeric(current.profile, self.column, "ConfidenceCheck")
        ref = _numeric(reference.profile, self.column, "ConfidenceCheck")
        if cur is None or ref is None:
            return []
        n_c, n_r = cur.n, ref.n
        evidence: dict[str, Any] = {
            "reference": {"n": n_r, "mean": ref.mean, "std": ref.std},
            "current": {"n": n_c, "mean": cur.mean, "std": cur.std},
        }
        if n_c < self.min_samples or n_r < self.min_samples:
            detail = (
                f"{n_c} confidence values in the window and {n_r} in the reference, fewer "
                f"than the {self.min_samples} needed"
            )
            return [
                Finding(
                    self.name,
                    window_start,
                    self.column,
                    cur.mean if n_c else None,
                    False,
                    detail,
                    evidence,
                )
            ]
        res = sps.ttest_ind_from_stats(
            cur.mean, cur.std, n_c, ref.mean, ref.std, n_r, equal_var=False
        )
        t_stat, p = float(res.statistic), float(res.pvalue)
        if not math.isfinite(p):  # both constant: no evidence either way
            t_stat, p = 0.0, 1.0 if cur.mean == ref.mean else 0.0
        moved = cur.mean - ref.mean
        mean_shift = p < self.alpha and abs(moved) >= self.min_effect
        low = compare_rates(
            self._low_count(ref),
            n_r,
            self._low_count(cur),
            n_c,
            alpha=self.alpha,
            min_effect=self.min_effect,
            name=f"share below {self.low:g}",
            min_samples=self.min_samples,
        )
        evidence.update(welch_t=t_stat, p_value=p, mean_change=moved, low_share=low.to_dict())
        shifted = mean_shift or low.status == "worse"
        detail = (
            f"mean confidence {cur.mean:.3f} vs {ref.mean:.3f} (Welch t={t_stat:.2f}, "
            f"p={p:.3g}); {low.detail}" + (" — shifted" if shifted else "")
        )
        return [Finding(self.name, window_start, self.column, cur.mean, shifted, detail, evidence)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "column": self.column,
            "low": self.low,
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "min_samples": self.min_samples,
        }


@dataclass(frozen=True)
class HealthCheck:
    """Silent failures of the predictions: missing/NaN bursts and constant output.

    ``nan`` when the share of missing or NaN predictions exceeds ``nan_share``;
    ``constant`` when one value takes more than ``top_share`` of a categorical column,
    or a numeric column's spread falls below ``min_std_ratio`` of the reference's.
    """

    name: ClassVar[str] = "health"
    column: str = "prediction"
    nan_share: float = 0.01
    top_share: float = 0.98
    min_std_ratio: float = 0.05
    min_samples: int = 20

    def __post_init__(self) -> None:
        _unit("HealthCheck", "nan_share", self.nan_share)
        _unit("HealthCheck", "top_share", self.top_share)
        _unit("HealthCheck", "min_std_ratio", self.min_std_ratio)

    def judge(
        self,
        window_start: float,
        current: WindowData,
        reference: WindowData,
        memory: dict[str, Any] | None = None,
    ) -> list[Finding]:
        col = _column(current.profile, self.column)
        if col is None:
            return []
        ref = _column(reference.profile, self.column)
        n = int(col.count)
        missing = int(col.missing)
        share = missing / n if n else 0.0
        reasons = []
        evidence: dict[str, Any] = {"rows": n, "missing": missing, "missing_share": share}
        if n >= self.min_samples and share > self.nan_share:
            reasons.append(f"{share:.1%} of predictions missing or NaN (> {self.nan_share:.1%})")
        valid = n - missing
        if isinstance(col, CategoricalColumnProfile) and valid >= self.min_samples:
            top = int(col.counts[0]) if len(col.counts) else 0
            evidence.update(top_value=col.labels[0] if col.labels else None, top_share=top / valid)
            if top / valid > self.top_share:
                reasons.append(
                    f"constant output: {col.labels[0]!r} is {top / valid:.1%} of predictions "
                    f"(> {self.top_share:.0%})"
                )
        elif isinstance(col, NumericColumnProfile) and valid >= self.min_samples:
            evidence["std"] = col.std
            if isinstance(ref, NumericColumnProfile) and ref.n > 1 and ref.std > 0:
                ratio = col.std / ref.std
                evidence.update(reference_std=ref.std, std_ratio=ratio)
                if ratio < self.min_std_ratio:
                    reasons.append(
                        f"near-constant output: spread {col.std:.3g} is {ratio:.1%} of the "
                        f"reference's {ref.std:.3g}"
                    )
        detail = "; ".join(reasons) or f"{valid} predictions, {share:.1%} missing"
        return [
            Finding(self.name, window_start, self.column, share, bool(reasons), detail, evidence)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "column": self.column,
            "nan_share": self.nan_share,
            "top_share": self.top_share,
            "min_std_ratio": self.min_std_ratio,
            "min_samples": self.min_samples,
        }


@dataclass(frozen=True)
class DecisionCheck:
    """Each action's rate per segment of ``segment`` against that segment's reference.

    Every (segment, action) rate is compared with the two-proportion test (Fisher's exact
    test for small cells); a comparison is ``shifted`` when its Benjamini-Hochberg
    adjusted p-value across all of the window's comparisons is below ``alpha`` and the
    rate moved by more than ``min_effect`` either way. ``actions`` limits the actions
    watched (default: all).
    """

    name: ClassVar[str] = "decisions"
    segment: str = ""
    actions: tuple[str, ...] | None = None
    alpha: float = 0.05
    min_effect: float = 0.005
    min_samples: int = 30

    def __post_init__(self) -> None:
        if not isinstance(self.segment, str) or not self.segment:
            raise ConfigError(
                "DecisionCheck needs segment=, a column the monitor counts actions by "
                "(Monitor(segments=[...]))."
            )
        _unit("DecisionCheck", "alpha", self.alpha)
        if self.actions is not None:
            object.__setattr__(self, "actions", tuple(str(a) for a in self.actions))

    def judge(
        self,
        window_start: float,
        current: WindowData,
        reference: WindowData,
        memory: dict[str, Any] | None = None,
    ) -> list[Finding]:
        cur = current.counts.get(self.segment)
        if cur is None:
            raise ConfigError(
                f"DecisionCheck: the window has no counts by {self.segment!r}; add it to the "
                "monitor's segments."
            )
        ref = reference.counts.get(self.segment, {})
        rows = []
        for seg in sorted(cur):
            c_acts, r_acts = cur[seg], ref.get(seg, {})
            n_c, n_r = sum(c_acts.values()), sum(r_acts.values())
            actions = self.actions or tuple(sorted(set(c_acts) | set(r_acts)))
            for act in actions:
                x_c, x_r = int(c_acts.get(act, 0)), int(r_acts.get(act, 0))
                j = compare_rates(
                    # Only its p-value and interval are used: BH decides below.
                    x_r,
                    n_r,
                    x_c,
                    n_c,
                    alpha=self.alpha,
                    min_effect=self.min_effect,
                    name=f"{act} rate",
                    min_samples=self.min_samples,
                )
                rows.append((seg, act, x_c, n_c, x_r, n_r, j))
        p = np.array([np.nan if r[6].p_value is None else r[6].p_value for r in rows])
        q = bh_adjust(p) if len(rows) else p
        out = []
        for (seg, act, x_c, n_c, x_r, n_r, j), qv in zip(rows, q.tolist(), strict=True):
            rate_c = x_c / n_c if n_c else None
            rate_r = x_r / n_r if n_r else None
            moved = None if rate_c is None or rate_r is None else rate_c - rate_r
            shifted = (
                not math.isnan(qv)
                and qv < self.alpha
                and moved is not None
                and abs(moved) > self.min_effect
            )
            if rate_c is None:
                detail = f"no {seg!r} rows in the window"
            elif rate_r is None:
                detail = f"{act} rate for segment {seg!r} {rate_c:.2%}: no reference rows"
            else:
                detail = (
                    f"{act} rate for segment {seg!r} {rate_r:.2%} -> {rate_c:.2%} "
                    f"({x_c}/{n_c} vs {x_r}/{n_r}"
                    + ("" if math.isnan(qv) else f", adjusted p {qv:.3g}")
                    + ")"
                    + (" — shifted" if shifted else "")
                )
            out.append(
                Finding(
                    monitor=self.name,
                    window_start=window_start,
                    key=f"{self.segment}={seg} / {act}",
                    value=rate_c,
                    flagged=bool(shifted),
                    detail=detail,
                    evidence={
                        "segment": seg,
                        "action": act,
                        "events": x_c,
                        "n": n_c,
                        "reference_events": x_r,
                        "reference_n": n_r,
                        "p_value": j.p_value,
                        "p_adjusted": None if math.isnan(qv) else qv,
                        "difference_ci": j.effect_ci,
                    },
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "segment": self.segment,
            "actions": self.actions,
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "min_samples": self.min_samples,
        }


def _true_count(col: Any) -> tuple[int, int]:
    """True values and non-missing values of a boolean (or 0/1) column."""
    if isinstance(col, CategoricalColumnProfile):
        freq = col.frequencies()
        trues = sum(n for label, n in freq.items() if str(label).lower() in ("true", "1"))
        return int(trues), int(col.n)
    if isinstance(col, NumericColumnProfile):
        if col.n and (col.min < 0 or col.max > 1 or not col.integer_valued):
            raise ConfigError(
                f"RateCheck: column {col.name!r} must be boolean or 0/1; its values run from "
                f"{col.min:g} to {col.max:g}."
            )
        # A 0/1 column: its mean is the share of ones.
        return (round(col.mean * col.n) if col.n else 0), int(col.n)
    raise ConfigError(f"RateCheck: column {col.name!r} is neither boolean nor 0/1.")


@dataclass(frozen=True)
class RateCheck:
    """The share of true values of a boolean column (``fell_back``, ``abstained``).

    ``worse`` when the two-proportion test is significant at ``alpha`` and the rate rose
    by at least ``min_effect`` (fell, with ``higher_is_worse=False``).
    """

    name: ClassVar[str] = "rates"
    column: str = "fell_back"
    alpha: float = 0.01
    min_effect: float = 0.01
    higher_is_worse: bool = True
    min_samples: int = 100

    def __post_init__(self) -> None:
        _unit("RateCheck", "alpha", self.alpha)

    def judge(
        self,
        window_start: float,
        current: WindowData,
        reference: WindowData,
        memory: dict[str, Any] | None = None,
    ) -> list[Finding]:
        cur = _column(current.profile, self.column)
        ref = _column(reference.profile, self.column)
        if cur is None or ref is None:
            return []
        (x_c, n_c), (x_r, n_r) = _true_count(cur), _true_count(ref)
        j = compare_rates(
            x_r,
            n_r,
            x_c,
            n_c,
            alpha=self.alpha,
            min_effect=self.min_effect,
            higher_is_worse=self.higher_is_worse,
            name=f"{self.column} rate",
            min_samples=self.min_samples,
        )
        return [
            Finding(
                self.name,
                window_start,
                self.column,
                x_c / n_c if n_c else None,
                j.status == "worse",
                j.detail,
                j.to_dict(),
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "column": self.column,
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "higher_is_worse": self.higher_is_worse,
            "min_samples": self.min_samples,
        }


@dataclass(frozen=True)
class ExposureCheck:
    """Exposure concentration of recommended items (feedback loops), window by window.

    The window's item counts come from its profile of ``column`` (one recommended item
    per row; exact for the 1,000 most frequent items, the rest pooled). Reported: the
    Gini coefficient of exposure over ``catalogue`` items (default: the items seen in
    the window and its reference), catalogue coverage and the top ``top`` items' share.
    ``flagged`` when the Gini rose by at least ``min_increase`` over the reference's
    and, across the last ``trend_windows`` windows judged (kept in the check's memory),
    the Gini climbs significantly (one-sided OLS slope test at ``alpha``).
    """

    name: ClassVar[str] = "exposure"
    column: str = "prediction"
    catalogue: int | None = None
    top: int = 10
    min_increase: float = 0.03
    trend_windows: int = 12
    alpha: float = 0.05

    def __post_init__(self) -> None:
        _unit("ExposureCheck", "alpha", self.alpha)
        if self.trend_windows < 3 or self.top < 1 or self.min_increase < 0:
            raise ConfigError(
                "ExposureCheck: trend_windows must be >= 3, top >= 1 and min_increase >= 0."
            )

    def _counts(self, prof: DatasetProfile) -> dict[str, int] | None:
        col = _column(prof, self.column)
        if col is None:
            return None
        if not isinstance(col, CategoricalColumnProfile):
            raise ConfigError(
                f"ExposureCheck: column {self.column!r} must hold item ids as categories "
                f"(strings); it is {col.kind}."
            )
        return col.frequencies()

    def _gini(self, counts: dict[str, int], items: list[str]) -> float:
        x = np.array([counts.get(i, 0) for i in items], dtype=np.float64)
        return float(gini(x))

    def judge(
        self,
        window_start: float,
        current: WindowData,
        reference: WindowData,
        memory: dict[str, Any] | None = None,
    ) -> list[Finding]:
        cur, ref = self._counts(current.profile), self._counts(reference.profile)
        if not cur or ref is None:
            return []
        items = sorted(set(cur) | set(ref))
        if self.catalogue is not None:
            items += [f"\0unseen{i}" for i in range(max(0, self.catalogue - len(items)))]
        g_cur, g_ref = self._gini(cur, items), self._gini(ref, items)
        n = sum(cur.values())
        top_share = sum(sorted(cur.values(), reverse=True)[: self.top]) / n if n else 0.0
        coverage = sum(1 for v in cur.values() if v > 0) / len(items)
        mem = {} if memory is None else memory
        history = [*mem.get("gini", []), [window_start, g_cur]][-self.trend_windows :]
        mem["gini"] = history
        trend = linear_trend(
            [h[0] for h in history],
            [h[1] for h in history],
            alternative="greater",
            alpha=self.alpha,
        )
        rose = g_cur - g_ref >= self.min_increase
        flagged = bool(rose and trend.flagged)
        detail = (
            f"exposure Gini {g_cur:.3f} vs {g_ref:.3f} in the reference; top {self.top} items "
            f"{top_share:.1%} of {n} recommendations, coverage {coverage:.1%}; trend over "
            f"{len(history)} windows "
            + ("rising" if trend.flagged else "not significant")
            + (" — concentrating" if flagged else "")
        )
        evidence = {
            "gini": g_cur,
            "reference_gini": g_ref,
            "top_share": top_share,
            "coverage": coverage,
            "items": len(items),
            "trend": trend.to_dict(),
        }
        return [Finding(self.name, window_start, self.column, g_cur, flagged, detail, evidence)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "column": self.column,
            "catalogue": self.catalogue,
            "top": self.top,
            "min_increase": self.min_increase,
            "trend_windows": self.trend_windows,
            "alpha": self.alpha,
        }


@dataclass(frozen=True)
class HoldoutCheck:
    """Quality of treated traffic against a random holdout slice in the same window.

    Reads the count table ``slice|outcome`` (``Monitor(crosstabs=[("slice",
    "clicked")])``): the share of true ``outcome`` values in the ``holdout`` slice and in
    every other slice of the same window, so both sides see the same day and the same
    users. ``flagged`` when treated traffic falls behind the holdout by more than
    ``min_effect`` (two-proportion test at ``alpha``); a recommender reinforcing its own
    choices shows as treated quality sliding below the holdout's.
    """

    name: ClassVar[str] = "holdout"
    slice_column: str = "slice"
    outcome: str = "clicked"
    holdout: str = "holdout"
    alpha: float = 0.05
    min_effect: float = 0.01
    min_samples: int = 50

    def __post_init__(self) -> None:
        _unit("HoldoutCheck", "alpha", self.alpha)

    def judge(
        self,
        window_start: float,
        current: WindowData,
        reference: WindowData,
        memory: dict[str, Any] | None = None,
    ) -> list[Finding]:
        key = f"{self.slice_column}|{self.outcome}"
        table = current.counts.get(key)
        if table is None:
            raise ConfigError(
                f"HoldoutCheck: the window has no counts {key!r}; add "
                f"crosstabs=[({self.slice_column!r}, {self.outcome!r})] to the monitor."
            )
        if self.holdout not in table:
            return []

        def share(row: Mapping[str, int]) -> tuple[int, int]:
            trues = sum(v for k, v in row.items() if str(k).lower() in ("true", "1", "1.0"))
            return trues, sum(row.values())

        x_h, n_h = share(table[self.holdout])
        out = []
        for arm in sorted(a for a in table if a != self.holdout):
            x_t, n_t = share(table[arm])
            j = compare_rates(
                x_h,
                n_h,
                x_t,
                n_t,
                alpha=self.alpha,
                min_effect=self.min_effect,
                higher_is_worse=False,
                name=f"{self.outcome} rate",
                min_samples=self.min_samples,
            )
            flagged = j.status == "worse"
            detail = f"{arm} vs {self.holdout}: {j.detail}" + (" — behind" if flagged else "")
            out.append(
                Finding(
                    self.name,
                    window_start,
                    f"{self.slice_column}={arm}",
                    x_t / n_t if n_t else None,
                    flagged,
                    detail,
                    j.to_dict(),
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "slice_column": self.slice_column,
            "outcome": self.outcome,
            "holdout": self.holdout,
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "min_samples": self.min_samples,
        }


_CHECKS: dict[str, Any] = {
    c.name: c
    for c in (
        DriftCheck,
        ConfidenceCheck,
        HealthCheck,
        DecisionCheck,
        RateCheck,
        ExposureCheck,
        HoldoutCheck,
    )
}


def check_from_dict(spec: Mapping[str, Any], where: str = "check") -> Check:
    """A check from its ``to_dict()`` form (``{"check": "decisions", "segment": ...}``)."""
    if not isinstance(spec, Mapping) or "check" not in spec:
        raise ConfigError(
            f"{where} must be a mapping with 'check': one of {', '.join(_CHECKS)}. Got {spec!r}."
        )
    kind = spec["check"]
    cls = _CHECKS.get(kind)
    if cls is None:
        raise ConfigError(f"{where}: unknown check {kind!r}; use one of {', '.join(_CHECKS)}.")
    options = {k: v for k, v in spec.items() if k != "check"}
    fields = set(cls.__dataclass_fields__) - {"name"}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ConfigError(
            f"{where}: {kind} takes {', '.join(sorted(fields))}; unknown: {', '.join(unknown)}."
        )
    for key in ("columns", "actions"):
        if isinstance(options.get(key), Sequence) and not isinstance(options[key], str):
            options[key] = tuple(options[key])
    check: Check = cls(**options)
    return check
