"""Scenario tests written as code: behavioural checks of a model, in the spirit of CheckList.

A :class:`Scenarios` suite holds named expectations about a model and checks them all in
one :meth:`~Scenarios.run`:

* ``slice``: a metric on the rows a predicate selects (``"user_age_days < 7"``) must
  be at least (or at most) a bound;
* ``invariance``: changing some columns (a new value, a function of the column, or
  ``"shuffle"``) must not change the model's decisions (or scores) on more than a share
  of the rows;
* ``directional``: such a change must move the scores one way (``not_decrease``, ...);
* ``replay``: a recorded sequence of requests, sent in order to a guarded
  :class:`~hindsight.serving.Service`, its HTTP API or any callable, must get the
  expected answers (order matters: sticky A/B arms, breakers, rate state); the
  sending and step checking live in :mod:`hindsight.evaluate.replay`.

The model is called on whole frames, in the type the data came in (pandas in, pandas
to the model), and returns one score or decision per row. The unchanged data is scored
once per run and shared by every check; each perturbation costs one more call.

>>> import numpy as np
>>> data = {"amount": np.array([10.0, 500.0, 2000.0, 50.0]), "name": np.array(list("abcd"))}
>>> risk = lambda frame: frame["amount"] / 2000.0
>>> suite = Scenarios("fraud", model=risk)
>>> suite = suite.invariance("the name does not matter", change={"name": "zed"})
>>> suite = suite.directional("more money, more risk", {"amount": lambda a: a * 2},
...                           expect="not_decrease")
>>> report = suite.run(data)
>>> report.passed, report.summary()
(True, '2 of 2 scenarios passed')
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from hindsight._plain import plain, plain_fields
from hindsight.data.frames import to_arrow
from hindsight.errors import ConfigError, DataError
from hindsight.evaluate.metrics import binary_metrics, multiclass_metrics, regression_metrics
from hindsight.evaluate.replay import (
    ReplayStep,
    _load_requests,
    _Replay,
    _replay_steps,
    _target_kind,
)
from hindsight.evaluate.slices import parse_slice, slice_mask

__all__ = ["Example", "ScenarioReport", "ScenarioResult", "Scenarios"]

Model = Callable[[Any], Any]
_Bool = NDArray[np.bool_]

# The metric names each task reports (metrics.py); checked when a slice is defined.
_BINARY = frozenset((
    "n", "prevalence", "positive_rate", "accuracy", "precision", "recall", "specificity", "f1",
    "fpr", "fnr", "balanced_accuracy", "mcc", "tp", "fp", "fn", "tn",
    "auc", "average_precision", "brier", "log_loss", "ece",
))  # fmt: skip
_MULTICLASS = frozenset((
    "n", "accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_f1",
    "balanced_accuracy", "log_loss", "brier", "top_label_ece",
))  # fmt: skip
_REGRESSION = frozenset((
    "n", "mae", "mse", "rmse", "median_ae", "r2", "explained_variance", "mape", "bias",
    "max_error",
))  # fmt: skip
_EXPECT = ("increase", "decrease", "not_increase", "not_decrease")
_ON = ("decision", "score")
_TASKS = ("binary", "multiclass", "regression")
_MAX_EXAMPLES = 5


def _fmt(x: float) -> str:
    return f"{x:.3g}"


# -- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One row a perturbation moved the wrong way: the model's output before and after,
    and the values of the changed columns before and after."""

    row: int
    before: Any
    after: Any
    changes: dict[str, tuple[Any, Any]]

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class ScenarioResult:
    """One scenario's verdict: ``passed`` when ``value`` ``op`` ``limit`` holds.

    ``value`` is the slice's metric, the share of rows an invariance changed, the
    directional violations (a count, or a share when the limit was a share) or the
    failed replay steps; ``n`` counts the rows (in the slice) or the steps; ``count``
    the rows changed, the violations or the failed steps. ``reason`` says it in words.
    """

    name: str
    kind: str
    passed: bool
    reason: str
    value: float | None
    limit: float | None
    op: str
    n: int
    count: int | None = None
    metric: str | None = None
    where: str | None = None
    examples: tuple[Example, ...] = ()
    steps: tuple[ReplayStep, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class ScenarioReport:
    """Every scenario of one run, in the order they were defined."""

    name: str
    results: list[ScenarioResult]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[ScenarioResult]:
        return [r for r in self.results if not r.passed]

    def summary(self) -> str:
        """One line: how many passed, and why each failure failed."""
        head = f"{len(self.results) - len(self.failed)} of {len(self.results)} scenarios passed"
        if not self.failed:
            return head
        return head + "; failed: " + "; ".join(f"{r.name} ({r.reason})" for r in self.failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "summary": self.summary(),
            "results": [r.to_dict() for r in self.results],
        }


# -- definitions --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slice:
    name: str
    where: str
    metric: str
    limit: float
    op: str
    task: str | None


@dataclass(frozen=True)
class _Perturb:
    name: str
    kind: str
    change: Mapping[str, Any]
    on: str
    tolerance: float
    limit: float
    expect: str | None


_Check = _Slice | _Perturb | _Replay


def _real(owner: str, param: str, value: Any, low: float = -math.inf) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or float(value) < low:
        bound = "a finite number" if low == -math.inf else f"a finite number >= {low:g}"
        raise ConfigError(f"The {param!r} parameter of {owner} must be {bound}. Got {value!r}.")
    return float(value)


def _option(owner: str, param: str, value: Any, options: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in options:
        allowed = ", ".join(repr(o) for o in options)
        raise ConfigError(
            f"The {param!r} parameter of {owner} must be one of {allowed}. Got {value!r}."
        )
    return value


def _check_change(owner: str, change: Any) -> dict[str, Any]:
    if not isinstance(change, Mapping) or not change or not all(isinstance(k, str) for k in change):
        raise ConfigError(
            f"The 'change' parameter of {owner} must map column names to a new value, a "
            "callable(column array) -> new column, or 'shuffle', e.g. {'name': 'Alex'}. "
            f"Got {change!r}."
        )
    return dict(change)


class Scenarios:
    """A named suite of behavioural checks of one model (see the module docstring).

    ``model`` is a batched callable: it takes the whole frame, in the type passed to
    :meth:`run`, and returns one score or decision per row. It may be left out for a
    suite of replays only. Every definition is validated when it is added; each method
    returns the suite, so definitions chain.
    """

    def __init__(self, name: str, model: Model | None = None) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"A scenario suite needs a non-empty name. Got {name!r}.")
        if model is not None and not callable(model):
            raise ConfigError(
                f"The 'model' parameter of Scenarios must be a callable(frame) -> one score or "
                f"decision per row. Got {type(model).__name__}."
            )
        self.name = name
        self.model = model
        self._checks: list[_Check] = []

    def __len__(self) -> int:
        return len(self._checks)

    def __repr__(self) -> str:
        return f"Scenarios({self.name!r}, {len(self._checks)} scenarios)"

    @property
    def names(self) -> list[str]:
        return [c.name for c in self._checks]

    def _add(self, check: _Check) -> Scenarios:
        if check.name in self.names:
            raise ConfigError(f"Suite {self.name!r} already has a scenario named {check.name!r}.")
        self._checks.append(check)
        return self

    def _owner(self, kind: str, name: Any, needs_model: bool = True) -> str:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"A {kind} scenario needs a non-empty name. Got {name!r}.")
        if needs_model and self.model is None:
            raise ConfigError(
                f"The {kind} scenario {name!r} needs a model: pass model=... to Scenarios()."
            )
        return f"{kind} {name!r}"

    def slice(
        self,
        name: str,
        where: str,
        *,
        metric: str,
        at_least: float | None = None,
        at_most: float | None = None,
        task: str | None = None,
    ) -> Scenarios:
        """``metric`` on the rows matching ``where`` must be ``>= at_least`` (or ``<= at_most``).

        ``task`` (binary, multiclass, regression) picks the metrics; by default it is
        binary when the labels are 0/1 and the metric is a binary one, else the task the
        metric belongs to. Binary decisions are ``score >= threshold`` (of :meth:`run`).
        """
        owner = self._owner("slice", name)
        if task is not None:
            _option(owner, "task", task, _TASKS)
        valid = {"binary": _BINARY, "multiclass": _MULTICLASS, "regression": _REGRESSION}
        names = valid[task] if task is not None else _BINARY | _MULTICLASS | _REGRESSION
        if not isinstance(metric, str) or metric not in names:
            raise ConfigError(
                f"The 'metric' parameter of {owner} must be one of {', '.join(sorted(names))}. "
                f"Got {metric!r}."
            )
        if (at_least is None) == (at_most is None):
            raise ConfigError(f"Give {owner} exactly one of at_least= and at_most=.")
        op, bound = (">=", at_least) if at_least is not None else ("<=", at_most)
        limit = _real(owner, "at_least" if op == ">=" else "at_most", bound)
        if not isinstance(where, str):
            raise ConfigError(f"The 'where' parameter of {owner} must be a string. Got {where!r}.")
        parse_slice(where)  # a typo in the predicate fails now, not at run time
        return self._add(_Slice(name, where, metric, limit, op, task))

    def invariance(
        self,
        name: str,
        change: Mapping[str, Any],
        *,
        max_changed: float = 0.0,
        tolerance: float = 1e-9,
        on: str = "decision",
    ) -> Scenarios:
        """Applying ``change`` changes the output of at most ``max_changed`` of the rows.

        ``on="decision"`` compares ``score >= threshold`` (labels as they are);
        ``on="score"`` the raw outputs, a change being more than ``tolerance``.
        """
        owner = self._owner("invariance", name)
        change = _check_change(owner, change)
        limit = _real(owner, "max_changed", max_changed, 0.0)
        if limit > 1.0:
            raise ConfigError(f"'max_changed' of {owner} is a share in [0, 1]. Got {limit!r}.")
        tol = _real(owner, "tolerance", tolerance, 0.0)
        return self._add(_Perturb(name, "invariance", change, _option(owner, "on", on, _ON),
                                  tol, limit, None))  # fmt: skip

    def directional(
        self,
        name: str,
        change: Mapping[str, Any],
        *,
        expect: str,
        tolerance: float = 1e-9,
        max_violations: float = 0,
        on: str = "score",
    ) -> Scenarios:
        """Applying ``change`` moves every row's score the ``expect`` way.

        A violation is a row that moves the wrong way by more than ``tolerance``; for
        ``increase`` and ``decrease`` also one that does not move by more than it.
        ``max_violations`` is a count (an int) or a share of the rows (a float).
        """
        owner = self._owner("directional", name)
        change = _check_change(owner, change)
        _option(owner, "expect", expect, _EXPECT)
        limit = _real(owner, "max_violations", max_violations, 0.0)
        if isinstance(max_violations, float) and limit > 1.0:
            raise ConfigError(
                f"'max_violations' of {owner} as a float is a share in [0, 1]; pass an int "
                f"for a count. Got {max_violations!r}."
            )
        tol = _real(owner, "tolerance", tolerance, 0.0)
        # An int limit is a count, a float one a share: keep the type as the marker.
        stored = float(limit) if isinstance(max_violations, float) else int(limit)
        return self._add(_Perturb(name, "directional", change, _option(owner, "on", on, _ON),
                                  tol, stored, expect))  # fmt: skip

    def replay(
        self,
        name: str,
        requests: Sequence[Mapping[str, Any]] | str | os.PathLike[str],
        *,
        target: Any,
        token: str | None = None,
        tolerance: float = 1e-9,
        timeout: float = 10.0,
    ) -> Scenarios:
        """Send ``requests`` in order to ``target``; every step must get what it expects.

        ``requests`` is a list of ``{"inputs": {...}, "key": ..., "request_id": ...,
        "expect": ..., "name": ...}`` or a ``.jsonl`` file of them. ``target`` is a
        :class:`~hindsight.serving.Service` (anything with an async
        ``predict(inputs, *, request_id, key)``), the base URL of its HTTP API (``token``
        goes as a bearer token) or a ``callable(inputs) -> output``. ``expect`` is a value
        (the output, numbers within ``tolerance``), a dict of response field to value
        (``{"tier": "primary", "abstained": False}``) or a ``callable(Reply) -> bool``.
        """
        owner = self._owner("replay", name, needs_model=False)
        kind = _target_kind(owner, target)
        if token is not None and (not isinstance(token, str) or not token):
            raise ConfigError(f"The 'token' parameter of {owner} must be a non-empty string.")
        steps = _load_requests(owner, requests)
        tol = _real(owner, "tolerance", tolerance, 0.0)
        wait = _real(owner, "timeout", timeout, 0.0)
        return self._add(_Replay(name, steps, target, kind, token, tol, wait))

    # -- running --------------------------------------------------------------------
    def run(
        self, data: Any = None, y_true: Any = None, *, threshold: float = 0.5, seed: int = 0
    ) -> ScenarioReport:
        """Check every scenario on ``data`` (pandas, polars, pyarrow, a dict of columns or
        a path) and return the report. ``y_true`` (an array or a column name) is needed
        by slice checks; ``seed`` drives ``"shuffle"`` changes."""
        _real("Scenarios.run", "threshold", threshold)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ConfigError(
                f"The 'seed' parameter of Scenarios.run must be an int >= 0. Got {seed!r}."
            )
        needs_data = [c.name for c in self._checks if not isinstance(c, _Replay)]
        ctx: _Run | None = None
        if needs_data:
            if data is None:
                raise ConfigError(
                    f"Scenarios {', '.join(map(repr, needs_data))} score the model: pass data "
                    "to run()."
                )
            assert self.model is not None  # guaranteed when those scenarios were defined
            ctx = _Run(self.model, _Frame(data), float(threshold))
            if any(isinstance(c, _Slice) for c in self._checks):
                if y_true is None:
                    raise ConfigError(
                        "Slice scenarios need labels: pass y_true= (an array or a column name)."
                    )
                ctx.set_labels(y_true)
        results = []
        for i, check in enumerate(self._checks):
            if isinstance(check, _Replay):
                results.append(_run_replay(check))
            elif ctx is not None and isinstance(check, _Slice):
                results.append(ctx.slice(check))
            elif ctx is not None and isinstance(check, _Perturb):
                # A stream per scenario: adding one leaves the others' shuffles as they were.
                results.append(ctx.perturb(check, np.random.default_rng([int(seed), i])))
        return ScenarioReport(self.name, results)


