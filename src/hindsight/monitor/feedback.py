"""Feedback loops of a recommender: concentrating exposure, and drift from a random holdout.

A recommender trained on its own logged clicks can feed on itself: items it shows get
clicks, clicks earn them more exposure, and the catalogue narrows. Two views:

* :func:`exposure` -- per window, how unequally the catalogue is shown: the Gini
  coefficient of item exposure counts, catalogue coverage (share of items shown at
  least once) and the share of exposure taken by the top 1 % of items; then the
  least-squares trend of the Gini over windows, flagged ``concentrating`` when its
  slope is significantly above zero.
* :func:`holdout_divergence` -- per window, the mean of a quality metric (click,
  reward) on the random holdout (exploration) slice against the treated traffic,
  their difference with a Welch interval, and the trend of that difference, flagged
  ``degrading`` when treated quality falls relative to the holdout over time.

**Gini convention.** Over ``m`` items with exposure counts ``x``,
``G = sum_i sum_j |x_i - x_j| / (2 m^2 mean(x))`` (half the relative mean absolute
difference), computed in ``O(m log m)`` as
``G = sum_i (2i - m - 1) x_(i) / (m sum(x))`` over the ascending order statistics.
Equal exposure gives 0; one item taking everything gives ``(m - 1) / m``. The ``m``
items are the whole catalogue ``0 .. catalogue_size - 1`` when ``catalogue_size`` is
given (items never shown count as zeros), else every item shown in any window of the
call (so an item shown early but not later counts as a zero later).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from hindsight._plain import plain_fields
from hindsight._validation import Interval, validate_params
from hindsight.errors import ConfigError, DataError
from hindsight.monitor.decisions import _as_1d, _encode, window_codes
from hindsight.monitor.windows import WindowSpec

__all__ = [
    "ExposureReport",
    "HoldoutReport",
    "Trend",
    "WindowExposure",
    "WindowHoldout",
    "exposure",
    "gini",
    "holdout_divergence",
    "linear_trend",
]


# --------------------------------------------------------------------------- statistics


def gini(counts: ArrayLike) -> NDArray[np.float64] | float:
    """Gini coefficient of non-negative counts (the last axis); NaN where all are zero.

    A 1-D input gives a float, a 2-D input one value per row. See the module docstring
    for the convention.
    """
    x = np.asarray(counts, dtype=np.float64)
    if x.ndim not in (1, 2) or x.shape[-1] == 0:
        raise DataError(f"gini: need a non-empty 1-D or 2-D array; got shape {x.shape}.")
    if not np.all(np.isfinite(x)) or x.min() < 0:
        raise DataError("gini: counts must be finite and non-negative.")
    m = x.shape[-1]
    ranked = np.sort(x, axis=-1)
    weights = 2.0 * np.arange(1, m + 1) - m - 1.0
    total = ranked.sum(axis=-1)
    num = ranked @ weights
    out = np.full(np.shape(total), np.nan)
    np.divide(num, m * total, out=out, where=total > 0)
    return float(out) if x.ndim == 1 else out


@dataclass(frozen=True)
class Trend:
    """Least-squares line ``y = intercept + slope * x`` over the windows, and its test.

    ``se`` is the usual OLS standard error of the slope (``n - 2`` degrees of
    freedom); ``p_value`` is one-sided in the direction of ``alternative``
    (``"greater"``: the slope is above zero, ``"less"``: below). ``flagged`` is
    ``p_value < alpha``. Fewer than three windows give ``None`` and no flag.
    """

    slope: float | None
    intercept: float | None
    se: float | None
    t: float | None
    df: int
    p_value: float | None
    alternative: str
    alpha: float
    flagged: bool

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


def linear_trend(
    x: ArrayLike,
    y: ArrayLike,
    *,
    alternative: Literal["greater", "less"] = "greater",
    alpha: float = 0.05,
) -> Trend:
    """OLS slope of ``y`` on ``x`` with its standard error and a one-sided t-test."""
    xs = np.asarray(x, dtype=np.float64).reshape(-1)
    ys = np.asarray(y, dtype=np.float64).reshape(-1)
    if xs.shape != ys.shape:
        raise DataError(f"linear_trend: x and y differ in length ({xs.size} vs {ys.size}).")
    n = xs.size
    df = max(n - 2, 0)
    xc = xs - xs.mean() if n else xs
    sxx = float(xc @ xc)
    if n < 3 or sxx == 0.0:
        return Trend(None, None, None, None, df, None, alternative, alpha, False)
    slope = float(xc @ (ys - ys.mean())) / sxx
    intercept = float(ys.mean() - slope * xs.mean())
    resid = ys - intercept - slope * xs
    se = math.sqrt(float(resid @ resid) / df / sxx)
    flat = math.copysign(math.inf, slope) if slope else 0.0  # an exact line: no noise
    t = slope / se if se > 0.0 else flat
    p = float(stats.t.sf(t, df) if alternative == "greater" else stats.t.cdf(t, df))
    return Trend(slope, intercept, se, t, df, p, alternative, alpha, p < alpha)


# --------------------------------------------------------------------------- exposure


@dataclass(frozen=True)
class WindowExposure:
    """How evenly one window's recommendations spread over the catalogue."""

    window: int
    label: str
    n_lists: int
    n_impressions: int
    n_items_shown: int
    gini: float | None
    coverage: float
    top_share: float | None

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class ExposureReport:
    """Per-window exposure and the trend of its Gini coefficient.

    ``catalogue_size`` is the number of items the Gini and coverage are taken over;
    ``catalogue_given`` says whether it came from the caller or from the items seen.
    ``top_items`` is how many items make the top ``top_fraction``.
    """

    windows: tuple[WindowExposure, ...]
    catalogue_size: int
    catalogue_given: bool
    top_fraction: float
    top_items: int
    trend: Trend
    concentrating: bool
    reason: str

    @property
    def gini(self) -> NDArray[np.float64]:
        return np.array([np.nan if w.gini is None else w.gini for w in self.windows])

    @property
    def coverage(self) -> NDArray[np.float64]:
        return np.array([w.coverage for w in self.windows])

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


