"""The streaming-detector seam: feed values one at a time, read whether the stream drifted.

A detector sees one value per :meth:`~StreamingDetector.update` call and answers
through read-only properties: :attr:`~StreamingDetector.drift_detected` (did this
value complete a change?) and, for detectors that have one, ``warning_detected``.
:meth:`~StreamingDetector.update_many` feeds a whole array at once and returns the
positions where drift fired; it gives exactly the detections (and the final state)
that the same values fed one by one would give, because both paths do the same
floating-point operations in the same order.

Parameters are validated once, through :func:`hindsight._validation.validate_params`,
and then read-only. After a detected drift a detector restarts its statistics (each
module says how it follows its paper and River there); :meth:`reset` forgets
everything, counters included.
"""

from __future__ import annotations

import abc
import numbers
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, NoReturn, Self, TypeVar, overload

import numpy as np

from hindsight._validation import Interval, Options, validate_params
from hindsight.errors import DriftError

__all__ = [
    "REGISTRY",
    "Param",
    "StreamingDetector",
    "as_binary_batch",
    "as_float_batch",
    "non_finite_error",
    "not_binary_error",
    "to_float",
]

T = TypeVar("T")

#: Every detector class by its stable ``name``.
REGISTRY: dict[str, type[StreamingDetector]] = {}

# update_many works through a stream in chunks: small right after a drift (the next one
# may come soon), doubling while none fires, so a chunk is never wasted for long.
_FIRST_CHUNK = 1024
_MAX_CHUNK = 1 << 17


class Param(Generic[T]):
    """A read-only detector parameter, stored once by :meth:`StreamingDetector._set_params`."""

    __slots__ = ("name",)

    def __init__(self) -> None:
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Param[T]: ...

    @overload
    def __get__(self, obj: StreamingDetector, owner: type | None = None) -> T: ...

    def __get__(self, obj: StreamingDetector | None, owner: type | None = None) -> Param[T] | T:
        if obj is None:
            return self
        value: T = obj._params[self.name]
        return value

    def __set__(self, obj: StreamingDetector, value: T) -> NoReturn:
        raise AttributeError(
            f"{type(obj).__name__} parameters are frozen; create a new detector instead "
            f"of setting {self.name!r}."
        )


def to_float(owner: str, x: Any) -> float:
    """``x`` as a Python float (the slow path of ``update`` for ints and NumPy scalars)."""
    if isinstance(x, numbers.Real):
        try:
            return float(x)
        except OverflowError:
            pass
    raise non_finite_error(owner, x)


def non_finite_error(owner: str, x: Any) -> DriftError:
    """The error for a value that is not a finite number."""
    return DriftError(
        f"{owner} got {x!r}; it takes finite numbers. Drop or impute missing values "
        "before feeding a detector."
    )


def not_binary_error(owner: str, x: Any) -> DriftError:
    """The error for a value that is not 0 or 1."""
    return DriftError(
        f"{owner} takes a stream of 0/1 errors (1 = the model was wrong). Got {x!r}; "
        "compare predictions with labels first."
    )


