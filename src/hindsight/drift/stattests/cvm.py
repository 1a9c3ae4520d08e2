"""Two-sample Cramér-von Mises test: the mean squared gap between two empirical CDFs.

Where KS looks at the single largest gap, Cramér-von Mises averages the squared gap over
the pooled sample, so it weighs the whole distribution.
:func:`scipy.stats.cramervonmises_2samp` gives the statistic
``T = n * m / (n + m) * mean((F(z) - G(z)) ** 2)`` over the pooled values ``z`` and its
p-value (exact when both samples have at most 20 values, otherwise asymptotic). The
effect size is that mean squared gap itself, ``T * (n + m) / (n * m)``, which does not
grow with the sample size. Both samples need at least two values.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> result = CramerVonMises()(rng.normal(size=500), rng.normal(0.5, size=500))
>>> result.drifted, round(result.statistic, 3)
(True, 5.027)
"""

from __future__ import annotations

from typing import Any

from scipy import stats

from hindsight.drift.stattests.base import DriftTest, as_numeric, register
from hindsight.errors import DriftError

__all__ = ["EXACT_LIMIT", "CramerVonMises", "require_two_each"]

#: SciPy computes the exact p-value when neither sample is larger than this.
EXACT_LIMIT = 20


def require_two_each(ref_size: int, cur_size: int, test: str) -> None:
    """Raise :class:`DriftError` unless both samples have at least two values."""
    if min(ref_size, cur_size) < 2:
        raise DriftError(
            f"The {test} test needs at least two values in each sample; got "
            f"{ref_size} reference and {cur_size} current values. Collect more data or "
            "use 'mann_whitney'."
        )


@register
class CramerVonMises(DriftTest):
    """Two-sample Cramér-von Mises test; drift when the p-value is below ``threshold``."""

    name = "cramer_von_mises"
    kinds = frozenset({"numeric"})
    has_p_value = True
    default_threshold = 0.05
    threshold_on = "p_value"
    effect_name = "cramer_von_mises_distance"

    def _compute(
        self, reference: Any, current: Any
    ) -> tuple[float, float | None, float, dict[str, Any]]:
        ref = as_numeric(reference, "reference")
        cur = as_numeric(current, "current")
        require_two_each(ref.size, cur.size, "Cramér-von Mises")
        res = stats.cramervonmises_2samp(ref, cur)
        t = float(res.statistic)
        n, m = ref.size, cur.size
        return (
            t,
            float(res.pvalue),
            t * (n + m) / (n * m),
            {
                "method": "exact" if max(n, m) <= EXACT_LIMIT else "asymptotic",
                "n_reference": n,
                "n_current": m,
            },
        )
