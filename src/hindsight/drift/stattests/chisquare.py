"""Chi-square test of homogeneity: do two samples share one categorical distribution?

The reference's and the current sample's category counts form a 2 x k table; Pearson's
statistic ``sum((observed - expected) ** 2 / expected)`` compares it with the counts
expected if both samples came from one distribution, and has ``k - 1`` degrees of
freedom (:func:`scipy.stats.chi2_contingency` without Yates' correction). Categories
absent from both samples carry no information and are dropped first; when fewer than
two categories remain, the samples cannot differ and the test reports p = 1.

The effect size is Cramér's V, ``sqrt(chi2 / N)`` for a table with two rows (``N`` the
total count), in [0, 1]: 0 for identical shares, 1 when no category occurs in both.
The approximation behind the p-value wants an expected count of at least about 5 per
cell; ``details["min_expected"]`` shows the smallest one.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> reference = rng.choice(["a", "b", "c"], size=1000, p=[0.5, 0.3, 0.2])
>>> current = rng.choice(["a", "b", "c"], size=1000, p=[0.4, 0.3, 0.3])
>>> result = ChiSquare()(reference, current)
>>> result.drifted, round(result.effect_size, 3)
(True, 0.085)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from hindsight.drift.stattests.base import Counts, DriftTest, as_counts, register

__all__ = ["ChiSquare", "contingency_test", "two_by_k"]


def two_by_k(counts: Counts) -> np.ndarray:
    """The 2 x k table of ``counts`` without the categories that neither sample has."""
    table = np.vstack([counts.reference, counts.current])
    return table[:, table.sum(axis=0) > 0]


def contingency_test(
    reference: Any, current: Any, lambda_: str | None
) -> tuple[float, float | None, float, dict[str, Any]]:
    """Power-divergence test of homogeneity on the 2 x k table, with Cramér's V."""
    table = two_by_k(as_counts(reference, current))
    total = float(table.sum())
    details: dict[str, Any] = {"n_categories": int(table.shape[1])}
    if table.shape[1] < 2:
        return 0.0, 1.0, 0.0, {**details, "dof": 0, "min_expected": None}
    res = stats.chi2_contingency(table, correction=False, lambda_=lambda_)
    statistic = float(res.statistic)
    return (
        statistic,
        float(res.pvalue),
        math.sqrt(max(statistic, 0.0) / total),
        {**details, "dof": int(res.dof), "min_expected": float(res.expected_freq.min())},
    )


@register
class ChiSquare(DriftTest):
    """Pearson chi-square test of homogeneity; drift when the p-value is below ``threshold``."""

    name = "chi_square"
    kinds = frozenset({"categorical"})
    has_p_value = True
    default_threshold = 0.05
    threshold_on = "p_value"
    effect_name = "cramers_v"

    def _compute(
        self, reference: Any, current: Any
    ) -> tuple[float, float | None, float, dict[str, Any]]:
        return contingency_test(reference, current, None)
