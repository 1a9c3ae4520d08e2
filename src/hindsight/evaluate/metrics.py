"""The usual evaluation metrics of binary, multi-class and regression models, as plain dicts.

Every function takes arrays (lists, NumPy, pandas) and returns a ``dict`` of Python floats
that a ledger record or a JSON report can hold as it is. Each metric means what it means
in scikit-learn (the tests check every one against it), computed with a handful of NumPy
reductions, so a million rows cost a sort at most. Where scikit-learn would warn and
return 0, these return NaN: a metric that is undefined on the data (precision with no
predicted positives, AUC with one class, MCC with an empty margin, R² of a constant
target) is ``float("nan")``, never a number that looks like a result. Macro averages skip
NaN classes, as scikit-learn does with ``zero_division=np.nan``.

Calibration uses ``bins`` equal-width bins on [0, 1], each closed on the left,
``[i/bins, (i+1)/bins)``, as in :func:`numpy.histogram`; a score of exactly 1.0 falls in
the last bin. :func:`reliability` returns the bins for a plot, and the ``ece`` of
:func:`binary_metrics` is the count-weighted mean gap between its two curves.

:data:`METRIC_DIRECTIONS` says for each metric whether higher or lower is better.
Descriptive numbers (``n``, ``prevalence``, ``positive_rate``) and ``bias`` (best at 0)
have no direction and are left out.

>>> from hindsight.evaluate.metrics import binary_metrics
>>> m = binary_metrics([1, 0, 1, 1], [1, 0, 0, 1], scores=[0.9, 0.2, 0.4, 0.8])
>>> round(m["recall"], 3), m["precision"], m["auc"]
(0.667, 1.0, 1.0)
>>> binary_metrics([0, 0, 0], [0, 0, 0])["precision"]
nan
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hindsight._validation import Interval, validate_params
from hindsight.errors import DataError

__all__ = [
    "METRIC_DIRECTIONS",
    "binary_metrics",
    "multiclass_metrics",
    "regression_metrics",
    "reliability",
]

_Float = NDArray[np.float64]
_NAN = float("nan")
_LOG_CLIP = 1e-15
_ROW_SUM_TOLERANCE = 1e-6
_BINS = {"bins": Interval(int, 1)}

_HIGHER = (
    "accuracy precision recall specificity f1 balanced_accuracy mcc auc average_precision "
    "tp tn macro_precision macro_recall macro_f1 weighted_f1 r2 explained_variance"
)
_LOWER = "fpr fnr brier log_loss ece fp fn top_label_ece mae mse rmse median_ae mape max_error"
METRIC_DIRECTIONS: dict[str, str] = {
    **dict.fromkeys(_HIGHER.split(), "higher"),
    **dict.fromkeys(_LOWER.split(), "lower"),
}


# -- input checks ---------------------------------------------------------------------------


def _vector(values: ArrayLike, name: str, owner: str, n: int | None = None) -> NDArray[Any]:
    """``values`` as a non-empty 1-D array, with ``n`` rows when ``n`` is given."""
    try:
        arr = np.asarray(values)
    except ValueError as exc:  # ragged nested lists
        raise DataError(f"{owner}: {name} is not an array of one value per row ({exc}).") from exc
    if arr.ndim != 1:
        raise DataError(
            f"{owner}: {name} must be 1-D; got shape {arr.shape}. Pass one value per row "
            "(e.g. y.ravel())."
        )
    if arr.size == 0:
        raise DataError(f"{owner}: {name} is empty; pass at least one row.")
    if n is not None and arr.size != n:
        what = "one decision per label" if name == "y_pred" else "one score per label"
        raise DataError(f"{owner}: {name} has {arr.size} rows but y_true has {n}; pass {what}.")
    return arr


def _numbers(values: ArrayLike, name: str, owner: str, n: int | None = None) -> _Float:
    arr = _vector(values, name, owner, n)
    try:
        out = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{owner}: {name} must hold numbers; got {arr.dtype} values such as "
            f"{arr[:3].tolist()}."
        ) from exc
    bad = ~np.isfinite(out)
    if bad.any():
        raise DataError(
            f"{owner}: {name} has {int(bad.sum())} values that are not finite numbers "
            "(NaN or inf); drop or impute those rows first."
        )
    return out


def _binary(values: ArrayLike, name: str, owner: str, n: int | None = None) -> NDArray[np.bool_]:
    arr = _vector(values, name, owner, n)
    if arr.dtype.kind == "b":
        return arr
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise DataError(f"{owner}: {name} has missing values (NaN); drop those rows first.")
    if arr.dtype.kind not in "iuf":
        raise DataError(
            f"{owner}: {name} must be 0/1 or bool; got {arr.dtype} values such as "
            f"{arr[:3].tolist()}. Map the positive class to 1 and the rest to 0."
        )
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        raise DataError(
            f"{owner}: {name} must hold only 0 and 1; got {np.unique(arr[bad])[:5].tolist()}. "
            "Map the positive class to 1 and the rest to 0."
        )
    return arr == 1


def _unit_scores(values: ArrayLike, n: int, owner: str) -> _Float:
    s = _numbers(values, "scores", owner, n)
    if s.min() < 0.0 or s.max() > 1.0:
        raise DataError(
            f"{owner}: scores must be probabilities in [0, 1]; got values from {s.min():g} to "
            f"{s.max():g}. Pass probabilities, e.g. predict_proba(X)[:, 1]."
        )
    return s


def _label_kind(arr: NDArray[Any]) -> str | None:
    if arr.dtype.kind in "biuf":
        return "numbers"
    return "strings" if arr.dtype.kind in "US" else None


def _labels(values: ArrayLike, name: str, owner: str, n: int | None = None) -> NDArray[Any]:
    arr = _vector(values, name, owner, n)
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise DataError(f"{owner}: {name} has missing labels (NaN); drop those rows first.")
    return arr


def _probabilities(values: ArrayLike, n: int, k: int, given: bool, owner: str) -> _Float:
    try:
        prob = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{owner}: probabilities must be an (n, K) array of numbers.") from exc
    if prob.ndim != 2 or prob.shape[0] != n:
        raise DataError(
            f"{owner}: probabilities must have shape ({n}, K), one row of class probabilities "
            f"per label; got shape {prob.shape}."
        )
    if prob.shape[1] != k:
        hint = (
            f"classes lists {k}; pass one column per class, in the order of classes"
            if given
            else f"y_true and y_pred hold {k} labels; pass classes= listing the model's "
            "classes in column order (e.g. model.classes_)"
        )
        raise DataError(f"{owner}: probabilities has {prob.shape[1]} columns but {hint}.")
    if not np.isfinite(prob).all() or prob.min() < 0.0 or prob.max() > 1.0:
        raise DataError(
            f"{owner}: probabilities must be finite numbers in [0, 1]. Pass normalised class "
            "probabilities, e.g. predict_proba(X)."
        )
    off = np.abs(prob.sum(axis=1) - 1.0)
    if off.max() > _ROW_SUM_TOLERANCE:
        row = int(off.argmax())
        raise DataError(
            f"{owner}: each row of probabilities must sum to 1 (within {_ROW_SUM_TOLERANCE:g}); "
            f"row {row} sums to {prob[row].sum():.6g}. Pass normalised class probabilities, "
            "e.g. predict_proba(X) or a softmax."
        )
    return prob


# -- shared arithmetic ----------------------------------------------------------------------


def _ratio(num: float, den: float) -> float:
    return num / den if den else _NAN


def _divide(num: _Float, den: _Float) -> _Float:
    """``num / den`` elementwise, NaN (and no warning) where ``den`` is 0."""
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _nan_average(values: _Float, weights: _Float | None = None) -> float:
    """The (weighted) mean of the non-NaN values; NaN when every value is NaN."""
    keep = ~np.isnan(values)
    if not keep.any():
        return _NAN
    if weights is None or weights[keep].sum() == 0:
        return float(values[keep].mean())
    return float(np.average(values[keep], weights=weights[keep]))


def _bin_sums(y: _Float, s: _Float, bins: int) -> tuple[_Float, _Float, _Float, _Float]:
    """Edges, counts, score sums and outcome sums of ``bins`` equal-width bins on [0, 1]."""
    # i / bins (not linspace's i * step) makes the edge 0.3 the float 0.3, so a score of
    # 0.3 lands in the bin that starts at 0.3.
    edges = np.arange(bins + 1) / bins
    idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, bins - 1)
    count = np.bincount(idx, minlength=bins).astype(np.float64)
    sum_s = np.asarray(np.bincount(idx, weights=s, minlength=bins), dtype=np.float64)
    sum_y = np.asarray(np.bincount(idx, weights=y, minlength=bins), dtype=np.float64)
    return edges, count, sum_s, sum_y


def _ece(y: _Float, s: _Float, bins: int) -> float:
    # sum_b n_b/n * |sum_y_b/n_b - sum_s_b/n_b| without dividing by empty bins.
    _, _, sum_s, sum_y = _bin_sums(y, s, bins)
    return float(np.abs(sum_y - sum_s).sum() / s.size)


def _average_ranks(s: _Float) -> _Float:
    """1-based ranks of ``s``, ties sharing their average rank (as Mann-Whitney)."""
    order = np.argsort(s, kind="mergesort")
    ordered = s[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, s.size])
    ranks = np.empty(s.size)
    ranks[order] = np.repeat(starts + (sizes + 1) / 2.0, sizes)
    return ranks


def _auc(y: NDArray[np.bool_], s: _Float) -> float:
    pos = float(y.sum())
    neg = y.size - pos
    if pos == 0 or neg == 0:
        return _NAN
    return float((_average_ranks(s)[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _average_precision(y: NDArray[np.bool_], s: _Float) -> float:
    pos = float(y.sum())
    if pos == 0 or pos == y.size:
        return _NAN
    order = np.argsort(-s, kind="mergesort")
    ordered = s[order]
    # The last row of each run of equal scores: one threshold per distinct score.
    ends = np.flatnonzero(np.r_[ordered[1:] != ordered[:-1], True])
    tps = np.cumsum(y[order])[ends]
    precision = tps / (ends + 1)
    recall = tps / pos
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


# -- public metrics -------------------------------------------------------------------------


def reliability(y_true: ArrayLike, scores: ArrayLike, *, bins: int = 10) -> dict[str, list[float]]:
    """A calibration plot's data: per equal-width bin, its count, mean score and observed rate.

    ``edges`` has ``bins + 1`` entries; ``mean_score`` and ``observed`` are NaN for empty bins.
    """
    owner = "reliability"
    validate_params(owner, {"bins": bins}, _BINS)
    y = _binary(y_true, "y_true", owner)
    s = _unit_scores(scores, y.size, owner)
    edges, count, sum_s, sum_y = _bin_sums(y.astype(np.float64), s, bins)
    return {
        "edges": edges.tolist(),
        "count": count.tolist(),
        "mean_score": _divide(sum_s, count).tolist(),
        "observed": _divide(sum_y, count).tolist(),
    }


def binary_metrics(
    y_true: ArrayLike, y_pred: ArrayLike, scores: ArrayLike | None = None, *, bins: int = 10
) -> dict[str, float]:
    """Confusion-matrix metrics of 0/1 decisions, plus ranking and calibration given scores.

    ``balanced_accuracy`` is the mean of recall and specificity over those defined, which
    is scikit-learn's ``balanced_accuracy_score`` (with a single class it is that class's
    recall). ``log_loss`` clips scores to [1e-15, 1 - 1e-15].
    """
    owner = "binary_metrics"
    validate_params(owner, {"bins": bins}, _BINS)
    y = _binary(y_true, "y_true", owner)
    p = _binary(y_pred, "y_pred", owner, y.size)
    n = float(y.size)
    tp = float(np.count_nonzero(y & p))
    fp = float(np.count_nonzero(~y & p))
    fn = float(np.count_nonzero(y & ~p))
    tn = n - tp - fp - fn
    positives, negatives, predicted = tp + fn, fp + tn, tp + fp
    recall, specificity = _ratio(tp, positives), _ratio(tn, negatives)
    defined = [v for v in (recall, specificity) if not math.isnan(v)]
    margins = math.sqrt(predicted * positives) * math.sqrt(negatives * (n - predicted))
    out = {
        "n": n,
        "prevalence": positives / n,
        "positive_rate": predicted / n,
        "accuracy": (tp + tn) / n,
        "precision": _ratio(tp, predicted),
        "recall": recall,
        "specificity": specificity,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "fpr": _ratio(fp, negatives),
        "fnr": _ratio(fn, positives),
        "balanced_accuracy": sum(defined) / len(defined),
        "mcc": _ratio(tp * tn - fp * fn, margins),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }
    if scores is not None:
        s = _unit_scores(scores, y.size, owner)
        yf = y.astype(np.float64)
        clipped = np.clip(s, _LOG_CLIP, 1.0 - _LOG_CLIP)
        out["auc"] = _auc(y, s)
        out["average_precision"] = _average_precision(y, s)
        out["brier"] = float(np.mean((s - yf) ** 2))
        out["log_loss"] = float(-np.mean(np.where(y, np.log(clipped), np.log1p(-clipped))))
        out["ece"] = _ece(yf, s, bins)
    return out


def _encode(
    yt: NDArray[Any], yp: NDArray[Any], classes: ArrayLike | None, owner: str
) -> tuple[NDArray[Any], NDArray[np.intp], NDArray[np.intp]]:
    """The class labels in order, and each row's true and predicted class index."""
    arrays = [yt, yp] if classes is None else [yt, yp, _labels(classes, "classes", owner)]
    kinds = {_label_kind(a) for a in arrays} - {None}
    if len(kinds) > 1:
        raise DataError(
            f"{owner}: the labels mix numbers and strings across y_true, y_pred and classes; "
            "pass labels of one type (e.g. all as strings)."
        )
    try:
        if classes is None:
            labels, inverse = np.unique(np.concatenate([yt, yp]), return_inverse=True)
            inverse = inverse.ravel()
            return labels, inverse[: yt.size], inverse[yt.size :]
        labels = arrays[2]
        sorter = np.argsort(labels, kind="stable")
        ordered = labels[sorter]
        repeated = ordered[1:] == ordered[:-1]
    except TypeError as exc:  # object arrays of values that cannot be ordered
        raise DataError(
            f"{owner}: labels must be mutually comparable (all numbers or all strings); {exc}."
        ) from exc
    if repeated.any():
        raise DataError(
            f"{owner}: classes lists {ordered[1:][repeated][:5].tolist()} more than once; "
            "list each class once, in the column order of probabilities."
        )
    codes = []
    for name, values in (("y_true", yt), ("y_pred", yp)):
        pos = np.minimum(np.searchsorted(ordered, values), ordered.size - 1)
        found = ordered[pos] == values
        if not found.all():
            raise DataError(
                f"{owner}: {name} has labels {np.unique(values[~found])[:5].tolist()} that are "
                "not in classes; add them to classes or drop those rows."
            )
        codes.append(sorter[pos])
    return labels, codes[0], codes[1]


