"""What a multi-class model's mistakes cost, from a cost matrix, and the decisions that cost least.

A cost matrix ``C[i, j]`` is what deciding class ``j`` costs when the truth is class ``i``
(a wrong triage level, a misrouted ticket); the diagonal is usually 0. Each row's cost may
be scaled by a per-row weight (the order's value). With class probabilities the decision
that costs least in expectation is ``argmin_j sum_i p_i C[i, j]`` (the Bayes decision),
which is not the most probable class when mistakes cost differently; :func:`matrix_costs`
reports both, so a team sees what shipping ``argmax`` costs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hindsight._plain import plain_fields
from hindsight.errors import ConfigError, DataError

__all__ = ["CostMatrix", "MatrixCosts", "codes_for", "matrix_costs", "matrix_row_costs", "mean_ci"]

_Float = NDArray[np.float64]


def mean_ci(values: _Float, confidence: float = 0.95) -> tuple[float, float]:
    """A normal-approximation interval for the mean of per-row costs (CLT; large n)."""
    from scipy.stats import norm

    n = values.size
    mean = float(values.mean())
    if n < 2:
        return (mean, mean)
    half = float(norm.ppf((1 + confidence) / 2)) * float(values.std(ddof=1)) / np.sqrt(n)
    return (mean - half, mean + half)


@dataclass(frozen=True)
class CostMatrix:
    """Costs of deciding each class (columns) for each true class (rows)."""

    classes: tuple[str, ...]
    matrix: tuple[tuple[float, ...], ...]

    @classmethod
    def parse(cls, spec: Any, classes: Sequence[Any] | None = None) -> CostMatrix:
        """A matrix from ``{true: {predicted: cost}}`` or a square array with ``classes``.

        In the mapping form a missing pair costs 1 off the diagonal and 0 on it, so only
        the mistakes that cost differently need naming.
        """
        if isinstance(spec, CostMatrix):
            return spec
        if isinstance(spec, Mapping):
            if "matrix" in spec:
                return cls.parse(spec["matrix"], spec.get("classes", classes))
            labels = sorted({str(k) for k in spec} | {str(k) for v in spec.values()
                                                       if isinstance(v, Mapping) for k in v})
            if classes is not None:
                extra = sorted(set(labels) - {str(c) for c in classes})
                if extra:
                    raise ConfigError(
                        f"The cost matrix names classes {extra} that are not among the classes "
                        f"{[str(c) for c in classes]}; check their spelling."
                    )
                labels = [str(c) for c in classes]
            rows = []
            for t in labels:
                given = spec.get(t, spec.get(_maybe_int(t), {}))
                if not isinstance(given, Mapping):
                    raise ConfigError(
                        f"Cost matrix row {t!r} must map predicted classes to costs, "
                        f"e.g. {{'{t}': {{'other': 5}}}}. Got {given!r}."
                    )
                row = []
                for p in labels:
                    value = given.get(p, given.get(_maybe_int(p), 0.0 if p == t else 1.0))
                    row.append(_cost(value, t, p))
                rows.append(tuple(row))
            return cls(tuple(labels), tuple(rows))
        arr = np.asarray(spec, dtype=np.float64) if not isinstance(spec, str) else None
        if arr is None or arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 2:
            raise ConfigError(
                "A multi-class cost matrix must be a square K x K array (rows: true class, "
                "columns: decided class) or a mapping {true: {decided: cost}}. "
                f"Got {spec!r:.80}."
            )
        if classes is None or len(classes) != arr.shape[0]:
            raise ConfigError(
                f"A {arr.shape[0]} x {arr.shape[0]} cost matrix needs classes= naming its "
                f"{arr.shape[0]} rows and columns in order."
                + ("" if classes is None else f" Got {len(classes)} classes.")
            )
        if not np.isfinite(arr).all():
            raise ConfigError("The cost matrix has values that are not finite numbers.")
        return cls(tuple(str(c) for c in classes), tuple(tuple(map(float, r)) for r in arr))

    @property
    def array(self) -> _Float:
        return np.asarray(self.matrix, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "matrix": [list(r) for r in self.matrix]}


def _maybe_int(label: str) -> Any:
    try:
        return int(label)
    except ValueError:
        return label


def _cost(value: Any, t: str, p: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"The cost of deciding {p!r} for a true {t!r} must be a number.") from exc
    if not np.isfinite(out):
        raise ConfigError(f"The cost of deciding {p!r} for a true {t!r} must be finite.")
    return out


@dataclass(frozen=True)
class MatrixCosts:
    """Expected cost per decision of the given decisions, and of the Bayes decisions."""

    expected_cost: float
    expected_cost_ci: tuple[float, float]
    total_cost: float
    n: int
    by_pair: dict[str, dict[str, float]]  # true class -> decided class -> total cost
    bayes_expected_cost: float | None
    bayes_changed_share: float | None  # share of rows whose cheapest class is not the one decided

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


def codes_for(labels: ArrayLike, classes: Sequence[str], owner: str) -> NDArray[np.intp]:
    """Each label's index in ``classes`` (compared as text), or a DataError naming strays."""
    text = np.asarray(labels).astype(str)
    order = np.argsort(np.asarray(classes))
    sorted_classes = np.asarray(classes)[order]
    pos = np.searchsorted(sorted_classes, text)
    pos = np.clip(pos, 0, len(classes) - 1)
    found = sorted_classes[pos] == text
    if not found.all():
        strays = sorted(set(text[~found].tolist()))[:5]
        raise DataError(
            f"{owner}: labels {strays} are not in the cost matrix's classes {list(classes)}; "
            "add them to the matrix."
        )
    return np.asarray(order[pos], dtype=np.intp)