def as_float_batch(owner: str, xs: Any) -> np.ndarray:
    """A 1-D float64 array of finite values, or a :class:`DriftError` naming the first bad one."""
    try:
        arr = np.asarray(xs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DriftError(
            f"{owner}.update_many takes a 1-D sequence of numbers; it could not be read "
            f"as floats ({exc})."
        ) from exc
    if arr.ndim != 1:
        raise DriftError(f"{owner}.update_many takes a 1-D sequence. Got shape {arr.shape}.")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DriftError(
            f"{owner}.update_many got {arr[i]!r} at index {i}; it takes finite numbers. "
            "Drop or impute missing values before feeding a detector."
        )
    return arr


def as_binary_batch(owner: str, xs: Any) -> np.ndarray:
    """A 1-D float64 array of 0s and 1s, or a :class:`DriftError` naming the first bad value."""
    try:
        arr = np.asarray(xs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DriftError(
            f"{owner}.update_many takes a 1-D sequence of 0/1 errors; it could not be read "
            f"as numbers ({exc})."
        ) from exc
    if arr.ndim != 1:
        raise DriftError(f"{owner}.update_many takes a 1-D sequence. Got shape {arr.shape}.")
    bad = (arr != 0.0) & (arr != 1.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DriftError(
            f"{owner} takes a stream of 0/1 errors (1 = the model was wrong). Got "
            f"{arr[i]!r} at index {i}; compare predictions with labels first."
        )
    return arr


class StreamingDetector(abc.ABC):
    """Base of every streaming drift detector.

    A subclass declares its stable ``name``, its parameters as :class:`Param`
    attributes with their constraints, calls :meth:`_set_params` from ``__init__``,
    and implements :meth:`update`, :meth:`_clear` (restart the statistics) and
    :meth:`_scan` (the vectorised body of :meth:`update_many`).

    Counting is shared: ``_n`` is the number of values since the statistics last
    restarted (the one counter a subclass's ``update`` bumps), ``_n_before`` the
    number before that. A drift is recorded by :meth:`_restart`.
    """

    __slots__ = ("_drift_at", "_n", "_n_before", "_n_detections", "_params")

    name: ClassVar[str]
    #: Whether the method has a warning zone (then ``warning_detected`` exists).
    has_warning: ClassVar[bool] = False
    #: Whether the detector takes a stream of 0/1 errors rather than real values.
    binary: ClassVar[bool] = False
    _constraints: ClassVar[Mapping[str, Interval | Options]] = {}
    #: The largest chunk :meth:`update_many` hands to :meth:`_scan` (its temporaries
    #: should stay in the CPU cache).
    _max_chunk: ClassVar[int] = _MAX_CHUNK

    _params: dict[str, Any]
    _n: int
    _n_before: int
    _drift_at: int
    _n_detections: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if isinstance(name, str):
            if name in REGISTRY and REGISTRY[name] is not cls:
                raise DriftError(f"A streaming detector named {name!r} is already registered.")
            REGISTRY[name] = cls

    def _set_params(self, **params: Any) -> None:
        validate_params(type(self).__name__, params, self._constraints)
        self._params = dict(params)
        self.reset()

    @property
    def params(self) -> dict[str, Any]:
        """The detector's parameters, for the ledger to store and diff."""
        return dict(self._params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"

    @property
    def drift_detected(self) -> bool:
        """Whether the last value fed completed a drift."""
        return self._drift_at == self._n_before + self._n

    @property
    def n_seen(self) -> int:
        """How many values were fed since the detector was made or :meth:`reset`."""
        return self._n_before + self._n

    @property
    def n_detections(self) -> int:
        """How many drifts were detected since the detector was made or :meth:`reset`."""
        return self._n_detections

    def reset(self) -> None:
        """Forget everything: statistics, counters and detections."""
        self._n = 0
        self._n_before = 0
        self._drift_at = -1
        self._n_detections = 0
        self._clear()

    def _restart(self) -> None:
        """Record a drift at the last value and restart the statistics."""
        self._n_before += self._n
        self._n = 0
        self._drift_at = self._n_before
        self._n_detections += 1
        self._clear()

    @abc.abstractmethod
    def _clear(self) -> None:
        """Restart the statistics (after a drift, and from :meth:`reset`)."""

    @abc.abstractmethod
    def update(self, x: float) -> Self:
        """Feed one value; read :attr:`drift_detected` afterwards."""

    def update_many(self, xs: Any) -> np.ndarray:
        """Feed a 1-D array of values; return the positions in it where drift fired.

        The detections and the final state are those of calling :meth:`update` on
        each value in turn. A bad value anywhere raises :class:`DriftError` before
        any value is fed.
        """
        owner = type(self).__name__
        arr = as_binary_batch(owner, xs) if self.binary else as_float_batch(owner, xs)
        hits: list[int] = []
        pos, n, size = 0, arr.size, min(_FIRST_CHUNK, self._max_chunk)
        while pos < n:
            end = min(n, pos + size)
            i = self._scan(arr[pos:end])
            if i < 0:
                pos = end
                size = min(2 * size, self._max_chunk)
            else:
                hits.append(pos + i)
                pos += i + 1
                size = min(_FIRST_CHUNK, self._max_chunk)
        return np.asarray(hits, dtype=np.intp)

    @abc.abstractmethod
    def _scan(self, chunk: np.ndarray) -> int:
        """Feed a validated chunk until its first drift.

        Return the chunk position of that drift, with the state updated through it
        (and restarted by :meth:`_restart`), or -1 with the whole chunk fed.
        """
