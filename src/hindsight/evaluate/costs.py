"""What a binary model's mistakes cost, at every threshold, and the threshold that costs least.

A false positive costs ``fp`` (a blocked genuine payment, a rejected good candidate) and
a false negative ``fn`` (a fraud let through); either may be one number or one cost per
row (the transaction's amount). Correct decisions cost ``tp`` and ``tn`` (0 by default;
a review's cost, say). For scores ``s`` and a threshold ``t`` the decision is positive
when ``s >= t``. :func:`cost_curve` gives the expected cost per decision at every
distinct score from one sort and cumulative sums, so a million rows cost a sort;
:func:`best_threshold` picks the cheapest and bootstraps it (Poisson weights, the same
sort reused) for a confidence interval.

For calibrated scores and constant costs the cheapest threshold is the Bayes decision
``fp / (fp + fn)`` (for ``tp = tn = 0``); the tests check that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hindsight._plain import plain_fields
from hindsight.errors import ConfigError, DataError

__all__ = ["CostCurve", "ThresholdChoice", "best_threshold", "cost_curve", "decision_costs",
           "poisson_interval"]

_Float = NDArray[np.float64]
_KEYS = ("tp", "fp", "fn", "tn")


def _labels(y_true: ArrayLike, owner: str, what: str = "y_true") -> NDArray[np.bool_]:
    y = np.asarray(y_true)
    if y.ndim != 1 or y.size == 0:
        raise DataError(f"{owner}: {what} must be a non-empty 1-D array. Got shape {y.shape}.")
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise DataError(f"{owner}: {what} has missing values; drop the unlabelled rows first.")
    values = np.unique(y)
    if y.dtype.kind not in "biuf" or not set(values.tolist()) <= {0, 1}:
        raise DataError(
            f"{owner}: {what} must be 0/1 (or bool) for a binary cost; got values "
            f"{values[:5].tolist()}. Map the positive class to 1 first."
        )
    return y.astype(bool)


def _scores(scores: ArrayLike, n: int, owner: str) -> _Float:
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (n,):
        raise DataError(f"{owner}: need one score per label ({n}); got shape {s.shape}.")
    if not np.isfinite(s).all():
        raise DataError(f"{owner}: scores must be finite numbers.")
    return s


def _costs(costs: Mapping[str, Any], n: int, owner: str) -> dict[str, _Float]:
    if not isinstance(costs, Mapping) or not costs:
        raise ConfigError(
            f"{owner}: costs must map 'fp' and/or 'fn' (and optionally 'tp', 'tn') to a cost "
            "or an array of per-row costs, e.g. {'fp': 5, 'fn': amount}."
        )
    unknown = sorted(set(costs) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{owner}: unknown cost keys {unknown}; use tp, fp, fn and tn.")
    out = {}
    for key in _KEYS:
        value = np.asarray(costs.get(key, 0.0), dtype=np.float64)
        if value.ndim == 0:
            value = np.full(n, float(value))
        if value.shape != (n,):
            raise DataError(f"{owner}: cost {key!r} needs one value or one per row ({n}).")
        if not np.isfinite(value).all():
            raise DataError(f"{owner}: cost {key!r} has values that are not finite numbers.")
        out[key] = value
    return out


@dataclass(frozen=True)
class CostCurve:
    """Expected cost per decision at each candidate threshold (ascending)."""

    thresholds: _Float
    expected_cost: _Float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "thresholds": self.thresholds.tolist(),
            "expected_cost": self.expected_cost.tolist(),
            "n": self.n,
        }


def _sorted_costs(
    y: NDArray[np.bool_], s: _Float, c: dict[str, _Float]
) -> tuple[_Float, NDArray[np.intp], _Float, _Float]:
    """Thresholds (distinct scores, plus one above all) and per-row cost deltas by score."""
    order = np.argsort(-s, kind="stable")
    ys, ss = y[order], s[order]
    # Cost of a row when predicted positive minus when predicted negative.
    pos = np.where(ys, c["tp"][order], c["fp"][order])
    neg = np.where(ys, c["fn"][order], c["tn"][order])
    # Each distinct score is a threshold: rows with s >= t go positive. Group ends mark
    # the last row (in descending order) of each distinct score.
    ends = np.flatnonzero(np.r_[ss[1:] != ss[:-1], True])
    return ss, ends, pos - neg, neg


def cost_curve(y_true: ArrayLike, scores: ArrayLike, costs: Mapping[str, Any]) -> CostCurve:
    """Expected cost per decision at every distinct score used as the threshold.

    The first threshold is above every score (everything negative); then each distinct
    score, descending, turned into ascending order in the result.
    """
    owner = "cost_curve"
    y = _labels(y_true, owner)
    s = _scores(scores, y.size, owner)
    c = _costs(costs, y.size, owner)
    ss, ends, delta, neg = _sorted_costs(y, s, c)
    base = float(neg.sum())  # everything predicted negative
    totals = np.concatenate(([base], base + np.cumsum(delta)[ends]))
    thresholds = np.concatenate(([np.nextafter(ss[0], np.inf)], ss[ends]))
    return CostCurve(thresholds[::-1].copy(), (totals / y.size)[::-1].copy(), int(y.size))


def _row_costs(y: NDArray[np.bool_], pred: NDArray[np.bool_], c: dict[str, _Float]) -> _Float:
    return np.where(pred, np.where(y, c["tp"], c["fp"]), np.where(y, c["fn"], c["tn"]))


def decision_costs(y_true: ArrayLike, y_pred: ArrayLike, costs: Mapping[str, Any]) -> _Float:
    """What each binary decision cost: ``fp``, ``fn``, ``tp`` or ``tn`` of its row."""
    owner = "decision_costs"
    y = _labels(y_true, owner)
    pred = _labels(y_pred, owner, "y_pred")
    if pred.shape != y.shape:
        raise DataError(f"{owner}: need one decision per label ({y.size}); got {pred.size}.")
    return _row_costs(y, pred, _costs(costs, y.size, owner))


def poisson_interval(
    statistic: Callable[[_Float], float], n: int, bootstrap: int, confidence: float, seed: int
) -> tuple[float, float] | None:
    """A percentile bootstrap interval of ``statistic(weights)`` over Poisson(1) row weights.

    Reweighting instead of resampling lets a statistic reuse one sort of the rows.
    """
    if not bootstrap:
        return None
    rng = np.random.default_rng(seed)
    picks = np.array([statistic(rng.poisson(1.0, n).astype(np.float64)) for _ in range(bootstrap)])
    lo, hi = np.quantile(picks, [(1 - confidence) / 2, (1 + confidence) / 2])
    return (float(lo), float(hi))


@dataclass(frozen=True)
class ThresholdChoice:
    """The cheapest threshold, its expected cost per decision, and a bootstrap interval."""

    threshold: float
    expected_cost: float
    ci: tuple[float, float] | None
    confidence: float
    bootstrap: int
    cost_at_half: float

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


def best_threshold(
    y_true: ArrayLike,
    scores: ArrayLike,
    costs: Mapping[str, Any],
    *,
    bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> ThresholdChoice:
    """The threshold with the lowest expected cost, with a percentile bootstrap interval.

    Ties between thresholds of equal cost go to the highest (the fewest positives). The
    bootstrap reweights rows with Poisson(1) counts and reuses the one sort, so ``B``
    resamples cost ``B`` cumulative sums. ``cost_at_half`` is the cost at 0.5, the
    threshold a model is usually shipped with.
    """
    owner = "best_threshold"
    if not isinstance(bootstrap, int) or bootstrap < 0:
        raise ConfigError(f"{owner}: bootstrap must be an int >= 0. Got {bootstrap!r}.")
    if not 0 < confidence < 1:
        raise ConfigError(f"{owner}: confidence must be in (0, 1). Got {confidence!r}.")
    y = _labels(y_true, owner)
    s = _scores(scores, y.size, owner)
    c = _costs(costs, y.size, owner)
    ss, ends, delta, neg = _sorted_costs(y, s, c)
    thresholds = np.concatenate(([np.nextafter(ss[0], np.inf)], ss[ends]))

    def pick(weights: _Float | None) -> tuple[float, float]:
        w = np.ones(y.size) if weights is None else weights
        total_w = float(w.sum()) or 1.0
        curve = np.concatenate(
            ([float((neg * w).sum())], (neg * w).sum() + np.cumsum(delta * w)[ends])
        )
        i = int(np.argmin(curve))  # first minimum: the highest threshold among ties
        return float(thresholds[i]), float(curve[i] / total_w)

    t_best, cost_best = pick(None)
    ci = poisson_interval(lambda w: pick(w)[0], y.size, bootstrap, confidence, seed)
    at_half = float(_row_costs(y, s >= 0.5, c).mean())
    return ThresholdChoice(t_best, cost_best, ci, float(confidence), int(bootstrap), at_half)
