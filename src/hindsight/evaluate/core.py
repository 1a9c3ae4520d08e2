"""``evaluate()``: a model judged as production will judge it, by cost, segment and slice.

One call takes labels and decisions (or scores, or class probabilities, or regression
predictions), works out the task, and returns an :class:`Evaluation`: the usual metrics,
the expected cost per decision under the team's costs (with the cheapest threshold or
shift), the same per segment (new users against returning ones) and per named slice
(``amount > 1000``), and, when asked, the slices where error concentrates. Its
:meth:`Evaluation.flat` names every number the way ledger criteria read them
(``expected_cost``, ``recall@segment=new_users``, ``recall@slice=big``), so an experiment's
criteria judge an evaluation directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from hindsight._plain import plain, plain_fields
from hindsight.data.frames import to_arrow
from hindsight.errors import ConfigError, DataError
from hindsight.evaluate.costs import (
    CostCurve,
    ThresholdChoice,
    best_threshold,
    cost_curve,
    decision_costs,
)
from hindsight.evaluate.costs_multiclass import (
    CostMatrix,
    matrix_costs,
    matrix_row_costs,
    mean_ci,
)
from hindsight.evaluate.costs_regression import regression_costs, regression_row_costs
from hindsight.evaluate.metrics import (
    binary_metrics,
    multiclass_metrics,
    regression_metrics,
    reliability,
)
from hindsight.evaluate.slices import SliceReport, find_slices, slice_mask
from hindsight.ledger.criteria import Verdict, judge, parse_criteria

if TYPE_CHECKING:
    from hindsight.ledger import Experiment

__all__ = ["Evaluation", "SegmentResult", "evaluate"]

_TASKS = ("binary", "multiclass", "regression")
_MAX_LEVELS = 50
_CURVE_POINTS = 201
# Metrics kept per segment and slice (the overall result keeps all of them).
_SEGMENT_KEYS = {
    "binary": ("n", "prevalence", "positive_rate", "accuracy", "precision", "recall", "f1",
               "fpr", "auc", "brier", "ece"),
    "multiclass": ("n", "accuracy", "macro_precision", "macro_recall", "macro_f1"),
    "regression": ("n", "mae", "rmse", "r2", "bias"),
}


@dataclass(frozen=True)
class SegmentResult:
    """One segment's (or one named slice's) metrics and expected cost."""

    column: str  # the segment column, or "slice" for a named predicate
    value: str  # the segment's value, or the slice's name
    n: int
    share: float
    metrics: dict[str, float]
    expected_cost: float | None
    expr: str | None = None  # a slice's predicate

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class Evaluation:
    """Everything :func:`evaluate` found; ``flat()`` for criteria, ``to_dict()`` for reports."""

    task: str
    n: int
    metrics: dict[str, float]
    threshold: float | None = None
    costs: dict[str, Any] | None = None
    threshold_choice: ThresholdChoice | None = None
    curve: CostCurve | None = None
    reliability: dict[str, list[float]] | None = None
    confusion: dict[str, Any] | None = None
    segments: list[SegmentResult] = field(default_factory=list)
    slices: list[SegmentResult] = field(default_factory=list)
    found: SliceReport | None = None
    name: str | None = None

    def flat(self) -> dict[str, float]:
        """Every number by the name criteria use: ``metric`` and ``metric@column=value``."""
        out = {k: float(v) for k, v in self.metrics.items() if _is_number(v)}
        if self.costs is not None:
            out["expected_cost"] = float(self.costs["expected_cost"])
            out["total_cost"] = float(self.costs["total_cost"])
        if self.threshold_choice is not None:
            out["best_threshold"] = self.threshold_choice.threshold
            out["best_expected_cost"] = self.threshold_choice.expected_cost
        if self.costs is not None and self.costs.get("best_shift") is not None:
            out["best_shift"] = float(self.costs["best_shift"])
        for group in (self.segments, self.slices):
            for seg in group:
                where = f"{seg.column}={seg.value}"
                for key, value in seg.metrics.items():
                    if _is_number(value):
                        out[f"{key}@{where}"] = float(value)
                if seg.expected_cost is not None:
                    out[f"expected_cost@{where}"] = seg.expected_cost
        return out

    def judge(self, criteria: Mapping[str, Any]) -> list[Verdict]:
        """Each criterion (``{"expected_cost": "<= 0.8"}``) against :meth:`flat`."""
        return judge(parse_criteria(criteria), self.flat())

    def passes(self, criteria: Mapping[str, Any]) -> bool:
        """Whether every criterion is met (a metric that was not computed is not met)."""
        return all(v.met for v in self.judge(criteria))

    def log_to(self, experiment: Experiment) -> None:
        """Log :meth:`flat` as the experiment's metrics, so its criteria judge them."""
        experiment.log_metrics({k: v for k, v in self.flat().items() if np.isfinite(v)})

    def to_dict(self) -> dict[str, Any]:
        out = plain_fields(self)
        if self.curve is not None:
            out["curve"] = _thin_curve(self.curve)
        return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.floating | np.integer) and not isinstance(v, bool)