# -- model scenarios ----------------------------------------------------------------------


class _Frame:
    """The user's data in its own type, with what reading and perturbing columns needs."""

    def __init__(self, data: Any) -> None:
        module = type(data).__module__.split(".", 1)[0]
        if module == "pandas" and hasattr(data, "columns"):
            self.kind = "pandas"
        elif module == "polars" and hasattr(data, "with_columns"):
            self.kind = "polars"
            if hasattr(data, "collect"):  # a LazyFrame: the model gets the collected frame
                data = data.collect()
        elif isinstance(data, dict):
            self.kind = "dict"
        else:  # Arrow, record batches, paths: the model gets a pyarrow Table
            self.kind = "arrow"
            data = to_arrow(data, what="scenario data")
        self.data = data
        self.table = to_arrow(data, what="scenario data")
        self.n = self.table.num_rows

    def column(self, name: str, why: str) -> NDArray[Any]:
        if name not in self.table.column_names:
            raise DataError(
                f"{why} names column {name!r}, which the data does not have (it has "
                f"{', '.join(self.table.column_names)}). Fix the name or add the column."
            )
        if self.kind in ("pandas", "polars"):
            return np.asarray(self.data[name].to_numpy())
        if self.kind == "dict":
            return np.asarray(self.data[name])
        return np.asarray(self.table.column(name).to_numpy())

    def with_columns(self, new: Mapping[str, NDArray[Any]]) -> Any:
        """A copy of the data with ``new`` columns in place of the old ones."""
        if self.kind == "pandas":
            out = self.data.copy()
            for name, values in new.items():
                out[name] = values
            return out
        if self.kind == "polars":
            import polars as pl  # only ever reached with polars data, so polars is there

            return self.data.with_columns([pl.Series(k, v) for k, v in new.items()])
        if self.kind == "dict":
            return {**self.data, **new}
        table = self.data
        for name, values in new.items():
            try:
                column = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise DataError(
                    f"The new column {name!r} cannot be an Arrow column: {exc}"
                ) from exc
            table = table.set_column(table.column_names.index(name), name, column)
        return table


