"""The experiment ledger: experiments, failures, lessons, post-mortems, learning metrics."""

from __future__ import annotations

from hindsight.ledger.core import Ledger, get_ledger, set_ledger
from hindsight.ledger.criteria import Criterion, Verdict, parse_criteria
from hindsight.ledger.experiment import (
    Experiment,
    HindsightWarning,
    Terminated,
    current_experiment,
    experiment,
)
from hindsight.ledger.explain import failure_text
from hindsight.ledger.failures import config_diff, record_failure, similar_failures
from hindsight.ledger.learning import LearningMetrics, learning_metrics
from hindsight.ledger.lessons import add_lesson, apply_lesson, list_lessons
from hindsight.ledger.markdown import experiment_markdown, export_markdown
from hindsight.ledger.postmortem import (
    draft_postmortem,
    parse_markdown,
    postmortem_markdown,
    update_postmortem,
)
from hindsight.ledger.records import (
    ExperimentRecord,
    FailureRecord,
    FailureReport,
    Lesson,
    PostMortem,
    SimilarFailure,
)
from hindsight.ledger.runner import RunResult, run_command
from hindsight.ledger.track import run_experiment, track

__all__ = [
    "Criterion",
    "Experiment",
    "ExperimentRecord",
    "FailureRecord",
    "FailureReport",
    "HindsightWarning",
    "LearningMetrics",
    "Ledger",
    "Lesson",
    "PostMortem",
    "RunResult",
    "SimilarFailure",
    "Terminated",
    "Verdict",
    "add_lesson",
    "apply_lesson",
    "config_diff",
    "current_experiment",
    "draft_postmortem",
    "experiment",
    "experiment_markdown",
    "export_markdown",
    "failure_text",
    "get_ledger",
    "learning_metrics",
    "list_lessons",
    "parse_criteria",
    "parse_markdown",
    "postmortem_markdown",
    "record_failure",
    "run_command",
    "run_experiment",
    "set_ledger",
    "similar_failures",
    "track",
    "update_postmortem",
]