def _items(
    recommended_items: ArrayLike, window: ArrayLike, row: ArrayLike | None, owner: str
) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.int64]]:
    """Flat item ids, each entry's window value and each entry's list code."""
    arr = np.asarray(recommended_items)
    if arr.ndim == 2:
        if row is not None:
            raise ConfigError(f"{owner}: 'row' is only for a flat array of item ids.")
        n_lists, k = arr.shape
        win = np.asarray(window)
        if win.ndim != 1 or win.shape[0] != n_lists:
            raise ConfigError(
                f"{owner}: 'window' needs one value per recommendation list ({n_lists}); "
                f"got shape {win.shape}."
            )
        return arr.reshape(-1), np.repeat(win, k), np.repeat(np.arange(n_lists, dtype=np.int64), k)
    if arr.ndim != 1:
        raise ConfigError(
            f"{owner}: 'recommended_items' must be an n x k array of lists or a flat array "
            f"with a 'row' index; got shape {arr.shape}."
        )
    if row is None:
        raise ConfigError(
            f"{owner}: a flat array of item ids needs 'row' (the list each entry belongs to)."
        )
    rows = _as_1d("row", row, arr.shape[0], owner)
    win = _as_1d("window", window, arr.shape[0], owner)
    _, r_code = _encode(rows, "row ids", owner)
    return arr, win, r_code