def _task(metric: str, y: NDArray[Any]) -> str:
    """The task a metric is read from: binary for 0/1 labels, else the metric's own task."""
    if metric in _BINARY and y.dtype.kind in "biuf" and set(np.unique(y).tolist()) <= {0, 1}:
        return "binary"
    if metric in _MULTICLASS and (metric not in _REGRESSION or y.dtype.kind != "f"):
        return "multiclass"
    return "regression" if metric in _REGRESSION else "multiclass"


def _outputs(out: Any, n: int, what: str) -> NDArray[Any]:
    if isinstance(out, pa.Array | pa.ChunkedArray):
        arr = np.asarray(out.to_numpy(zero_copy_only=False))
    else:
        to_numpy = getattr(out, "to_numpy", None)  # pandas and polars Series
        arr = np.asarray(to_numpy() if callable(to_numpy) else out)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.shape != (n,):
        raise DataError(
            f"The model returned shape {arr.shape} for {what} of {n} rows; it must return one "
            "score or decision per row (for predict_proba take the positive column, [:, 1])."
        )
    return arr


def _numeric(a: NDArray[Any]) -> bool:
    return a.dtype.kind in "biuf"


def _view(out: NDArray[Any], on: str, threshold: float) -> NDArray[Any]:
    """Decisions are thresholded scores; integer, boolean and string outputs already are."""
    if on == "decision" and out.dtype.kind == "f":
        return (out >= threshold).astype(np.int64)
    return out


