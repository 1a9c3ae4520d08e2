"""``@hindsight.track`` and the seed-style ``run_experiment``."""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar, overload

from hindsight.errors import LedgerError
from hindsight.ledger.core import Ledger
from hindsight.ledger.experiment import Experiment, experiment
from hindsight.ledger.jsonsafe import jsonable

__all__ = ["run_experiment", "track"]

P = ParamSpec("P")
R = TypeVar("R")


@overload
def track(name: Callable[P, R]) -> Callable[P, R]: ...


@overload
def track(
    name: str | None = None,
    *,
    hypothesis: str = "",
    approach: str = "",
    config: Mapping[str, Any] | None = None,
    criteria: Mapping[str, Any] | None = None,
    tags: Iterable[str] = (),
    project: str | None = None,
    ledger: Ledger | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def track(
    name: str | Callable[..., Any] | None = None,
    *,
    hypothesis: str = "",
    approach: str = "",
    config: Mapping[str, Any] | None = None,
    criteria: Mapping[str, Any] | None = None,
    tags: Iterable[str] = (),
    project: str | None = None,
    ledger: Ledger | None = None,
) -> Any:
    """Record every call of a function as an experiment (``@track`` or ``@track(...)``).

    The call's arguments that can be stored as JSON become the config (merged
    over ``config``); a returned dict of numbers is logged as final metrics; a
    parameter named ``exp`` receives the running :class:`Experiment`.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        sig = inspect.signature(fn)
        wants_exp = "exp" in sig.parameters

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            bound = sig.bind_partial(*args, **kwargs)
            bound.apply_defaults()
            call_config = dict(config or {})
            for key, value in bound.arguments.items():
                if key == "exp":
                    continue
                try:
                    call_config[key] = jsonable(value, key)
                except LedgerError:
                    call_config[key] = f"<{type(value).__name__}>"
            with experiment(
                label or fn.__qualname__,
                hypothesis=hypothesis,
                approach=approach,
                config=call_config,
                criteria=criteria,
                tags=tags,
                project=project,
                ledger=ledger,
            ) as exp:
                if wants_exp:
                    kwargs["exp"] = exp
                result = fn(*args, **kwargs)
                _log_result(exp, result)
                return result

        return wrapper

    if callable(name):
        fn, label = name, None
        return decorate(fn)
    label = name
    return decorate


def _log_result(exp: Experiment, result: Any) -> None:
    if isinstance(result, Mapping):
        values = {
            k: float(v) for k, v in result.items()
            # numbers.Real takes numpy scalars too (a float32 mean, an int64 count).
            if isinstance(k, str) and isinstance(v, numbers.Real) and not isinstance(v, bool)
        }
        if values:
            exp.log_metrics(values)


def _call(fn: Callable[..., Any], config: Mapping[str, Any], exp: Experiment) -> Any:
    """Call ``fn(config)``, handing it the experiment as ``exp=`` or as a second
    required positional parameter when it asks for one."""
    params = list(inspect.signature(fn).parameters.values())
    if any(p.name == "exp" for p in params):
        return fn(config, exp=exp)
    positional = [
        p for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return fn(config, exp) if len(positional) >= 2 else fn(config)


def run_experiment(
    name: str,
    hypothesis: str,
    config: Mapping[str, Any],
    train_func: Callable[..., Any],
    *,
    criteria: Mapping[str, Any] | None = None,
    approach: str = "",
    tags: Iterable[str] = (),
    project: str | None = None,
    ledger: Ledger | None = None,
) -> dict[str, Any]:
    """Run ``train_func(config)`` as a recorded experiment and never raise for its failure.

    Returns ``{"status": "success", "metrics": …}`` or ``{"status": "failed",
    "error": …, "learnings": …}``; ``learnings`` gathers the diagnosis'
    recommendations and the lessons of similar past failures. ``train_func`` may
    take a second parameter, the running :class:`Experiment`, to log step series.
    """
    if not callable(train_func):
        raise LedgerError(f"train_func must be callable. Got {type(train_func).__name__}.")
    exp = experiment(
        name, hypothesis=hypothesis, approach=approach, config=config, criteria=criteria,
        tags=tags, project=project, ledger=ledger, quiet=True,
    )
    try:
        with exp:
            result = _call(train_func, config, exp)
            _log_result(exp, result)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        report = exp.failure
        if report is None:  # the ledger itself failed: that must not pass as a result
            raise
        learnings: list[str] = []
        similar: list[dict[str, Any]] = []
        diagnosis = report.diagnosis
        learnings.extend(diagnosis.get("recommendations") or [])
        for s in report.similar:
            learnings.extend(les.text for les in s.lessons)
            similar.append(s.to_dict())
        return {
            "status": "failed",
            "experiment_id": exp.id,
            "error": f"{type(exc).__name__}: {exc}",
            "error_type": type(exc).__name__,
            "failure_id": report.failure.id,
            "diagnosis": diagnosis,
            "learnings": list(dict.fromkeys(learnings)),
            "similar": similar,
        }
    record = exp.record
    return {
        "status": "success",
        "experiment_id": exp.id,
        "metrics": record.summary,
        "outcome": record.outcome,
        "verdicts": record.verdicts,
    }