def _thin_curve(curve: CostCurve) -> dict[str, Any]:
    """At most ``_CURVE_POINTS`` points of a cost curve, the cheapest one always kept."""
    n = curve.thresholds.size
    if n <= _CURVE_POINTS:
        keep = np.arange(n)
    else:
        keep = np.unique(np.r_[np.linspace(0, n - 1, _CURVE_POINTS).round().astype(int),
                               int(np.argmin(curve.expected_cost))])
    return {
        "thresholds": plain(curve.thresholds[keep]),
        "expected_cost": plain(curve.expected_cost[keep]),
        "n": curve.n,
    }


# -- reading the inputs ------------------------------------------------------------------


class _Columns:
    """Arrays given directly or by the name of a column of ``data``."""

    def __init__(self, data: Any) -> None:
        self.table: pa.Table | None = None if data is None else to_arrow(data, what="data")

    def get(self, value: Any, what: str, n: int | None = None) -> NDArray[Any]:
        if isinstance(value, str):
            if self.table is None:
                raise DataError(
                    f"evaluate: {what}={value!r} names a column, but no data= was given; "
                    "pass the frame as data= or pass the values themselves."
                )
            if value not in self.table.column_names:
                names = ", ".join(self.table.column_names[:12])
                raise DataError(f"evaluate: {what} column {value!r} is not in the data ({names}).")
            arr = self.table.column(value).to_numpy(zero_copy_only=False)
        else:
            arr = np.asarray(value)
        if n is not None and arr.shape[:1] != (n,):
            raise DataError(
                f"evaluate: {what} has {arr.shape[0] if arr.ndim else 1} rows but y_true has {n}; "
                "pass one value per row."
            )
        return arr

    def costs(self, costs: Any, n: int, shape: str) -> dict[str, Any]:
        """A cost mapping with its column names read from the data."""
        if not isinstance(costs, Mapping):
            raise ConfigError(f"evaluate: {shape}.")
        return {k: (self.get(v, f"costs[{k!r}]", n) if isinstance(v, str) else v)
                for k, v in costs.items()}


def _task_of(y: NDArray[Any], probabilities: Any, costs: Any, given: str | None) -> str:
    if given is not None:
        if given not in _TASKS:
            raise ConfigError(f"evaluate: task must be one of {', '.join(_TASKS)}. Got {given!r}.")
        return given
    if isinstance(costs, Mapping) and costs and set(costs) <= {"under", "over"}:
        return "regression"
    if probabilities is not None and np.ndim(probabilities) == 2:
        return "multiclass"
    if y.dtype.kind == "b":
        return "binary"
    if y.dtype.kind == "f":
        finite = y[np.isfinite(y)]
        if finite.size and not np.all(finite == np.round(finite)):
            return "regression"
    values = np.unique(y[: 1_000_000])
    if y.dtype.kind in "iuf" and set(values.tolist()) <= {0, 1}:
        return "binary"
    if y.dtype.kind in "iuf" and values.size > _MAX_LEVELS:
        return "regression"
    return "multiclass"


def _binary_labels(y: NDArray[Any], positive: Any, what: str) -> NDArray[np.bool_]:
    if positive is not None:  # compared as text, so "1" from a command line finds 1
        return np.asarray(y.astype(str) == str(positive))
    if y.dtype.kind == "b":
        return y
    if y.dtype.kind in "iuf" and set(np.unique(y).tolist()) <= {0, 1}:
        return y.astype(bool)
    raise DataError(
        f"evaluate: {what} must be 0/1 or bool for a binary task; got values "
        f"{np.unique(y)[:5].tolist()}. Pass positive= to name the positive class."
    )


# -- the evaluation ----------------------------------------------------------------------