def _changed(before: NDArray[Any], after: NDArray[Any], tol: float) -> _Bool:
    if _numeric(before) and _numeric(after):
        b, a = before.astype(np.float64), after.astype(np.float64)
        with np.errstate(invalid="ignore"):  # inf - inf: equal infinities did not move
            moved = np.abs(a - b) > tol
        return np.asarray(moved | (np.isnan(a) != np.isnan(b)))
    return np.asarray(before.astype(object) != after.astype(object), dtype=bool)


class _Run:
    """One run's shared state: the data, the labels, the model's output on the data."""

    def __init__(self, model: Model, frame: _Frame, threshold: float) -> None:
        self.model, self.frame, self.threshold = model, frame, threshold
        self.y: NDArray[Any] | None = None
        self._original: NDArray[Any] | None = None

    @property
    def original(self) -> NDArray[Any]:
        if self._original is None:  # scored once, shared by every scenario
            self._original = _outputs(self.model(self.frame.data), self.frame.n, "the data")
        return self._original

    def set_labels(self, y_true: Any) -> None:
        if isinstance(y_true, str):
            y = self.frame.column(y_true, "y_true")
        else:
            y = np.asarray(y_true.to_numpy() if hasattr(y_true, "to_numpy") else y_true)
        if y.shape != (self.frame.n,):
            raise DataError(
                f"y_true has shape {y.shape}; the data has {self.frame.n} rows. Pass one "
                "label per row."
            )
        self.y = y

    def slice(self, check: _Slice) -> ScenarioResult:
        mask = np.asarray(slice_mask(self.frame.table, check.where), dtype=bool)
        n = int(mask.sum())

        def result(passed: bool, reason: str, value: float | None = None) -> ScenarioResult:
            return ScenarioResult(check.name, "slice", passed, reason, value, check.limit,
                                  check.op, n, metric=check.metric, where=check.where)  # fmt: skip

        if n == 0:
            return result(False, f"no rows match {check.where!r}")
        assert self.y is not None  # run() sets labels whenever a slice is defined
        values = self._metrics(check, self.y, self.original, mask)
        value = float(values[check.metric])
        text = f"{check.metric} {{}} on {n} rows"
        if math.isnan(value):
            return result(False, text.format("undefined"), value)
        passed = value >= check.limit if check.op == ">=" else value <= check.limit
        sign = check.op if passed else ("<" if check.op == ">=" else ">")
        return result(passed, text.format(f"{_fmt(value)} {sign} {_fmt(check.limit)}"), value)

    def _metrics(
        self, check: _Slice, y: NDArray[Any], out: NDArray[Any], mask: _Bool
    ) -> Mapping[str, Any]:
        task = check.task or _task(check.metric, y)
        if task == "multiclass" and check.metric not in _MULTICLASS:
            raise ConfigError(
                f"Slice {check.name!r}: {check.metric!r} is a binary metric but y_true is not "
                "0/1. Map the positive class to 1, or use a multiclass metric (macro_f1, ...)."
            )
        if task == "regression":
            values: Mapping[str, Any] = regression_metrics(y[mask], out[mask])
        elif task == "multiclass":
            values = multiclass_metrics(y[mask], out[mask])
        else:
            if not _numeric(out):
                raise DataError(
                    f"Slice {check.name!r}: a binary metric needs 0/1 decisions or scores from "
                    f"the model; it returned {out.dtype} values such as {out[:3].tolist()}."
                )
            pred, scores = out[mask], None
            if out.dtype.kind == "f":
                # Scores outside [0, 1] (margins) still give decisions, not probability metrics.
                if np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0:
                    scores = pred
                pred = pred >= self.threshold
            values = binary_metrics(y[mask], pred, scores)
        if check.metric not in values:
            raise ConfigError(
                f"Slice {check.name!r}: {check.metric!r} needs probabilities, but the model "
                "returned decisions (or scores outside [0, 1]). Make it return probabilities."
            )
        return values

    def perturb(self, check: _Perturb, rng: np.random.Generator) -> ScenarioResult:
        n = self.frame.n
        old: dict[str, NDArray[Any]] = {}
        new: dict[str, NDArray[Any]] = {}
        for name, how in check.change.items():
            column = self.frame.column(name, f"The change of scenario {check.name!r}")
            old[name] = column
            if isinstance(how, str) and how == "shuffle":
                new[name] = rng.permutation(column)
            elif callable(how):
                new[name] = np.asarray(how(column.copy()))
                if new[name].shape != (n,):
                    raise DataError(
                        f"The change of {name!r} in scenario {check.name!r} returned shape "
                        f"{new[name].shape}; it must return one value per row ({n})."
                    )
            else:
                new[name] = np.repeat(np.asarray([how]), n)
        if n == 0:
            return ScenarioResult(check.name, check.kind, False, "the data has no rows", None,
                                  float(check.limit), "<=", 0)  # fmt: skip
        before = self.original
        try:
            after = _outputs(self.model(self.frame.with_columns(new)), n, "the changed data")
        except DataError:
            raise
        except Exception as exc:  # the change broke the model: that is this scenario's finding
            why = f"the model raised {type(exc).__name__} on the changed data: {exc}"
            return ScenarioResult(check.name, check.kind, False, why, None, float(check.limit),
                                  "<=", n)  # fmt: skip
        b, a = _view(before, check.on, self.threshold), _view(after, check.on, self.threshold)
        if check.kind == "invariance":
            bad = _changed(b, a, check.tolerance)
        else:
            if not (_numeric(b) and _numeric(a)):
                raise DataError(f"Directional scenario {check.name!r} needs numeric model outputs.")
            with np.errstate(invalid="ignore"):
                delta = a.astype(np.float64) - b.astype(np.float64)
            tol = check.tolerance
            wrong = {
                "increase": ~(delta > tol),
                "decrease": ~(delta < -tol),
                "not_increase": delta > tol,
                "not_decrease": delta < -tol,
            }[check.expect or "not_decrease"]
            bad = np.asarray(wrong | np.isnan(delta))  # a score that went missing moved wrongly
        count = int(bad.sum())
        rows = np.flatnonzero(bad)[:_MAX_EXAMPLES].tolist()
        examples = tuple(
            Example(int(i), plain(before[i]), plain(after[i]),
                    {k: (plain(old[k][i]), plain(new[k][i])) for k in new})
            for i in rows
        )  # fmt: skip
        if check.kind == "invariance" or isinstance(check.limit, float):
            value = count / n
            what = "changed" if check.kind == "invariance" else "moved the wrong way"
            passed = value <= check.limit
            reason = (f"{count} of {n} rows {what} ({value:.2%} {'<=' if passed else '>'} "
                      f"{check.limit:.2%})")  # fmt: skip
        else:
            value = float(count)
            passed = count <= check.limit
            reason = (
                f"{count} of {n} rows moved the wrong way ({'<=' if passed else '>'} {check.limit})"
            )
        return ScenarioResult(check.name, check.kind, passed, reason, value, float(check.limit),
                              "<=", n, count=count, examples=examples)  # fmt: skip


# -- replay -------------------------------------------------------------------------------


def _run_replay(check: _Replay) -> ScenarioResult:
    """Replay ``check``'s requests (see :mod:`.replay`) and give the scenario's verdict."""
    steps = _replay_steps(check)
    failed = [s for s in steps if not s.passed]
    n = len(steps)
    if failed:
        first = failed[0]
        label = f"step {first.index}" + (f" ({first.name})" if first.name else "")
        reason = f"{len(failed)} of {n} steps failed; first: {label}: {first.reason}"
    else:
        reason = f"all {n} steps passed"
    ordered = tuple(sorted(steps, key=lambda s: (s.passed, s.index)))  # failures first
    return ScenarioResult(check.name, "replay", not failed, reason, float(len(failed)), 0.0,
                          "<=", n, count=len(failed), steps=ordered)  # fmt: skip