def exposure(
    recommended_items: ArrayLike,
    *,
    window: ArrayLike,
    row: ArrayLike | None = None,
    catalogue_size: int | None = None,
    spec: WindowSpec | None = None,
    top_fraction: float = 0.01,
    alpha: float = 0.05,
) -> ExposureReport:
    """Exposure inequality per window, and whether it is concentrating over time.

    ``recommended_items`` is an ``n x k`` array (one recommendation list per row,
    ``window`` one value per list) or a flat array of item ids with ``row`` naming
    the list of each entry (then ``window`` has one value per entry). ``window``
    holds integer window ids, or timestamps when ``spec`` is given. With
    ``catalogue_size`` the item ids must be integers in ``[0, catalogue_size)`` and
    items never shown count as zero exposure; without it the catalogue is every item
    shown in any window. ``top_share`` is the exposure share of the
    ``max(1, ceil(top_fraction * catalogue))`` most shown items.

    ``concentrating`` is set when the least-squares slope of the Gini over window ids
    is significantly above zero (one-sided t-test at ``alpha``).
    """
    owner = "exposure"
    validate_params(
        owner,
        {"catalogue_size": catalogue_size, "top_fraction": top_fraction, "alpha": alpha},
        {
            "catalogue_size": Interval(int, 1, allow_none=True),
            "top_fraction": Interval(float, 0.0, 1.0, closed="right"),
            "alpha": Interval(float, 0.0, 1.0, closed="neither"),
        },
    )
    items, win, list_id = _items(recommended_items, window, row, owner)
    w_code, w_ids, labels = window_codes(win, items.shape[0], owner, spec)
    if catalogue_size is not None:
        if items.dtype.kind not in "iu":
            raise DataError(
                f"{owner}: with catalogue_size the item ids must be integers; got dtype "
                f"{items.dtype}."
            )
        if items.size and (items.min() < 0 or items.max() >= catalogue_size):
            raise DataError(
                f"{owner}: item ids must lie in [0, {catalogue_size}) when catalogue_size="
                f"{catalogue_size}; got ids in [{items.min()}, {items.max()}]."
            )
        m = int(catalogue_size)
        i_code = items.astype(np.int64)
    else:
        vocab, i_code = _encode(items, "item ids", owner)
        m = max(int(vocab.size), 1)
    n_w = w_ids.size
    counts = np.bincount(w_code * m + i_code, minlength=n_w * m).reshape(n_w, m)
    totals = counts.sum(axis=1)
    g = np.asarray(gini(counts)) if n_w else np.empty(0)
    shown = (counts > 0).sum(axis=1)
    top_items = max(1, math.ceil(top_fraction * m))
    top = -np.partition(-counts, top_items - 1, axis=1)[:, :top_items].sum(axis=1)
    top_share = np.full(n_w, np.nan)
    np.divide(top, totals, out=top_share, where=totals > 0)
    pairs = np.unique(np.stack([w_code, list_id]), axis=1)  # one column per (window, list)
    n_lists = np.bincount(pairs[0], minlength=n_w)

    windows = tuple(
        WindowExposure(
            window=int(w_ids[i]),
            label=labels[i],
            n_lists=int(n_lists[i]),
            n_impressions=int(totals[i]),
            n_items_shown=int(shown[i]),
            gini=None if math.isnan(g[i]) else float(g[i]),
            coverage=float(shown[i]) / m,
            top_share=None if math.isnan(top_share[i]) else float(top_share[i]),
        )
        for i in range(n_w)
    )
    ok = np.isfinite(g)
    trend = linear_trend(w_ids[ok], g[ok], alternative="greater", alpha=alpha)
    if trend.slope is None:
        reason = f"too few windows with exposure ({int(ok.sum())}) to judge a Gini trend"
    else:
        verdict = "concentrating" if trend.flagged else "no significant concentration"
        reason = (
            f"{verdict}: Gini {g[ok][0]:.3f} -> {g[ok][-1]:.3f} over {int(ok.sum())} windows, "
            f"slope {trend.slope:+.4f} per window (se {trend.se:.4f}, one-sided "
            f"p={trend.p_value:.2g}); coverage {windows[0].coverage:.1%} -> "
            f"{windows[-1].coverage:.1%} of {m} items"
        )
    return ExposureReport(
        windows=windows,
        catalogue_size=m,
        catalogue_given=catalogue_size is not None,
        top_fraction=float(top_fraction),
        top_items=top_items,
        trend=trend,
        concentrating=trend.flagged,
        reason=reason,
    )


# --------------------------------------------------------------------------- holdout


@dataclass(frozen=True)
class WindowHoldout:
    """One window's quality on the holdout slice against the treated traffic.

    ``difference`` is ``treated_mean - holdout_mean`` with a Welch interval at the
    call's ``confidence``; ``None`` where either side has fewer than two rows.
    """

    window: int
    label: str
    n_holdout: int
    n_treated: int
    holdout_mean: float | None
    treated_mean: float | None
    difference: float | None
    se: float | None
    df: float | None
    ci_low: float | None
    ci_high: float | None

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class HoldoutReport:
    """Per-window holdout comparisons and the trend of the treated - holdout difference."""

    windows: tuple[WindowHoldout, ...]
    confidence: float
    trend: Trend
    degrading: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


