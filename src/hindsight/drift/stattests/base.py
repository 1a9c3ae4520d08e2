"""The drift-test seam: ``(reference, current) -> TestResult``, registered by a stable name.

A test compares one reference sample with one current sample and reports its statistic,
its p-value (for hypothesis tests) and an effect size apart, then applies its threshold
to one of them. Numeric tests take 1-D arrays of finite floats; categorical tests take
:class:`Counts` (aligned category counts) or two arrays of labels; multivariate tests
take 2-D arrays (rows x features). Binned tests (PSI, Jensen-Shannon, ...) accept
numeric arrays too and bin them at the reference's quantiles.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from hindsight._validation import Interval, Options, validate_params
from hindsight.errors import DriftError

__all__ = [
    "REGISTRY",
    "Counts",
    "DriftTest",
    "TestResult",
    "as_counts",
    "as_numeric",
    "quantile_bin_counts",
    "register",
]

Kind = Literal["numeric", "categorical", "multivariate"]
ThresholdOn = Literal["p_value", "effect_size"]


@dataclass(frozen=True)
class TestResult:
    """What one drift test found on one column (or one set of columns)."""

    __test__ = False  # not a pytest test class

    test: str
    statistic: float
    p_value: float | None
    effect_size: float
    threshold: float
    threshold_on: ThresholdOn
    drifted: bool
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "statistic": _finite_or_none(self.statistic),
            "p_value": _finite_or_none(self.p_value),
            "effect_size": _finite_or_none(self.effect_size),
            "threshold": self.threshold,
            "threshold_on": self.threshold_on,
            "drifted": self.drifted,
            "details": dict(self.details),
        }


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class Counts:
    """Category counts of a reference and a current sample, aligned on the same labels."""

    reference: np.ndarray
    current: np.ndarray
    labels: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        ref = np.asarray(self.reference, dtype=np.float64)
        cur = np.asarray(self.current, dtype=np.float64)
        if ref.ndim != 1 or cur.ndim != 1 or ref.shape != cur.shape:
            raise DriftError(
                "Counts needs two 1-D arrays of the same length (one count per category). "
                f"Got shapes {ref.shape} and {cur.shape}."
            )
        if ref.size == 0:
            raise DriftError("Counts needs at least one category. Got none.")
        if not (np.isfinite(ref).all() and np.isfinite(cur).all()) or (ref < 0).any() or (
            cur < 0
        ).any():
            raise DriftError("Category counts must be finite and non-negative.")
        if ref.sum() == 0 or cur.sum() == 0:
            raise DriftError(
                "Both samples need at least one counted value; one of them is empty."
            )
        if self.labels is not None and len(self.labels) != ref.size:
            raise DriftError(
                f"Counts got {len(self.labels)} labels for {ref.size} categories."
            )
        object.__setattr__(self, "reference", ref)
        object.__setattr__(self, "current", cur)

    @property
    def n_reference(self) -> float:
        return float(self.reference.sum())

    @property
    def n_current(self) -> float:
        return float(self.current.sum())


def as_numeric(values: Any, role: str) -> np.ndarray:
    """A 1-D float64 array of finite values, or a :class:`DriftError` that says why not."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DriftError(
            f"The {role} sample must be numeric; it could not be read as floats ({exc}). "
            "Use a categorical test for labels."
        ) from exc
    if arr.ndim != 1:
        raise DriftError(f"The {role} sample must be 1-D. Got shape {arr.shape}.")
    if arr.size == 0:
        raise DriftError(f"The {role} sample is empty; a drift test needs at least one value.")
    if not np.isfinite(arr).all():
        raise DriftError(
            f"The {role} sample contains NaN or infinity. Drop or impute missing values "
            "first (the drift report counts them apart as a null-rate change)."
        )
    return arr