def multiclass_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    probabilities: ArrayLike | None = None,
    *,
    classes: ArrayLike | None = None,
    bins: int = 10,
) -> dict[str, Any]:
    """Accuracy, per-class and averaged precision/recall/F1, the confusion matrix, and scores.

    ``classes`` fixes the order of the labels (and must match the columns of
    ``probabilities``); by default it is the sorted union of the labels in ``y_true`` and
    ``y_pred``. Per-class values are NaN where undefined and macro averages skip them;
    ``balanced_accuracy`` is the mean recall over classes present in ``y_true``.
    ``top_label_ece`` is the calibration error of the largest probability against whether
    its class was the true one.
    """
    owner = "multiclass_metrics"
    validate_params(owner, {"bins": bins}, _BINS)
    yt = _labels(y_true, "y_true", owner)
    yp = _labels(y_pred, "y_pred", owner, yt.size)
    labels, t, p = _encode(yt, yp, classes, owner)
    names = [str(label) for label in labels.tolist()]
    if len(set(names)) != len(names):
        raise DataError(f"{owner}: class labels {names} are not distinct as text; rename them.")
    k, n = len(names), yt.size
    confusion = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    precision, recall = _divide(tp, predicted), _divide(tp, support)
    f1 = _divide(2 * tp, predicted + support)
    out: dict[str, Any] = {
        "n": float(n),
        "accuracy": float(np.mean(t == p)),
        "macro_precision": _nan_average(precision),
        "macro_recall": _nan_average(recall),
        "macro_f1": _nan_average(f1),
        "weighted_f1": _nan_average(f1, support),
        "balanced_accuracy": float(recall[support > 0].mean()),
        "per_class": {
            name: {"precision": pr, "recall": rc, "f1": f, "support": su}
            for name, pr, rc, f, su in zip(
                names, precision.tolist(), recall.tolist(), f1.tolist(), support.tolist(),
                strict=True,
            )
        },
        "confusion": {"classes": names, "matrix": confusion.tolist()},
    }
    if probabilities is not None:
        prob = _probabilities(probabilities, n, k, classes is not None, owner)
        rows = np.arange(n)
        onehot = np.zeros_like(prob)
        onehot[rows, t] = 1.0
        true_prob = np.clip(prob[rows, t], _LOG_CLIP, 1.0 - _LOG_CLIP)
        correct = (prob.argmax(axis=1) == t).astype(np.float64)
        out["log_loss"] = float(-np.mean(np.log(true_prob)))
        out["brier"] = float(np.mean(np.sum((prob - onehot) ** 2, axis=1)))
        out["top_label_ece"] = _ece(correct, prob.max(axis=1), bins)
    return out


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """Error sizes, explained variance and bias of numeric predictions.

    ``r2`` and ``explained_variance`` are NaN for a constant ``y_true`` (scikit-learn's
    ``force_finite`` would say 1.0 or 0.0). ``mape`` divides by ``max(|y|, machine eps)``,
    as scikit-learn does, so a zero target gives a huge but finite term. ``bias`` is the
    mean of ``y_pred - y_true``.
    """
    owner = "regression_metrics"
    y = _numbers(y_true, "y_true", owner)
    pred = _numbers(y_pred, "y_pred", owner, y.size)
    err = pred - y
    abs_err = np.abs(err)
    mse = float(np.mean(err**2))
    constant = bool(np.all(y == y[0]))
    return {
        "n": float(y.size),
        "mae": float(abs_err.mean()),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "median_ae": float(np.median(abs_err)),
        "r2": _NAN if constant else float(1.0 - np.sum(err**2) / np.sum((y - y.mean()) ** 2)),
        "explained_variance": _NAN if constant else float(1.0 - np.var(err) / np.var(y)),
        "mape": float(np.mean(abs_err / np.maximum(np.abs(y), np.finfo(np.float64).eps))),
        "bias": float(err.mean()),
        "max_error": float(abs_err.max()),
    }
