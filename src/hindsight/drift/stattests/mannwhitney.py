"""Mann-Whitney U test: does one sample tend to take larger values than the other?

``U`` counts the (reference, current) pairs in which the reference value is larger, ties
counting one half; :func:`scipy.stats.mannwhitneyu` gives it with a two-sided p-value
(exact for small tie-free samples, otherwise the normal approximation with tie and
continuity corrections). The test sees shifts in location, not changes in spread alone.

The effect size is the absolute rank-biserial correlation ``|2 * U / (n * m) - 1|``, in
[0, 1]: 0 when a random reference value is as likely to be above as below a random
current value, 1 when every reference value is above (or below) every current value.
``U / (n * m)`` itself, the common-language effect size (the probability that a random
reference value exceeds a random current one), is in ``details``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> result = MannWhitney()(rng.normal(size=500), rng.normal(0.5, size=500))
>>> result.drifted, round(result.effect_size, 3)
(True, 0.259)
"""

from __future__ import annotations

from typing import Any

from scipy import stats

from hindsight.drift.stattests.base import DriftTest, as_numeric, register

__all__ = ["MannWhitney"]


@register
class MannWhitney(DriftTest):
    """Two-sided Mann-Whitney U test; drift when the p-value is below ``threshold``."""

    name = "mann_whitney"
    kinds = frozenset({"numeric"})
    has_p_value = True
    default_threshold = 0.05
    threshold_on = "p_value"
    effect_name = "rank_biserial"

    def _compute(
        self, reference: Any, current: Any
    ) -> tuple[float, float | None, float, dict[str, Any]]:
        ref = as_numeric(reference, "reference")
        cur = as_numeric(current, "current")
        res = stats.mannwhitneyu(ref, cur, alternative="two-sided")
        u = float(res.statistic)
        cles = u / (ref.size * cur.size)
        return (
            u,
            float(res.pvalue),
            abs(2.0 * cles - 1.0),
            {"common_language": cles, "n_reference": ref.size, "n_current": cur.size},
        )