def holdout_divergence(
    metric_values: ArrayLike,
    is_holdout: ArrayLike,
    *,
    window: ArrayLike,
    spec: WindowSpec | None = None,
    confidence: float = 0.95,
    alpha: float = 0.05,
) -> HoldoutReport:
    """Treated against holdout quality per window, and whether the gap is worsening.

    ``metric_values`` is one quality value per request (a click as 0/1, a reward);
    ``is_holdout`` a boolean mask of the random holdout / exploration slice. Per
    window: both means, ``treated - holdout`` and its Welch interval. ``degrading`` is
    set when the least-squares slope of that difference over window ids is
    significantly below zero (one-sided t-test at ``alpha``): treated traffic is losing
    ground to the unbiased holdout, the signature of a feedback loop.
    """
    owner = "holdout_divergence"
    validate_params(
        owner,
        {"confidence": confidence, "alpha": alpha},
        {
            "confidence": Interval(float, 0.0, 1.0, closed="neither"),
            "alpha": Interval(float, 0.0, 1.0, closed="neither"),
        },
    )
    vals = _as_1d("metric_values", metric_values, None, owner)
    n = vals.shape[0]
    try:
        y = vals.astype(np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{owner}: 'metric_values' must be numeric; got {vals.dtype}.") from None
    if not np.all(np.isfinite(y)):
        raise DataError(f"{owner}: 'metric_values' has NaN or infinite values; drop them first.")
    hold = _as_1d("is_holdout", is_holdout, n, owner)
    if hold.dtype != np.bool_:
        raise ConfigError(f"{owner}: 'is_holdout' must be a boolean mask; got {hold.dtype}.")
    w_code, w_ids, labels = window_codes(window, n, owner, spec)
    n_w = w_ids.size
    group = w_code * 2 + hold.astype(np.int64)  # 0: treated, 1: holdout
    cnt = np.bincount(group, minlength=2 * n_w).astype(np.float64)
    total = np.bincount(group, weights=y, minlength=2 * n_w)
    mean = np.full(2 * n_w, np.nan)
    np.divide(total, cnt, out=mean, where=cnt > 0)
    dev = y - mean[group]
    ss = np.bincount(group, weights=dev * dev, minlength=2 * n_w)
    var = np.full(2 * n_w, np.nan)
    np.divide(ss, cnt - 1.0, out=var, where=cnt > 1)
    cnt2, mean2, var2 = cnt.reshape(n_w, 2), mean.reshape(n_w, 2), var.reshape(n_w, 2)

    rows: list[WindowHoldout] = []
    diffs = np.full(n_w, np.nan)
    for i in range(n_w):
        nt, nh = int(cnt2[i, 0]), int(cnt2[i, 1])
        mt, mh = mean2[i, 0], mean2[i, 1]
        diff = se = df = lo = hi = None
        if nt >= 2 and nh >= 2:
            at, ah = var2[i, 0] / nt, var2[i, 1] / nh
            diff = float(mt - mh)
            se = math.sqrt(at + ah)
            if se > 0.0:
                df = (at + ah) ** 2 / (at * at / (nt - 1) + ah * ah / (nh - 1))
                half = float(stats.t.ppf(0.5 + confidence / 2.0, df)) * se
            else:
                half = 0.0
            lo, hi = diff - half, diff + half
            diffs[i] = diff
        rows.append(
            WindowHoldout(
                window=int(w_ids[i]),
                label=labels[i],
                n_holdout=nh,
                n_treated=nt,
                holdout_mean=None if nh == 0 else float(mh),
                treated_mean=None if nt == 0 else float(mt),
                difference=diff,
                se=se,
                df=df,
                ci_low=lo,
                ci_high=hi,
            )
        )
    ok = np.isfinite(diffs)
    trend = linear_trend(w_ids[ok], diffs[ok], alternative="less", alpha=alpha)
    if trend.slope is None:
        reason = f"too few windows with both slices ({int(ok.sum())}) to judge a trend"
    else:
        verdict = (
            "treated quality is falling relative to the holdout"
            if trend.flagged
            else "no significant fall of treated quality relative to the holdout"
        )
        reason = (
            f"{verdict}: treated - holdout {diffs[ok][0]:+.4f} -> {diffs[ok][-1]:+.4f} over "
            f"{int(ok.sum())} windows, slope {trend.slope:+.5f} per window (se "
            f"{trend.se:.5f}, one-sided p={trend.p_value:.2g})"
        )
    return HoldoutReport(
        windows=tuple(rows),
        confidence=float(confidence),
        trend=trend,
        degrading=trend.flagged,
        reason=reason,
    )