def evaluate(
    y_true: Any,
    y_pred: Any = None,
    *,
    scores: Any = None,
    probabilities: Any = None,
    classes: Sequence[Any] | None = None,
    task: str | None = None,
    costs: Any = None,
    threshold: float | str = 0.5,
    positive: Any = None,
    segments: str | Sequence[str] | Mapping[str, Any] | None = None,
    slices: Mapping[str, str] | Sequence[str] | None = None,
    find: bool | Mapping[str, Any] = False,
    data: Any = None,
    bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
    name: str | None = None,
) -> Evaluation:
    """Judge predictions by the usual metrics and by what their mistakes cost.

    Binary: ``y_pred`` decisions and/or ``scores`` (decided at ``threshold``, or at the
    cheapest one with ``threshold="cheapest"``); ``costs={"fp": 5, "fn": "amount"}``.
    Multi-class: ``y_pred`` labels and/or ``probabilities`` (columns in ``classes`` order);
    ``costs`` a cost matrix ``{true: {decided: cost}}`` or ``{"matrix": [[...]],
    "classes": [...], "scale": per-row}``. Regression: ``y_pred`` values;
    ``costs={"under": 3, "over": 1}``. Any argument may name a column of ``data``.
    ``segments`` names the columns to break results down by (or maps a name to an
    array); ``slices`` are predicates (``{"big": "amount > 1000"}``); ``find=True``
    looks for the slices where cost (or error) concentrates (a mapping instead of ``True``
    passes its options to :func:`~hindsight.evaluate.slices.find_slices`, e.g.
    ``find={"min_effect": 0.5, "max_order": 1}``).
    """
    cols = _Columns(data)
    y = cols.get(y_true, "y_true")
    if y.ndim != 1 or y.size == 0:
        raise DataError(f"evaluate: y_true must be a non-empty 1-D array. Got shape {y.shape}.")
    n = int(y.size)
    probs = None if probabilities is None else np.asarray(probabilities, dtype=np.float64)
    kind = _task_of(y, probs, costs, task)
    if kind == "binary":
        result = _binary(cols, y, y_pred, scores, costs, threshold, positive, n,
                         bootstrap, confidence, seed)
    elif kind == "multiclass":
        result = _multiclass(cols, y, y_pred, probs, classes, costs, n, confidence)
    else:
        result = _regression(cols, y, y_pred, costs, n, bootstrap, confidence, seed)
    metrics_of, row_cost, loss, base = result
    segs = _segments(cols, segments, n, metrics_of, row_cost, kind)
    named = _named_slices(cols, slices, n, metrics_of, row_cost, kind)
    found = None
    if find:
        if cols.table is None:
            raise DataError("evaluate: find=True looks for slices in data=; pass the frame.")
        if cols.table.num_rows != n:
            raise DataError(f"evaluate: data has {cols.table.num_rows} rows but y_true has {n}.")
        # The labels, decisions and scores would be "slices" of their own errors.
        own = {v for v in (y_true, y_pred, scores) if isinstance(v, str)}
        options = dict(find) if isinstance(find, Mapping) else {}
        unknown = sorted(set(options) - _FIND_OPTIONS)
        if unknown:
            raise ConfigError(
                f"evaluate: find= got {', '.join(map(repr, unknown))}; its options are "
                f"find_slices' search settings ({', '.join(sorted(_FIND_OPTIONS))}). The data "
                "and the loss come from evaluate itself."
            )
        options.setdefault("columns", [c for c in cols.table.column_names if c not in own])
        found = find_slices(cols.table, loss, **options)
    return Evaluation(
        task=kind, n=n, segments=segs, slices=named, found=found, name=name, **base
    )


_Metrics = Any  # a callable(mask) -> dict of metrics
_FIND_OPTIONS = frozenset(
    {"columns", "max_order", "bins", "min_size", "alpha", "min_effect", "top", "max_levels"}
)


