"""Evaluation that matches reality (issue 7, being built): what a model's mistakes cost.

:mod:`.costs` gives the expected cost per decision of a binary model at every threshold,
with per-row costs (a transaction's amount), and the threshold that costs least with a
bootstrap interval.
"""

from __future__ import annotations

from hindsight.evaluate.costs import CostCurve, ThresholdChoice, best_threshold, cost_curve

__all__ = ["CostCurve", "ThresholdChoice", "best_threshold", "cost_curve"]
