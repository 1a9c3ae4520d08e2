"""G-test of homogeneity: the likelihood-ratio twin of the chi-square test.

On the same 2 x k table of category counts as
:class:`~hindsight.drift.stattests.chisquare.ChiSquare` (categories absent from both
samples dropped), ``G = 2 * sum(observed * ln(observed / expected))`` has the same
chi-square distribution with ``k - 1`` degrees of freedom
(:func:`scipy.stats.chi2_contingency` with ``lambda_="log-likelihood"``). It is the
better-founded statistic when some counts are small relative to others, and empty cells
simply contribute nothing. The effect size is Cramér's V computed from G,
``sqrt(G / N)``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> reference = rng.choice(["a", "b", "c"], size=1000, p=[0.5, 0.3, 0.2])
>>> current = rng.choice(["a", "b", "c"], size=1000, p=[0.4, 0.3, 0.3])
>>> result = GTest()(reference, current)
>>> result.drifted, round(result.effect_size, 3)
(True, 0.085)
"""

from __future__ import annotations

from typing import Any

from hindsight.drift.stattests.base import DriftTest, register
from hindsight.drift.stattests.chisquare import contingency_test

__all__ = ["GTest"]


@register
class GTest(DriftTest):
    """G-test (likelihood ratio) of homogeneity; drift when the p-value is below ``threshold``."""

    name = "g_test"
    kinds = frozenset({"categorical"})
    has_p_value = True
    default_threshold = 0.05
    threshold_on = "p_value"
    effect_name = "cramers_v"

    def _compute(
        self, reference: Any, current: Any
    ) -> tuple[float, float | None, float, dict[str, Any]]:
        return contingency_test(reference, current, "log-likelihood")
