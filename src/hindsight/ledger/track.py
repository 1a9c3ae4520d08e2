"""``@hindsight.track`` and the seed-style ``run_experiment``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar

from hindsight.errors import LedgerError
from hindsight.ledger.core import Ledger
from hindsight.ledger.experiment import Experiment, experiment
from hindsight.ledger.jsonsafe import jsonable

__all__ = ["run_experiment", "track"]

P = ParamSpec("P")
R = TypeVar("R")


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
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Record every call of a function as an experiment.

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
                name or fn.__qualname__,
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

    return decorate


def _log_result(exp: Experiment, result: Any) -> None:
    if isinstance(result, Mapping):
        numbers = {
            k: v for k, v in result.items()
            if isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        if numbers:
            exp.log_metrics(numbers)


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
    takes_exp = len(inspect.signature(train_func).parameters) >= 2
    exp = experiment(
        name, hypothesis=hypothesis, approach=approach, config=config, criteria=criteria,
        tags=tags, project=project, ledger=ledger, quiet=True,
    )
    try:
        with exp:
            result = train_func(config, exp) if takes_exp else train_func(config)
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