def _binary(
    cols: _Columns, y_raw: NDArray[Any], y_pred: Any, scores: Any, costs: Any,
    threshold: float | str, positive: Any, n: int, bootstrap: int, confidence: float, seed: int,
) -> tuple[_Metrics, NDArray[np.float64] | None, NDArray[np.float64], dict[str, Any]]:
    y = _binary_labels(y_raw, positive, "y_true")
    s = None if scores is None else cols.get(scores, "scores", n).astype(np.float64)
    cost_spec = None if costs is None else cols.costs(
        costs, n, "binary costs map 'fp', 'fn' (and optionally 'tp', 'tn') to a cost, an array "
        "of per-row costs or a column name, e.g. {'fp': 5, 'fn': 'amount'}"
    )
    choice = curve = None
    if s is not None and cost_spec is not None:
        choice = best_threshold(y, s, cost_spec, bootstrap=bootstrap, confidence=confidence,
                                seed=seed)
        curve = cost_curve(y, s, cost_spec)
    used: float | None = None
    if y_pred is not None:
        pred = _binary_labels(cols.get(y_pred, "y_pred", n), positive, "y_pred")
    elif s is not None:
        if threshold == "cheapest":
            if choice is None:
                raise ConfigError('evaluate: threshold="cheapest" needs costs= to price mistakes.')
            used = choice.threshold
        elif isinstance(threshold, int | float) and not isinstance(threshold, bool):
            used = float(threshold)
        else:
            raise ConfigError(
                f'evaluate: threshold must be a number or "cheapest". Got {threshold!r}.'
            )
        pred = s >= used
    else:
        raise DataError("evaluate: pass y_pred (decisions) or scores for a binary task.")
    row_cost = None if cost_spec is None else decision_costs(y, pred, cost_spec)

    def metrics_of(mask: NDArray[np.bool_] | None) -> dict[str, float]:
        if mask is None:
            return binary_metrics(y, pred, s)
        return binary_metrics(y[mask], pred[mask], None if s is None else s[mask])

    base: dict[str, Any] = {"metrics": metrics_of(None), "threshold": used,
                            "threshold_choice": choice, "curve": curve}
    if s is not None and np.all((s >= 0) & (s <= 1)):
        base["reliability"] = reliability(y, s)
    if row_cost is not None:
        base["costs"] = _cost_summary(row_cost, confidence)
    loss = row_cost if row_cost is not None else (y != pred).astype(np.float64)
    return metrics_of, row_cost, loss, base


def _cost_summary(row_cost: NDArray[np.float64], confidence: float) -> dict[str, Any]:
    return {
        "expected_cost": float(row_cost.mean()),
        "expected_cost_ci": mean_ci(row_cost, confidence),
        "total_cost": float(row_cost.sum()),
    }


def _multiclass(
    cols: _Columns, y: NDArray[Any], y_pred: Any, probs: NDArray[np.float64] | None,
    classes: Sequence[Any] | None, costs: Any, n: int, confidence: float,
) -> tuple[_Metrics, NDArray[np.float64] | None, NDArray[np.float64], dict[str, Any]]:
    if y_pred is not None:
        pred = cols.get(y_pred, "y_pred", n)
    elif probs is not None:
        if classes is None:
            raise ConfigError("evaluate: probabilities need classes= naming their columns in order.")
        if probs.ndim != 2 or probs.shape[1] != len(classes):
            raise DataError(
                f"evaluate: probabilities must be (n, {len(classes)}); got {probs.shape}."
            )
        pred = np.asarray(classes)[np.argmax(probs, axis=1)]
    else:
        raise DataError("evaluate: pass y_pred (labels) or probabilities for a multi-class task.")
    if probs is not None and probs.shape[0] != n:
        raise DataError(f"evaluate: probabilities have {probs.shape[0]} rows; y_true has {n}.")
    y_text, pred_text = y.astype(str), pred.astype(str)
    class_text = None if classes is None else [str(c) for c in classes]
    mc = multiclass_metrics(y_text, pred_text, probs, classes=class_text)

    def metrics_of(mask: NDArray[np.bool_] | None) -> dict[str, float]:
        got = mc if mask is None else multiclass_metrics(y_text[mask], pred_text[mask])
        return {k: v for k, v in got.items() if _is_number(v)}

    base: dict[str, Any] = {"metrics": metrics_of(None), "confusion": mc.get("confusion")}
    row_cost = None
    if costs is not None:
        spec = costs
        scale = None
        if isinstance(costs, Mapping) and "matrix" in costs:
            scale = costs.get("scale")
            scale = None if scale is None else cols.get(scale, "costs['scale']", n)
            spec = {k: v for k, v in costs.items() if k != "scale"}
        matrix = CostMatrix.parse(spec, class_text or sorted(set(y_text) | set(pred_text)))
        mcost = matrix_costs(y_text, pred_text, matrix, probabilities=probs,
                             prob_classes=class_text, scale=scale, confidence=confidence)
        base["costs"] = {**mcost.to_dict(), "matrix": matrix.to_dict()}
        row_cost = matrix_row_costs(y_text, pred_text, matrix, scale=scale)
    loss = row_cost if row_cost is not None else (y_text != pred_text).astype(np.float64)
    return metrics_of, row_cost, loss, base


