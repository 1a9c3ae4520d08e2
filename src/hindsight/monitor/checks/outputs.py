"""The model's outputs: confidence shifts, silent failures, serving-layer rates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import stats as sps

from hindsight.data.columns import CategoricalColumnProfile, NumericColumnProfile
from hindsight.errors import ConfigError
from hindsight.monitor.alerting import Finding
from hindsight.monitor.checks.base import WindowData, _column, _numeric, _unit
from hindsight.serving.rollout.stats import compare_rates

__all__ = ["ConfidenceCheck", "HealthCheck", "RateCheck"]


def _welch(cur: NumericColumnProfile, ref: NumericColumnProfile) -> tuple[float, float]:
    """Welch's t-test of two columns' means from their profiles' moments."""
    res = sps.ttest_ind_from_stats(
        cur.mean, cur.std, cur.n, ref.mean, ref.std, ref.n, equal_var=False
    )
    t_stat, p = float(res.statistic), float(res.pvalue)
    if not math.isfinite(p):  # both constant: no evidence either way
        t_stat, p = 0.0, 1.0 if cur.mean == ref.mean else 0.0
    return t_stat, p


@dataclass(frozen=True)
class ConfidenceCheck:
    """The window's mean confidence and low-confidence share against the reference.

    ``shifted`` when Welch's t-test of the means is significant at ``alpha`` and the mean
    moved by at least ``min_effect``, or the share below ``low`` rose significantly
    (two-proportion test) by at least ``min_effect``. The share is read off the
    profiles' quantile summaries (exact up to 2,049 distinct values; otherwise within
    their rank error). Where the monitor logged class probabilities, the mean entropy
    (``entropy_column``) is tested the same way, and a significant rise of at least
    ``min_effect`` (the model less sure between classes) flags the window too.
    """

    name: ClassVar[str] = "confidence"
    column: str = "confidence"
    entropy_column: str | None = "entropy"
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
        t_stat, p = _welch(cur, ref)
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
            f"p={p:.3g}); {low.detail}"
        )
        ent = self._entropy(current, reference)
        if ent is not None:
            evidence["entropy"] = ent
            shifted = shifted or ent["rose"]
            detail += (
                f"; mean entropy {ent['current']:.3f} vs {ent['reference']:.3f} "
                f"(p={ent['p_value']:.3g})"
            )
        detail += " — shifted" if shifted else ""
        return [Finding(self.name, window_start, self.column, cur.mean, shifted, detail, evidence)]

    def _entropy(self, current: WindowData, reference: WindowData) -> dict[str, Any] | None:
        if self.entropy_column is None:
            return None
        cur = _numeric(current.profile, self.entropy_column, "ConfidenceCheck")
        ref = _numeric(reference.profile, self.entropy_column, "ConfidenceCheck")
        if cur is None or ref is None or min(cur.n, ref.n) < self.min_samples:
            return None
        t_stat, p = _welch(cur, ref)
        rose = p < self.alpha and cur.mean - ref.mean >= self.min_effect
        return {
            "current": cur.mean,
            "reference": ref.mean,
            "welch_t": t_stat,
            "p_value": p,
            "rose": bool(rose),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "column": self.column,
            "entropy_column": self.entropy_column,
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
