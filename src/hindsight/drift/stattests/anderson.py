"""Two-sample Anderson-Darling test: a CDF comparison that listens to the tails.

The k-sample Anderson-Darling statistic of Scholz and Stephens (1987), here with two
samples and the midrank form that allows ties, weighs the squared gap between the two
empirical CDFs by ``1 / (H * (1 - H))`` (``H`` the pooled CDF), so differences in the
tails count far more than in KS or Cramér-von Mises. :func:`scipy.stats.anderson_ksamp`
gives the standardised statistic ``(A2 - 1) / sigma`` and a p-value interpolated in
Scholz and Stephens' table, which only spans 0.001 to 0.25: beyond it SciPy reports the
bound itself. That does not change the verdict for any threshold inside that range
(the default 0.05 is), and ``details["p_value_bound"]`` says when it happened
(``"upper"``: the true p-value is larger than 0.25; ``"lower"``: smaller than 0.001). A
permutation p-value would be exact but costs thousands of re-ranks of the pooled sample,
too slow for million-row columns.

The effect size is the unstandardised statistic divided by ``n * m / (n + m)``: the
tail-weighted mean squared CDF gap, which tends to a fixed value as the samples grow.
Both samples need at least two values and the pooled sample two distinct ones; when
every value is the same there is nothing to compare: the test reports p = 1, effect 0
and a NaN statistic.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> result = AndersonDarling()(rng.normal(size=500), rng.normal(0.5, size=500))
>>> result.drifted, result.p_value, result.details["p_value_bound"]
(True, 0.001, 'lower')
"""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any

import numpy as np
from scipy import stats

from hindsight.drift.stattests.base import DriftTest, as_numeric, register
from hindsight.drift.stattests.cvm import require_two_each

__all__ = ["P_VALUE_RANGE", "AndersonDarling", "anderson_variance"]

#: The p-values SciPy's table interpolation can report; outside it reports the bound.
P_VALUE_RANGE = (0.001, 0.25)

# SciPy 1.17 replaced ``midrank=True`` by ``variant="midrank"`` and warns on the old form.
_MIDRANK = (
    {"variant": "midrank"}
    if "variant" in inspect.signature(stats.anderson_ksamp).parameters
    else {"midrank": True}
)


def anderson_variance(n: int, m: int) -> float:
    """Variance of the two-sample A2 statistic under the null (Scholz and Stephens, eq. 4)."""
    total = n + m
    k = 2
    big_h = 1.0 / n + 1.0 / m
    # tails[t] = 1/(N-1) + 1/(N-2) + ... + 1/(N-1-t): harmonic sums taken from the small
    # terms up, so no large partial sums are subtracted; h = 1 + 1/2 + ... + 1/(N-1).
    tails = np.cumsum(1.0 / np.arange(total - 1, 1, -1, dtype=np.float64))
    h = float(tails[-1]) + 1.0 if tails.size else 1.0
    g = float(np.sum(tails / np.arange(2, total, dtype=np.float64)))
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * big_h
    b = (2 * g - 4) * k**2 + 8 * h * k + (2 * g - 14 * h - 4) * big_h - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k**2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * big_h + 4 * h
    d = (2 * h + 6) * k**2 - 4 * h * k
    numerator = a * total**3 + b * total**2 + c * total + d
    return numerator / ((total - 1.0) * (total - 2.0) * (total - 3.0))


@register
class AndersonDarling(DriftTest):
    """Two-sample Anderson-Darling test; drift when the p-value is below ``threshold``."""

    name = "anderson"
    kinds = frozenset({"numeric"})
    has_p_value = True
    default_threshold = 0.05
    threshold_on = "p_value"
    effect_name = "anderson_darling_distance"

    def _compute(
        self, reference: Any, current: Any
    ) -> tuple[float, float | None, float, dict[str, Any]]:
        ref = as_numeric(reference, "reference")
        cur = as_numeric(current, "current")
        n, m = ref.size, cur.size
        require_two_each(n, m, "Anderson-Darling")
        details: dict[str, Any] = {"n_reference": n, "n_current": m}
        if ref.min() == ref.max() == cur.min() == cur.max():
            return math.nan, 1.0, 0.0, {**details, "p_value_bound": None, "constant": True}
        with warnings.catch_warnings():
            # SciPy warns whenever the p-value is one of its table's bounds; that is
            # reported in details instead.
            warnings.filterwarnings(
                "ignore", message=r"p-value (capped|floored)", category=UserWarning
            )
            res = stats.anderson_ksamp([ref, cur], **_MIDRANK)
        statistic = float(res.statistic)
        p_value = float(res.pvalue)
        a2 = statistic * math.sqrt(anderson_variance(n, m)) + 1.0
        bound = (
            "lower"
            if p_value <= P_VALUE_RANGE[0]
            else "upper"
            if p_value >= P_VALUE_RANGE[1]
            else None
        )
        return (
            statistic,
            p_value,
            max(a2, 0.0) * (n + m) / (n * m),
            {
                **details,
                "p_value_bound": bound,
            },
        )
