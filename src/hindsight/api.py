"""Module-level conveniences over the process-wide ledger (``hindsight.learning_metrics()``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hindsight.diagnose import Evidence
from hindsight.ledger import (
    FailureRecord,
    FailureReport,
    LearningMetrics,
    Ledger,
    Lesson,
    PostMortem,
    SimilarFailure,
    get_ledger,
)
from hindsight.ledger import add_lesson as _add_lesson
from hindsight.ledger import draft_postmortem as _draft_postmortem
from hindsight.ledger import learning_metrics as _learning_metrics
from hindsight.ledger import record_failure as _record_failure
from hindsight.ledger import similar_failures as _similar_failures

__all__ = [
    "add_lesson",
    "draft_postmortem",
    "learning_metrics",
    "record_failure",
    "similar_failures",
]


def learning_metrics(
    project: str | None = None,
    since: float | None = None,
    until: float | None = None,
    *,
    ledger: Ledger | None = None,
) -> LearningMetrics:
    """Learning metrics of a project (or all projects) over a window."""
    return _learning_metrics(ledger or get_ledger(), project=project, since=since, until=until)


def record_failure(
    evidence: BaseException | Evidence | str,
    *,
    source: str,
    experiment_id: str | None = None,
    project: str | None = None,
    config: Mapping[str, Any] | None = None,
    exit_code: int | None = None,
    extra: Mapping[str, Any] | None = None,
    ledger: Ledger | None = None,
) -> FailureReport:
    """Record a failure from anywhere (training, data, serving, monitor) and diagnose it."""
    return _record_failure(
        ledger or get_ledger(), evidence, source=source, experiment_id=experiment_id,
        project=project, config=config, exit_code=exit_code, extra=extra,
    )


def similar_failures(record_id: str, k: int = 5, *, ledger: Ledger | None = None) -> list[SimilarFailure]:
    """Past failures most like a failure (or like an experiment's failure)."""
    led = ledger or get_ledger()
    kind, full = led.resolve(record_id)
    if kind == "experiment":
        exp = led.experiment_record(full)
        if exp.failure_id is None:
            return []
        full = exp.failure_id
    failure: FailureRecord = led.failure_record(full)
    return _similar_failures(led, failure, k=k)


def add_lesson(
    text: str, *, tags: Iterable[str] = (), sources: Iterable[str] = (),
    project: str | None = None, ledger: Ledger | None = None,
) -> Lesson:
    """Record a lesson linked to the experiments, failures or post-mortems it came from."""
    return _add_lesson(ledger or get_ledger(), text, tags=tags, sources=sources, project=project)


def draft_postmortem(failure_id: str, *, ledger: Ledger | None = None) -> PostMortem:
    """Draft a blameless post-mortem from a failure."""
    return _draft_postmortem(ledger or get_ledger(), failure_id)