def as_counts(reference: Any, current: Any) -> Counts:
    """Aligned :class:`Counts` from ``Counts`` itself or from two arrays of labels."""
    if isinstance(reference, Counts):
        return reference
    ref = np.asarray(reference)
    cur = np.asarray(current)
    if ref.ndim != 1 or cur.ndim != 1:
        raise DriftError("Categorical samples must be 1-D arrays of labels.")
    if ref.size == 0 or cur.size == 0:
        raise DriftError("A categorical sample is empty; a drift test needs at least one value.")
    labels, inverse = np.unique(np.concatenate([ref, cur]).astype(str), return_inverse=True)
    ref_counts = np.bincount(inverse[: ref.size], minlength=labels.size)
    cur_counts = np.bincount(inverse[ref.size :], minlength=labels.size)
    return Counts(ref_counts, cur_counts, tuple(str(x) for x in labels))


def quantile_bin_counts(reference: np.ndarray, current: np.ndarray, bins: int) -> Counts:
    """Counts of both samples in ``bins`` bins cut at the reference's quantiles.

    Edges that coincide (heavy ties) are merged, and the outer bins reach to infinity so
    current values outside the reference's range are counted.
    """
    edges = np.unique(np.quantile(reference, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    ref_idx = np.searchsorted(edges, reference, side="right")
    cur_idx = np.searchsorted(edges, current, side="right")
    size = edges.size + 1
    return Counts(
        np.bincount(ref_idx, minlength=size).astype(np.float64),
        np.bincount(cur_idx, minlength=size).astype(np.float64),
    )


class DriftTest(abc.ABC):
    """Base of every drift test.

    A subclass declares its registry ``name``, the ``kinds`` of data it takes, whether it
    has a p-value, its default threshold and what the threshold applies to, and
    implements :meth:`_compute`. Parameters are validated once and then read-only.
    """

    name: ClassVar[str]
    kinds: ClassVar[frozenset[Kind]]
    has_p_value: ClassVar[bool]
    default_threshold: ClassVar[float]
    threshold_on: ClassVar[ThresholdOn]
    #: Name of the effect size reported next to the p-value (e.g. "ks_distance").
    effect_name: ClassVar[str] = "effect_size"
    _constraints: ClassVar[Mapping[str, Interval | Options]] = {}

    def __init__(self, threshold: float | None = None, **params: Any) -> None:
        threshold = self.default_threshold if threshold is None else threshold
        constraints: dict[str, Interval | Options] = dict(self._constraints)
        constraints["threshold"] = (
            Interval(float, 0.0, 1.0, closed="neither")
            if self.threshold_on == "p_value"
            else Interval(float, 0.0, None, closed="neither")
        )
        validate_params(type(self).__name__, {**params, "threshold": threshold}, constraints)
        self.threshold = float(threshold)
        self.params: dict[str, Any] = dict(params)
        for key, value in params.items():
            setattr(self, key, value)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in {"threshold": self.threshold, **self.params}.items())
        return f"{type(self).__name__}({args})"

    def __call__(self, reference: Any, current: Any) -> TestResult:
        statistic, p_value, effect, details = self._compute(reference, current)
        if self.threshold_on == "p_value":
            if p_value is None:
                raise DriftError(f"{self.name} produced no p-value to compare with its threshold.")
            drifted = bool(p_value < self.threshold)
        else:
            drifted = bool(effect >= self.threshold)
        return TestResult(
            test=self.name,
            statistic=float(statistic),
            p_value=None if p_value is None else float(p_value),
            effect_size=float(effect),
            threshold=self.threshold,
            threshold_on=self.threshold_on,
            drifted=drifted,
            details={"effect": self.effect_name, **details},
        )

    @abc.abstractmethod
    def _compute(
        self, reference: Any, current: Any
    ) -> tuple[float, float | None, float, dict[str, Any]]:
        """Return ``(statistic, p_value or None, effect_size, details)``."""


REGISTRY: dict[str, type[DriftTest]] = {}


def register(cls: type[DriftTest]) -> type[DriftTest]:
    """Class decorator: make a test available under its stable ``name``."""
    name = cls.name
    if name in REGISTRY and REGISTRY[name] is not cls:
        raise DriftError(f"A drift test named {name!r} is already registered.")
    REGISTRY[name] = cls
    return cls
