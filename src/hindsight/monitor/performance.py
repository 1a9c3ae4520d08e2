"""Realised and estimated performance of a deployed binary classifier, per window.

Two views of the same question, "how well is the model doing?":

* :func:`realised_performance` — the truth, once labels arrive: accuracy,
  precision, recall, F1, ROC AUC and cost per window, with the share of
  predictions that have a label so far.
* :class:`CBPE` — confidence-based performance estimation (as NannyML defines
  it): with *calibrated* probabilities ``p`` the expected confusion matrix of a
  window is known without labels (a predicted positive is a true positive with
  probability ``p``, a predicted negative a false negative with probability
  ``p``), and so are the metrics built from it. :meth:`CBPE.fit` calibrates the
  scores on a labelled reference (isotonic regression) and measures the sampling
  error of each metric; :meth:`CBPE.estimate` estimates each window;
  :meth:`CBPE.reconcile` lines the estimates up with the realised values as
  labels come in.

Everything is vectorised: rows are grouped by window index with
``np.unique``/``np.bincount``/``np.add.reduceat``; no loop runs over rows.
Undefined metrics (no positives, a zero denominator) are ``None``, never a
warning.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hindsight._plain import plain_fields
from hindsight._validation import Interval, validate_params
from hindsight.errors import ConfigError

__all__ = [
    "CBPE",
    "METRICS",
    "EstimatedPerformance",
    "MetricComparison",
    "Reconciliation",
    "WindowPerformance",
    "realised_performance",
]

#: The metrics both views compute, in display order.
METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "roc_auc")

_COST_KEYS = ("tp", "fp", "fn", "tn")
_Float = NDArray[Any]  # float64 in practice; bincount is typed as int by the stubs


def _fin(value: Any) -> float | None:
    """``None`` for missing or non-finite values, a plain float otherwise."""
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class WindowPerformance:
    """Realised performance of one window (``None`` where a metric is undefined)."""

    window: int
    n: int
    n_labelled: int
    label_coverage: float
    tp: int
    fp: int
    fn: int
    tn: int
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    roc_auc: float | None
    cost: float | None = None
    cost_per_prediction: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class EstimatedPerformance:
    """CBPE's estimate for one window, with the sampling error of each metric.

    ``<metric>_se`` is the standard deviation of the realised metric over random
    reference chunks of this window's size: how far the realised value may sit
    from a perfect estimate by chance alone.
    """

    window: int
    n: int
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    roc_auc: float | None
    accuracy_se: float | None = None
    precision_se: float | None = None
    recall_se: float | None = None
    f1_se: float | None = None
    roc_auc_se: float | None = None

    def band(self, metric: str, k: float = 3.0) -> tuple[float, float] | None:
        """``estimate ± k·se`` for ``metric``, or ``None`` if either is undefined."""
        if metric not in METRICS:
            raise ConfigError(f"Unknown metric {metric!r}; use one of {', '.join(METRICS)}.")
        value, se = getattr(self, metric), getattr(self, f"{metric}_se")
        if value is None or se is None:
            return None
        return (value - k * se, value + k * se)

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class MetricComparison:
    """One metric of one window: the estimate, the realised value, their difference."""

    metric: str
    estimated: float | None
    realised: float | None
    difference: float | None  # realised - estimated
    sampling_error: float | None

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class Reconciliation:
    """Estimated against realised performance for one window."""

    window: int
    n: int
    n_labelled: int
    label_coverage: float
    metrics: tuple[MetricComparison, ...]

    def __getitem__(self, metric: str) -> MetricComparison:
        for m in self.metrics:
            if m.metric == metric:
                return m
        raise KeyError(metric)

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "n": self.n,
            "n_labelled": self.n_labelled,
            "label_coverage": _fin(self.label_coverage),
            "metrics": {m.metric: m.to_dict() for m in self.metrics},
        }


# --------------------------------------------------------------------------- validation


def _as_1d(name: str, values: ArrayLike, n: int | None, owner: str) -> NDArray[Any]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ConfigError(
            f"{owner}: {name!r} must be one-dimensional (one value per prediction); "
            f"got shape {arr.shape}."
        )
    if n is not None and arr.shape[0] != n:
        raise ConfigError(
            f"{owner}: {name!r} has {arr.shape[0]} values but there are {n} predictions; "
            "pass exactly one value per prediction."
        )
    return arr


def _window_codes(window: ArrayLike, n: int, owner: str) -> tuple[NDArray[np.int64], NDArray[Any]]:
    arr = _as_1d("window", window, n, owner)
    if arr.dtype.kind not in "iu":
        integral = (
            arr.dtype.kind == "f"
            and bool(np.all(np.isfinite(arr)))
            and bool(np.all(arr == np.round(arr)))
        )
        if integral or arr.size == 0:
            arr = arr.astype(np.int64)
        else:
            raise ConfigError(
                f"{owner}: 'window' must hold integer window indices (e.g. day number or "
                f"batch id); got dtype {arr.dtype}."
            )
    ids, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), ids


def _missing(y: NDArray[Any]) -> NDArray[np.bool_]:
    """Vectorised missing-label mask: NaN in float arrays, None or NaN in object arrays."""
    if y.dtype.kind == "f":
        return np.isnan(y)
    if y.dtype.kind == "O":
        is_none = np.equal(y, np.array(None, dtype=object)).astype(bool)
        is_nan = np.not_equal(y, y).astype(bool)  # NaN is the one value unequal to itself
        return is_none | is_nan
    return np.zeros(y.shape, dtype=bool)


def _scores(name: str, values: ArrayLike, n: int | None, owner: str, *, unit: bool) -> _Float:
    arr = _as_1d(name, values, n, owner)
    try:
        out = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{owner}: {name!r} must be numeric; got dtype {arr.dtype}.") from None
    if not np.all(np.isfinite(out)):
        raise ConfigError(
            f"{owner}: {name!r} contains NaN or infinite values; drop or impute those rows first."
        )
    if unit and out.size and (out.min() < 0.0 or out.max() > 1.0):
        raise ConfigError(
            f"{owner}: {name!r} must be probabilities of the positive class in [0, 1]; "
            f"got values in [{out.min():g}, {out.max():g}]. Pass predict_proba[:, 1], not "
            "raw margins or logits."
        )
    return out


def _check_costs(costs: Mapping[str, float] | None, owner: str) -> dict[str, float] | None:
    if costs is None:
        return None
    unknown = set(costs) - set(_COST_KEYS)
    if unknown:
        raise ConfigError(
            f"{owner}: unknown cost key(s) {sorted(unknown)}; use 'tp', 'fp', 'fn', 'tn' "
            "(missing keys cost 0)."
        )
    out: dict[str, float] = {}
    for key in _COST_KEYS:
        value = costs.get(key, 0.0)
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(float(value))
        ):
            raise ConfigError(f"{owner}: cost {key!r} must be a finite number; got {value!r}.")
        out[key] = float(value)
    return out


# --------------------------------------------------------------------------- kernels


def _ratio(num: _Float, den: _Float) -> _Float:
    """``num / den`` with NaN where ``den`` is zero, and no warning."""
    out = np.full(np.shape(num), np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _confusion_metrics(tp: _Float, fp: _Float, fn: _Float, tn: _Float) -> dict[str, _Float]:
    """Accuracy, precision, recall and F1 from (possibly expected) confusion counts."""
    return {
        "accuracy": _ratio(tp + tn, tp + fp + fn + tn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2.0 * tp, 2.0 * tp + fp + fn),
    }


def _grouped_auc(codes: NDArray[np.int64], n_groups: int, scores: _Float, pos: _Float) -> _Float:
    """ROC AUC per group, with ``pos`` the (expected) positive weight of each row.

    Rows are sorted by group, then by descending score; rows with equal score form
    one threshold. Walking the thresholds, each threshold's negative mass meets
    the positive mass ranked strictly above it plus half its own (ties averaged),
    which is the trapezoid under the ROC curve. With 0/1 weights the sum is the
    Mann-Whitney U statistic (equivalently the rank-sum of positives with tied
    ranks averaged, minus ``P(P+1)/2``), so AUC = U / (P·N); with probabilities it
    is the expected-ROC-curve area that CBPE uses.
    """
    neg = 1.0 - pos
    p_tot = np.bincount(codes, weights=pos, minlength=n_groups)
    n_tot = np.bincount(codes, weights=neg, minlength=n_groups)
    if codes.size == 0:
        return np.full(n_groups, np.nan)
    order = np.lexsort((-scores, codes))
    c, s = codes[order], scores[order]
    new_threshold = np.ones(c.size, dtype=bool)
    new_threshold[1:] = (c[1:] != c[:-1]) | (s[1:] != s[:-1])
    starts = np.flatnonzero(new_threshold)
    g_pos = np.add.reduceat(pos[order], starts)
    g_neg = np.add.reduceat(neg[order], starts)
    g_code = c[starts]
    before = np.cumsum(g_pos) - g_pos  # positive mass above each threshold, all groups
    first = np.ones(g_code.size, dtype=bool)
    first[1:] = g_code[1:] != g_code[:-1]
    first_idx = np.flatnonzero(first)
    span = np.diff(np.append(first_idx, g_code.size))
    before = before - np.repeat(before[first_idx], span)  # restart at each group
    u = np.bincount(g_code, weights=g_neg * (before + 0.5 * g_pos), minlength=n_groups)
    return _ratio(u, p_tot * n_tot)


def _realised_arrays(
    codes: NDArray[np.int64],
    n_groups: int,
    y_pos: NDArray[np.bool_],
    p_pos: NDArray[np.bool_],
    scores: _Float | None,
) -> tuple[dict[str, _Float], dict[str, _Float]]:
    """Counts and metrics per group, over rows that are all labelled."""
    yf, pf = y_pos.astype(np.float64), p_pos.astype(np.float64)
    counts = {
        "tp": np.bincount(codes, weights=yf * pf, minlength=n_groups),
        "fp": np.bincount(codes, weights=(1.0 - yf) * pf, minlength=n_groups),
        "fn": np.bincount(codes, weights=yf * (1.0 - pf), minlength=n_groups),
        "tn": np.bincount(codes, weights=(1.0 - yf) * (1.0 - pf), minlength=n_groups),
    }
    metrics = _confusion_metrics(counts["tp"], counts["fp"], counts["fn"], counts["tn"])
    metrics["roc_auc"] = (
        np.full(n_groups, np.nan) if scores is None else _grouped_auc(codes, n_groups, scores, yf)
    )
    return counts, metrics


# --------------------------------------------------------------------------- realised


def realised_performance(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    window: ArrayLike,
    scores: ArrayLike | None = None,
    costs: Mapping[str, float] | None = None,
    positive: Any = 1,
    labelled: ArrayLike | None = None,
) -> list[WindowPerformance]:
    """Realised binary-classification performance per window, sorted by window.

    ``y_true`` may contain missing labels (NaN, or None in an object array); only
    labelled rows (``labelled``, default: ``y_true`` not missing) enter the
    metrics. ``scores`` (any real-valued ranking score) enables ROC AUC. ``costs``
    maps ``"tp"``/``"fp"``/``"fn"``/``"tn"`` to the cost of one such outcome
    (missing keys cost 0); ``cost`` is the window total over labelled rows and
    ``cost_per_prediction`` that total per labelled prediction.
    """
    owner = "realised_performance"
    yt = _as_1d("y_true", y_true, None, owner)
    n = yt.shape[0]
    yp = _as_1d("y_pred", y_pred, n, owner)
    codes, ids = _window_codes(window, n, owner)
    cost_map = _check_costs(costs, owner)
    missing = _missing(yt)
    if np.any(_missing(yp)):
        raise ConfigError(f"{owner}: 'y_pred' has missing values; every prediction needs a label.")
    if labelled is None:
        mask = ~missing
    else:
        mask = _as_1d("labelled", labelled, n, owner)
        if mask.dtype != np.bool_:
            raise ConfigError(
                f"{owner}: 'labelled' must be a boolean mask; got dtype {mask.dtype}."
            )
        if np.any(mask & missing):
            raise ConfigError(
                f"{owner}: 'labelled' marks {int(np.sum(mask & missing))} row(s) whose y_true "
                "is missing; leave those rows out of the mask."
            )
    s_all = None if scores is None else _as_1d("scores", scores, n, owner)
    n_groups = ids.size
    lab_codes = codes[mask]
    y_pos = np.asarray(yt[mask] == positive, dtype=bool).reshape(-1)
    p_pos = np.asarray(yp[mask] == positive, dtype=bool).reshape(-1)
    s_lab = (
        None
        if s_all is None
        else _scores("scores", s_all[mask], int(mask.sum()), owner, unit=False)
    )
    counts, metrics = _realised_arrays(lab_codes, n_groups, y_pos, p_pos, s_lab)
    n_rows = np.bincount(codes, minlength=n_groups)
    n_lab = np.bincount(lab_codes, minlength=n_groups)
    if cost_map is not None:
        cost = np.zeros(n_groups)
        for k in _COST_KEYS:
            cost = cost + cost_map[k] * counts[k]
        cost = np.where(n_lab > 0, cost, np.nan)
        cost_per = _ratio(cost, n_lab.astype(np.float64))
    icounts = {k: np.rint(v).astype(np.int64) for k, v in counts.items()}
    out = []
    for g in range(n_groups):  # one result object per window, not per row
        out.append(
            WindowPerformance(
                window=int(ids[g]),
                n=int(n_rows[g]),
                n_labelled=int(n_lab[g]),
                label_coverage=float(n_lab[g] / n_rows[g]),
                tp=int(icounts["tp"][g]),
                fp=int(icounts["fp"][g]),
                fn=int(icounts["fn"][g]),
                tn=int(icounts["tn"][g]),
                **{m: _fin(metrics[m][g]) for m in METRICS},
                cost=None if cost_map is None else _fin(cost[g]),
                cost_per_prediction=None if cost_map is None else _fin(cost_per[g]),
            )
        )
    return out


# --------------------------------------------------------------------------- CBPE


class _Isotonic:
    """Monotone (non-decreasing) calibration map fitted by isotonic regression."""

    def __init__(self, scores: _Float, labels: _Float) -> None:
        from scipy.optimize import isotonic_regression

        knots, inverse = np.unique(scores, return_inverse=True)
        weight = np.bincount(inverse)
        mean = np.bincount(inverse, weights=labels) / weight  # pool tied scores first
        self.knots: _Float = knots
        self.values: _Float = np.clip(
            isotonic_regression(mean, weights=weight, increasing=True).x, 0.0, 1.0
        )

    def __call__(self, scores: _Float) -> _Float:
        # linear between knots, clipped to the end values outside the reference range
        return np.asarray(np.interp(scores, self.knots, self.values), dtype=np.float64)


class CBPE:
    """Confidence-based performance estimation for a binary classifier.

    ``CBPE().fit(reference_scores, reference_labels)`` then
    ``.estimate(scores, y_pred, window=...)``. With ``calibrate=True`` the
    scores are mapped through an isotonic calibrator fitted on the reference, so
    the estimate holds even when the model's probabilities are not calibrated;
    with ``calibrate=False`` they are taken as calibrated. The estimate is only
    as good as the calibration carries over: it tracks covariate shift, not
    concept shift (a change in P(y | x)).

    Sampling errors: for each window size, the standard deviation of the
    realised metric over ``n_chunks`` random reference chunks of that size (drawn
    with replacement, seeded), like NannyML's reference-chunk errors.
    """

    _MAX_DRAW = 2_000_000  # rows drawn at once for one sampling-error size

    def __init__(
        self,
        *,
        calibrate: bool = True,
        sampling_error: bool = True,
        n_chunks: int = 100,
        threshold: float = 0.5,
        positive: Any = 1,
        seed: int = 0,
    ) -> None:
        validate_params(
            "CBPE",
            {"n_chunks": n_chunks, "threshold": threshold, "seed": seed},
            {
                "n_chunks": Interval(int, 2),
                "threshold": Interval(float, 0.0, 1.0),
                "seed": Interval(int, 0),
            },
        )
        self.calibrate = bool(calibrate)
        self.sampling_error = bool(sampling_error)
        self.n_chunks = int(n_chunks)
        self.threshold = float(threshold)
        self.positive = positive
        self.seed = int(seed)
        self._calibrator: _Isotonic | None = None
        self._reference: tuple[_Float, NDArray[np.bool_], NDArray[np.bool_]] | None = None
        self._se_cache: dict[int, dict[str, float]] = {}

    @property
    def fitted(self) -> bool:
        return self._reference is not None

    def fit(
        self,
        reference_scores: ArrayLike,
        reference_labels: ArrayLike,
        *,
        reference_predictions: ArrayLike | None = None,
    ) -> CBPE:
        """Fit the calibrator and keep the reference for sampling errors.

        ``reference_labels`` must all be present. ``reference_predictions``
        defaults to ``reference_scores >= threshold``.
        """
        owner = "CBPE.fit"
        labels = _as_1d("reference_labels", reference_labels, None, owner)
        n = labels.shape[0]
        if n < 2:
            raise ConfigError(f"{owner}: the reference needs at least 2 labelled rows; got {n}.")
        scores = _scores("reference_scores", reference_scores, n, owner, unit=True)
        if np.any(_missing(labels)):
            raise ConfigError(
                f"{owner}: 'reference_labels' has missing values; fit on labelled rows only."
            )
        y = np.asarray(labels == self.positive, dtype=bool).reshape(-1)
        if y.all() or not y.any():
            raise ConfigError(
                f"{owner}: the reference labels are all one class; CBPE needs both positives "
                f"(== {self.positive!r}) and negatives. Check 'positive' or widen the reference."
            )
        if reference_predictions is None:
            pred = scores >= self.threshold
        else:
            rp = _as_1d("reference_predictions", reference_predictions, n, owner)
            pred = np.asarray(rp == self.positive, dtype=bool).reshape(-1)
        self._calibrator = _Isotonic(scores, y.astype(np.float64)) if self.calibrate else None
        self._reference = (scores, y, pred)
        self._se_cache = {}
        return self

    def calibrated(self, scores: ArrayLike) -> _Float:
        """The calibrated probabilities CBPE uses for ``scores``."""
        self._need_fit("CBPE.calibrated")
        s = _scores("scores", scores, None, "CBPE.calibrated", unit=True)
        return s if self._calibrator is None else self._calibrator(s)

    def _need_fit(self, owner: str) -> tuple[_Float, NDArray[np.bool_], NDArray[np.bool_]]:
        if self._reference is None:
            raise ConfigError(
                f"{owner}: this CBPE is not fitted; call .fit(reference_scores, "
                "reference_labels) on labelled reference data first."
            )
        return self._reference

    def _standard_errors(self, size: int) -> dict[str, float]:
        """Sampling error per metric for a window of ``size`` rows.

        Chunks are drawn at a nearby size on a geometric grid (8 steps per
        doubling, capped at ``_MAX_DRAW / n_chunks`` rows) and rescaled by
        ``sqrt(drawn / size)``, so windows of many different sizes share a few
        draws.
        """
        k = self.n_chunks
        draw = min(size, max(1, self._MAX_DRAW // k))
        if draw > 64:
            draw = round(2 ** (round(8 * math.log2(draw)) / 8))
        if draw not in self._se_cache:
            scores, y, pred = self._need_fit("CBPE")
            rng = np.random.default_rng([self.seed, draw])
            idx = rng.integers(0, scores.size, size=k * draw)
            codes = np.repeat(np.arange(k, dtype=np.int64), draw)
            _, metrics = _realised_arrays(codes, k, y[idx], pred[idx], scores[idx])
            at_draw: dict[str, float] = {}
            for m in METRICS:
                vals = metrics[m][np.isfinite(metrics[m])]
                at_draw[m] = float(np.std(vals, ddof=1)) if vals.size >= 2 else math.nan
            self._se_cache[draw] = at_draw
        scale = math.sqrt(draw / size)
        return {m: v * scale for m, v in self._se_cache[draw].items()}

    def estimate(
        self, scores: ArrayLike, y_pred: ArrayLike, *, window: ArrayLike
    ) -> list[EstimatedPerformance]:
        """Estimated accuracy, precision, recall, F1 and ROC AUC per window (sorted)."""
        owner = "CBPE.estimate"
        self._need_fit(owner)
        yp = _as_1d("y_pred", y_pred, None, owner)
        n = yp.shape[0]
        s = _scores("scores", scores, n, owner, unit=True)
        if np.any(_missing(yp)):
            raise ConfigError(
                f"{owner}: 'y_pred' has missing values; every prediction needs a label."
            )
        codes, ids = _window_codes(window, n, owner)
        g = ids.size
        p = s if self._calibrator is None else self._calibrator(s)
        hat = np.asarray(yp == self.positive, dtype=bool).reshape(-1).astype(np.float64)
        etp = np.bincount(codes, weights=hat * p, minlength=g)
        efp = np.bincount(codes, weights=hat * (1.0 - p), minlength=g)
        efn = np.bincount(codes, weights=(1.0 - hat) * p, minlength=g)
        etn = np.bincount(codes, weights=(1.0 - hat) * (1.0 - p), minlength=g)
        metrics = _confusion_metrics(etp, efp, efn, etn)
        # order by the model's own scores (the realised AUC ranks by them), weigh by p
        metrics["roc_auc"] = _grouped_auc(codes, g, s, p)
        sizes = np.bincount(codes, minlength=g)
        out = []
        for i in range(g):  # one result object per window
            se = self._standard_errors(int(sizes[i])) if self.sampling_error else {}
            out.append(
                EstimatedPerformance(
                    window=int(ids[i]),
                    n=int(sizes[i]),
                    **{m: _fin(metrics[m][i]) for m in METRICS},
                    **{f"{m}_se": _fin(se.get(m)) for m in METRICS},
                )
            )
        return out

    @staticmethod
    def reconcile(
        estimated: Sequence[EstimatedPerformance], realised: Sequence[WindowPerformance]
    ) -> list[Reconciliation]:
        """Per estimated window: estimate, realised value (where labelled) and difference.

        ``difference`` is ``realised - estimated``; windows with no realised
        record yet get ``n_labelled = 0`` and ``None`` realised values.
        """
        by_window = {r.window: r for r in realised}
        out = []
        for est in estimated:
            real = by_window.get(est.window)
            comps = []
            for m in METRICS:
                e = getattr(est, m)
                r = None if real is None else getattr(real, m)
                comps.append(
                    MetricComparison(
                        metric=m,
                        estimated=e,
                        realised=r,
                        difference=None if e is None or r is None else r - e,
                        sampling_error=getattr(est, f"{m}_se"),
                    )
                )
            out.append(
                Reconciliation(
                    window=est.window,
                    n=est.n,
                    n_labelled=0 if real is None else real.n_labelled,
                    label_coverage=0.0 if real is None else real.label_coverage,
                    metrics=tuple(comps),
                )
            )
        return out
