"""Two-sample Kolmogorov-Smirnov test: the largest gap between two empirical CDFs.

Small samples (both at most 10,000 values) get SciPy's exact p-value; larger ones the
asymptotic distribution with ``n * m / (n + m)`` effective observations, as
:func:`scipy.stats.ks_2samp` does in its ``asymp`` mode (see :func:`ks_pvalue`). The
statistic of large samples is exact without sorting either sample
(:func:`hindsight.data.buckets.ks_statistic`), several times faster than SciPy.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> result = KS()(rng.normal(size=500), rng.normal(0.5, size=500))
>>> result.drifted, round(result.statistic, 3)
(True, 0.214)
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import special, stats

from hindsight.data.buckets import Buckets, grid_for, ks_statistic
from hindsight.drift.stattests.base import DriftTest, as_numeric, register

__all__ = ["ASYMPTOTIC_LIMIT", "EXACT_LIMIT", "KS", "ks_pvalue", "ks_small"]

#: Largest sample size for which the exact p-value is computed (SciPy's own limit).
EXACT_LIMIT = 10_000
#: Effective sample size above which the limiting Kolmogorov distribution gives p.
ASYMPTOTIC_LIMIT = 10_000


def ks_small(a: np.ndarray, b: np.ndarray) -> tuple[float, float, str]:
    """SciPy's exact KS test, or its asymptotic p-value where the exact one fails.

    SciPy falls back by itself with a RuntimeWarning (heavy ties); the fallback is
    recorded in the method name instead of surfacing as a warning.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        res = stats.ks_2samp(a, b, method="exact")
    fell_back = any("Exact calculation unsuccessful" in str(w.message) for w in caught)
    for w in caught:
        if "Exact calculation unsuccessful" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return float(res.statistic), float(res.pvalue), "asymptotic (exact failed)" if fell_back else "exact"


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """Asymptotic two-sided p-value of a two-sample KS statistic.

    Up to 10,000 effective observations (``n * m / (n + m)``) this is SciPy's ``asymp``
    mode (``kstwo.sf``). Beyond, ``kstwo.sf`` costs up to half a second per call while
    Kolmogorov's limiting distribution, used instead, differs from it by well under
    1 % (relative) for every p-value that could matter to a decision.
    """
    en = n * m / (n + m)
    if en <= ASYMPTOTIC_LIMIT:
        p = stats.kstwo.sf(statistic, np.round(en))
    else:
        p = special.kolmogorov(statistic * np.sqrt(en))
    return float(np.clip(p, 0.0, 1.0))


@register
class KS(DriftTest):
    """Two-sample Kolmogorov-Smirnov test; drift when the p-value is below ``threshold``."""

    name = "ks"
    kinds = frozenset({"numeric"})
    has_p_value = True
    default_threshold = 0.05
    threshold_on = "p_value"
    effect_name = "ks_distance"

    def _compute(
        self, reference: Any, current: Any
    ) -> tuple[float, float | None, float, dict[str, Any]]:
        ref = as_numeric(reference, "reference")
        cur = as_numeric(current, "current")
        if max(ref.size, cur.size) <= EXACT_LIMIT:
            d, p, method = ks_small(ref, cur)
        else:
            grid = grid_for([ref, cur])
            d = ks_statistic(Buckets.build(ref, grid), Buckets.build(cur, grid))
            p = ks_pvalue(d, ref.size, cur.size)
            method = "asymptotic"
        return d, p, d, {"method": method, "n_reference": ref.size, "n_current": cur.size}