def _coded(
    y_true: ArrayLike, y_pred: ArrayLike, costs: CostMatrix, scale: ArrayLike | None, owner: str
) -> tuple[NDArray[np.intp], NDArray[np.intp], _Float]:
    """True and decided classes as matrix indices, and each row's scale (1 without one)."""
    t = codes_for(y_true, costs.classes, owner)
    p = codes_for(y_pred, costs.classes, owner)
    if t.shape != p.shape or t.ndim != 1 or t.size == 0:
        raise DataError(f"{owner}: need one decision per label; got {p.shape} for {t.shape}.")
    w = np.ones(t.size) if scale is None else np.asarray(scale, dtype=np.float64)
    if w.shape != t.shape or not np.isfinite(w).all():
        raise DataError(f"{owner}: scale needs one finite number per row ({t.size}).")
    return t, p, w


def matrix_row_costs(
    y_true: ArrayLike, y_pred: ArrayLike, costs: CostMatrix, *, scale: ArrayLike | None = None
) -> _Float:
    """What each multi-class decision cost: ``C[true, decided]``, times the row's scale."""
    t, p, w = _coded(y_true, y_pred, costs, scale, "matrix_row_costs")
    return costs.array[t, p] * w


def matrix_costs(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    costs: CostMatrix,
    *,
    probabilities: ArrayLike | None = None,
    prob_classes: Sequence[Any] | None = None,
    scale: ArrayLike | None = None,
    confidence: float = 0.95,
) -> MatrixCosts:
    """Cost of multi-class decisions under ``costs``; with probabilities, the Bayes decisions too.

    ``probabilities`` columns follow ``prob_classes`` (default: the matrix's classes);
    ``scale`` multiplies each row's cost (one number per row).
    """
    owner = "matrix_costs"
    classes = costs.classes
    c = costs.array
    t, p, w = _coded(y_true, y_pred, costs, scale, owner)
    row_cost = c[t, p] * w
    k = len(classes)
    pair_totals = np.bincount(t * k + p, weights=row_cost, minlength=k * k).reshape(k, k)
    by_pair = {
        classes[i]: {classes[j]: float(pair_totals[i, j]) for j in range(k) if pair_totals[i, j]}
        for i in range(k)
        if pair_totals[i].any()
    }
    bayes = changed = None
    if probabilities is not None:
        probs = np.asarray(probabilities, dtype=np.float64)
        cols = list(classes) if prob_classes is None else [str(x) for x in prob_classes]
        if probs.ndim != 2 or probs.shape != (t.size, len(cols)):
            raise DataError(
                f"{owner}: probabilities must be (n rows, {len(cols)} classes); got {probs.shape}."
            )
        missing = sorted(set(classes) - set(cols))
        if missing:
            raise DataError(f"{owner}: probabilities have no column for classes {missing}.")
        aligned = probs[:, [cols.index(x) for x in classes]]
        # Expected cost of deciding j for each row: sum_i p_i C[i, j].
        best = np.argmin(aligned @ c, axis=1)
        bayes = float((c[t, best] * w).mean())
        changed = float((best != p).mean())
    return MatrixCosts(
        expected_cost=float(row_cost.mean()),
        expected_cost_ci=mean_ci(row_cost, confidence),
        total_cost=float(row_cost.sum()),
        n=int(t.size),
        by_pair=by_pair,
        bayes_expected_cost=bayes,
        bayes_changed_share=changed,
    )
