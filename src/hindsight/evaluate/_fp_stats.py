"""The statistics behind the false-positive analysis: effect sizes, intervals and tests.

Pure functions of NumPy arrays and counts, free of the report's types: Cohen's d (pooled
SD); for a 0/1 outcome the risk ratio (Katz interval), risk difference (Wald interval)
and Fisher p; for a numeric one the difference of means with Welch's test and interval;
the AUC of scores; and Benjamini-Hochberg q-values. Intervals are at :data:`CONFIDENCE`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import stats
from scipy.stats.contingency import relative_risk

__all__ = [
    "CONFIDENCE",
    "bh_q_values",
    "cohens_d",
    "divide",
    "mean_effects",
    "mean_or_none",
    "rank_auc",
    "rate_effects",
]

#: The level of every interval the analysis reports.
CONFIDENCE = 0.95
_Z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
_Bool = NDArray[np.bool_]
_Float = NDArray[np.float64]
_CI = tuple[float, float] | None
# ratio, its interval, difference, its interval, Cohen's d, p-value, test
_Effects = tuple[float | None, _CI, float | None, _CI, float | None, float | None, str]


# -- effect sizes --------------------------------------------------------------------


def divide(a: float, b: float) -> float:
    if b == 0:
        return math.inf if a > 0 else math.nan
    return a / b


def mean_or_none(x: _Float) -> float | None:
    return float(x.mean()) if x.size else None


def cohens_d(a: _Float, b: _Float) -> float | None:
    if a.size < 2 or b.size < 2:
        return None
    pooled = ((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2)
    return float((a.mean() - b.mean()) / math.sqrt(pooled)) if pooled > 0 else None


# -- outcomes ------------------------------------------------------------------------


def rate_effects(vf: _Float, vt: _Float) -> _Effects:
    """Risk ratio (Katz interval), risk difference (Wald interval) and Fisher p, FP vs TN."""
    a, n1, c, n0 = int(vf.sum()), int(vf.size), int(vt.sum()), int(vt.size)
    if not n1 or not n0:
        return None, None, None, None, None, None, "fisher"
    r1, r0 = a / n1, c / n0
    ratio, ratio_ci = divide(r1, r0), None
    if a and c:  # SciPy's interval needs cases in both groups
        rr = relative_risk(a, n1, c, n0)
        low, high = rr.confidence_interval(CONFIDENCE)
        ratio, ratio_ci = float(rr.relative_risk), (float(low), float(high))
    half = _Z * math.sqrt(r1 * (1 - r1) / n1 + r0 * (1 - r0) / n0)
    diff_ci = (r1 - r0 - half, r1 - r0 + half) if half > 0 else None
    p = None
    if 0 < a + c < n1 + n0:  # an outcome seen in nobody (or everybody) tests nothing
        p = float(stats.fisher_exact([[a, n1 - a], [c, n0 - c]]).pvalue)
    return ratio, ratio_ci, r1 - r0, diff_ci, None, p, "fisher"


def mean_effects(vf: _Float, vt: _Float) -> _Effects:
    """Ratio and difference of means (Welch interval), Cohen's d and Welch p, FP vs TN."""
    if not vf.size or not vt.size:
        return None, None, None, None, None, None, "welch"
    mf, mt = float(vf.mean()), float(vt.mean())
    ratio = mf / mt if mt > 0 and mf >= 0 else None  # a ratio of signed means says nothing
    p, ci = _welch(vf, vt) or (None, None)
    return ratio, None, mf - mt, ci, cohens_d(vf, vt), p, "welch"


def _welch(a: _Float, b: _Float) -> tuple[float, tuple[float, float]] | None:
    """Welch's two-sided p and interval for mean(a) - mean(b), from NumPy moments.

    ``ttest_ind_from_stats`` rather than ``ttest_ind``: the latter warns when a group is
    constant (spend 0 for everyone in it), a case Welch's test handles.
    """
    if a.size < 2 or b.size < 2:
        return None
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    if va + vb <= 0:
        return None
    res = stats.ttest_ind_from_stats(
        a.mean(), a.std(ddof=1), a.size, b.mean(), b.std(ddof=1), b.size, equal_var=False
    )
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * math.sqrt(va + vb)
    diff = float(a.mean() - b.mean())
    return float(res.pvalue), (diff - half, diff + half)


def rank_auc(score: _Float, events: _Bool) -> float:
    """AUC as the Mann-Whitney U of the scores of rows with the outcome, over n1·n0."""
    n1 = int(events.sum())
    n0 = events.size - n1
    ranks = stats.rankdata(score)  # average ranks: a tie counts one half
    return float((ranks[events].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


# -- multiple testing ----------------------------------------------------------------


def bh_q_values(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg q-values over the p-values that exist (None stays None)."""
    idx = [i for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    if idx:
        p = np.clip(np.array([p_values[i] for i in idx], dtype=np.float64), 0.0, 1.0)
        for i, q in zip(idx, stats.false_discovery_control(p, method="bh").tolist(), strict=True):
            out[i] = float(q)
    return out
