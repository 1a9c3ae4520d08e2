"""What a regression model's errors cost when over- and under-estimates cost differently.

Forecasting too little stock loses sales (``under`` per unit), too much ties up cash
(``over`` per unit); either may be one number or one per row. The cost of a row is
``under * max(y - ŷ, 0) + over * max(ŷ - y, 0)``, the pinball loss scaled. The constant
shift of the predictions that costs least is the ``under / (under + over)`` quantile of the
residuals ``y - ŷ`` (for constant costs; a weighted quantile for per-row ones), which
:func:`regression_costs` reports with a bootstrap interval, the regression analogue of a
classifier's cheapest threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hindsight._plain import plain_fields
from hindsight.errors import ConfigError, DataError
from hindsight.evaluate.costs import poisson_interval
from hindsight.evaluate.costs_multiclass import mean_ci

__all__ = ["RegressionCosts", "regression_costs", "regression_row_costs"]

_Float = NDArray[np.float64]


@dataclass(frozen=True)
class RegressionCosts:
    """Expected cost per prediction, the cheapest shift of the predictions, and its cost."""

    expected_cost: float
    expected_cost_ci: tuple[float, float]
    total_cost: float
    n: int
    under_share: float  # share of rows predicted below the truth
    best_shift: float
    best_shift_ci: tuple[float, float] | None
    cost_after_shift: float

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


def _weights(costs: Mapping[str, Any], n: int, owner: str) -> tuple[_Float, _Float]:
    unknown = sorted(set(costs) - {"under", "over"})
    if unknown or not costs:
        raise ConfigError(
            f"{owner}: regression costs map 'under' and/or 'over' to a cost per unit of error "
            f"(one number or one per row), e.g. {{'under': 3, 'over': 1}}. Got keys {sorted(costs)}."
        )
    out = []
    for key in ("under", "over"):
        value = np.asarray(costs.get(key, 0.0), dtype=np.float64)
        if value.ndim == 0:
            value = np.full(n, float(value))
        if value.shape != (n,) or not np.isfinite(value).all() or (value < 0).any():
            raise DataError(
                f"{owner}: cost {key!r} needs one non-negative number, or one per row ({n})."
            )
        out.append(value)
    return out[0], out[1]


def _cost(resid: _Float, under: _Float, over: _Float) -> _Float:
    return np.where(resid > 0, under * resid, -over * resid)


def _best_shift(resid: _Float, under: _Float, over: _Float, weights: _Float | None) -> float:
    """The shift ``d`` minimising ``sum w * cost(resid - d)``: a weighted quantile.

    The cost is piecewise linear in ``d`` with slope ``-under`` for rows above ``d`` and
    ``+over`` below, so the minimum is where the over-weight below first reaches the
    under-weight above.
    """
    w = np.ones(resid.size) if weights is None else weights
    order = np.argsort(resid, kind="stable")
    r, u, o = resid[order], under[order] * w[order], over[order] * w[order]
    # At the i-th smallest residual: over-weight at or below it against under-weight above.
    balanced = np.cumsum(o) >= u.sum() - np.cumsum(u)
    return float(r[int(np.argmax(balanced))])


def _inputs(
    y_true: ArrayLike, y_pred: ArrayLike, costs: Mapping[str, Any], owner: str
) -> tuple[_Float, _Float, _Float, _Float]:
    y = np.asarray(y_true, dtype=np.float64)
    yhat = np.asarray(y_pred, dtype=np.float64)
    if y.ndim != 1 or y.size == 0 or yhat.shape != y.shape:
        raise DataError(f"{owner}: need one prediction per label; got {yhat.shape} for {y.shape}.")
    if not (np.isfinite(y).all() and np.isfinite(yhat).all()):
        raise DataError(f"{owner}: labels and predictions must be finite numbers; drop NaN rows.")
    under, over = _weights(costs, y.size, owner)
    return y, yhat, under, over


def regression_row_costs(y_true: ArrayLike, y_pred: ArrayLike, costs: Mapping[str, Any]) -> _Float:
    """What each prediction's error cost: ``under`` per unit too low, ``over`` per unit too high."""
    y, yhat, under, over = _inputs(y_true, y_pred, costs, "regression_row_costs")
    return _cost(y - yhat, under, over)


def regression_costs(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    costs: Mapping[str, Any],
    *,
    bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> RegressionCosts:
    """Asymmetric linear cost of regression errors, and the constant shift that costs least."""
    owner = "regression_costs"
    if not isinstance(bootstrap, int) or bootstrap < 0:
        raise ConfigError(f"{owner}: bootstrap must be an int >= 0. Got {bootstrap!r}.")
    y, yhat, under, over = _inputs(y_true, y_pred, costs, owner)
    resid = y - yhat
    row = _cost(resid, under, over)
    shift = _best_shift(resid, under, over, None)
    ci = poisson_interval(
        lambda w: _best_shift(resid, under, over, w), y.size, bootstrap, confidence, seed
    )
    return RegressionCosts(
        expected_cost=float(row.mean()),
        expected_cost_ci=mean_ci(row, confidence),
        total_cost=float(row.sum()),
        n=int(y.size),
        under_share=float((resid > 0).mean()),
        best_shift=shift,
        best_shift_ci=ci,
        cost_after_shift=float(_cost(resid - shift, under, over).mean()),
    )
