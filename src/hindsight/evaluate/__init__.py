"""Evaluation that matches reality: what a model's mistakes cost, slice by slice.

``hindsight.evaluate(y_true, scores=..., costs={"fp": 5, "fn": "amount"}, segments=...,
data=df)`` returns an :class:`Evaluation` (the module itself is callable, so
``import hindsight; hindsight.evaluate(...)`` works; typed code imports
``from hindsight.evaluate import evaluate``). Around it: cost curves and the cheapest
threshold (:mod:`.costs`), cost matrices and asymmetric regression costs, the usual
metrics (:mod:`.metrics`), predicate and automatically found slices (:mod:`.slices`),
scenario tests as code (:mod:`.scenarios`), the false-positive analysis
(:mod:`.false_positives`) and the report (:mod:`.report`).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from hindsight.evaluate.core import Evaluation, SegmentResult, evaluate
from hindsight.evaluate.costs import (
    CostCurve,
    ThresholdChoice,
    best_threshold,
    cost_curve,
    decision_costs,
)
from hindsight.evaluate.costs_multiclass import CostMatrix, MatrixCosts, matrix_costs
from hindsight.evaluate.costs_regression import RegressionCosts, regression_costs
from hindsight.evaluate.false_positives import (
    FalsePositiveReport,
    analyze_false_positives,
    record_lesson_candidate,
)
from hindsight.evaluate.metrics import (
    binary_metrics,
    multiclass_metrics,
    regression_metrics,
    reliability,
)
from hindsight.evaluate.report import evaluation_report, write_evaluation_html
from hindsight.evaluate.scenarios import ScenarioReport, ScenarioResult, Scenarios
from hindsight.evaluate.slices import (
    FoundSlice,
    Slice,
    SliceReport,
    find_slices,
    parse_slice,
    slice_mask,
)

__all__ = [
    "CostCurve",
    "CostMatrix",
    "Evaluation",
    "FalsePositiveReport",
    "FoundSlice",
    "MatrixCosts",
    "RegressionCosts",
    "ScenarioReport",
    "ScenarioResult",
    "Scenarios",
    "SegmentResult",
    "Slice",
    "SliceReport",
    "ThresholdChoice",
    "analyze_false_positives",
    "best_threshold",
    "binary_metrics",
    "cost_curve",
    "decision_costs",
    "evaluate",
    "evaluation_report",
    "find_slices",
    "matrix_costs",
    "multiclass_metrics",
    "parse_slice",
    "record_lesson_candidate",
    "regression_costs",
    "regression_metrics",
    "reliability",
    "slice_mask",
    "write_evaluation_html",
]


class _CallableModule(types.ModuleType):
    """This package, callable as :func:`evaluate` (``hindsight.evaluate(...)``)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Evaluation:
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