def _regression(
    cols: _Columns, y_raw: NDArray[Any], y_pred: Any, costs: Any, n: int,
    bootstrap: int, confidence: float, seed: int,
) -> tuple[_Metrics, NDArray[np.float64] | None, NDArray[np.float64], dict[str, Any]]:
    if y_pred is None:
        raise DataError("evaluate: pass y_pred (the predicted values) for a regression task.")
    y = y_raw.astype(np.float64)
    pred = cols.get(y_pred, "y_pred", n).astype(np.float64)

    def metrics_of(mask: NDArray[np.bool_] | None) -> dict[str, float]:
        return regression_metrics(y, pred) if mask is None else regression_metrics(y[mask],
                                                                                   pred[mask])

    base: dict[str, Any] = {"metrics": metrics_of(None)}
    row_cost = None
    if costs is not None:
        spec = cols.costs(
            costs, n, "regression costs map 'under' and/or 'over' to a cost per unit of error, "
            "e.g. {'under': 3, 'over': 1}"
        )
        rc = regression_costs(y, pred, spec, bootstrap=bootstrap, confidence=confidence, seed=seed)
        base["costs"] = rc.to_dict()
        row_cost = regression_row_costs(y, pred, spec)
    loss = row_cost if row_cost is not None else np.abs(y - pred)
    return metrics_of, row_cost, loss, base


def _segment_columns(
    cols: _Columns, segments: str | Sequence[str] | Mapping[str, Any] | None, n: int
) -> list[tuple[str, NDArray[Any]]]:
    if segments is None:
        return []
    if isinstance(segments, str):
        return [(segments, cols.get(segments, "segments", n))]
    if isinstance(segments, Mapping):
        return [(str(k), cols.get(v, f"segments[{k!r}]", n)) for k, v in segments.items()]
    if isinstance(segments, Sequence) and all(isinstance(s, str) for s in segments):
        return [(s, cols.get(s, "segments", n)) for s in segments]
    # One array of segment labels.
    return [("segment", cols.get(segments, "segments", n))]


def _segments(
    cols: _Columns, segments: Any, n: int, metrics_of: _Metrics,
    row_cost: NDArray[np.float64] | None, kind: str,
) -> list[SegmentResult]:
    out = []
    for column, values in _segment_columns(cols, segments, n):
        text = values.astype(str) if values.dtype.kind != "O" else np.array(
            ["None" if v is None else str(v) for v in values.tolist()]
        )
        levels, codes, counts = np.unique(text, return_inverse=True, return_counts=True)
        if levels.size > _MAX_LEVELS:
            raise DataError(
                f"evaluate: segment column {column!r} has {levels.size} distinct values; "
                f"segments are for up to {_MAX_LEVELS} groups. Bin it, or use slices= or find=True."
            )
        for i in np.argsort(-counts, kind="stable"):
            mask = codes == i
            out.append(_group_result(column, str(levels[i]), mask, n, metrics_of, row_cost, kind))
    return out


def _named_slices(
    cols: _Columns, slices: Mapping[str, str] | Sequence[str] | None, n: int,
    metrics_of: _Metrics, row_cost: NDArray[np.float64] | None, kind: str,
) -> list[SegmentResult]:
    if slices is None:
        return []
    if cols.table is None:
        raise DataError("evaluate: slices= are predicates over data=; pass the frame as data=.")
    if cols.table.num_rows != n:
        raise DataError(f"evaluate: data has {cols.table.num_rows} rows but y_true has {n}.")
    named = dict(slices) if isinstance(slices, Mapping) else {s: s for s in slices}
    out = []
    for label, expr in named.items():
        mask = np.asarray(slice_mask(cols.table, expr), dtype=bool)
        if not mask.any():
            raise DataError(
                f"evaluate: no rows match slice {label!r} ({expr}); check the predicate."
            )
        result = _group_result("slice", str(label), mask, n, metrics_of, row_cost, kind)
        out.append(replace(result, expr=str(expr)))
    return out


def _group_result(
    column: str, value: str, mask: NDArray[np.bool_], n: int, metrics_of: _Metrics,
    row_cost: NDArray[np.float64] | None, kind: str,
) -> SegmentResult:
    got = metrics_of(mask)
    keep = {k: float(got[k]) for k in _SEGMENT_KEYS[kind] if k in got}
    size = int(mask.sum())
    return SegmentResult(
        column=column,
        value=value,
        n=size,
        share=size / n,
        metrics=keep,
        expected_cost=None if row_cost is None else float(row_cost[mask].mean()),
    )
