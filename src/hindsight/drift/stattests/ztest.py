"""Two-proportion Z-test: has the share of one outcome changed?

For a binary column (or one category against the rest) with ``x1`` of ``n1`` reference
and ``x2`` of ``n2`` current rows positive, the pooled test statistic is
``z = (x2/n2 - x1/n1) / sqrt(p * (1 - p) * (1/n1 + 1/n2))`` with ``p = (x1 + x2) /
(n1 + n2)``, and the two-sided p-value is ``2 * (1 - Phi(|z|))``. It is the same test as
the chi-square test on the 2 x 2 table (``z ** 2`` is its statistic), reported with a
sign that says which way the share moved. When neither sample has any positive (or any
negative) row the shares cannot differ, and the test reports z = 0, p = 1.

Input: two arrays of booleans or of 0/1 values, or
:class:`~hindsight.drift.stattests.Counts` with exactly two categories, in which case
the second category's share is tested (for a two-sided test the choice only flips the
sign of z). The effect size is the absolute difference of the shares, ``|p2 - p1|``, in
the units people read shares in; Cohen's h, ``|2 asin(sqrt(p2)) - 2 asin(sqrt(p1))|``,
which weighs a change near 0 or 1 more, is in ``details``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> result = ZTest()(rng.random(1000) < 0.10, rng.random(1000) < 0.14)
>>> result.drifted, round(result.effect_size, 3)
(True, 0.075)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from hindsight.drift.stattests.base import Counts, DriftTest, register
from hindsight.errors import DriftError

__all__ = ["ZTest", "binary_counts"]


def _binary(values: Any, role: str) -> tuple[float, float]:
    """``(positives, rows)`` of a 1-D array of booleans or 0/1 values."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DriftError(f"The {role} sample must be 1-D. Got shape {arr.shape}.")
    if arr.size == 0:
        raise DriftError(f"The {role} sample is empty; a drift test needs at least one value.")
    if arr.dtype.kind != "b":
        if arr.dtype.kind not in "iuf":
            raise DriftError(
                f"The z_test needs booleans or 0/1 values; the {role} sample has dtype "
                f"{arr.dtype}. Compare labels with 'chi_square', or pass Counts with two "
                "categories."
            )
        if not np.isin(arr, (0, 1)).all():
            raise DriftError(
                f"The z_test needs booleans or 0/1 values; the {role} sample has other "
                "values (or NaN). Map the column to 0/1 first, or use 'chi_square'."
            )
    return float(np.count_nonzero(arr)), float(arr.size)


def binary_counts(reference: Any, current: Any) -> tuple[float, float, float, float]:
    """``(x1, n1, x2, n2)``: positives and rows of the reference and the current sample."""
    if isinstance(reference, Counts):
        if reference.reference.size != 2:
            raise DriftError(
                "The z_test compares the share of one category, so Counts must have exactly "
                f"2 categories; got {reference.reference.size}. Use 'chi_square' for more."
            )
        return (
            float(reference.reference[1]),
            reference.n_reference,
            float(reference.current[1]),
            reference.n_current,
        )
    x1, n1 = _binary(reference, "reference")
    x2, n2 = _binary(current, "current")
    return x1, n1, x2, n2


@register
class ZTest(DriftTest):
    """Pooled two-proportion Z-test; drift when the p-value is below ``threshold``."""

    name = "z_test"
    kinds = frozenset({"categorical"})
    has_p_value = True
    default_threshold = 0.05
    threshold_on = "p_value"
    effect_name = "proportion_difference"

    def _compute(
        self, reference: Any, current: Any
    ) -> tuple[float, float | None, float, dict[str, Any]]:
        x1, n1, x2, n2 = binary_counts(reference, current)
        p1, p2 = x1 / n1, x2 / n2
        pooled = (x1 + x2) / (n1 + n2)
        variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
        if variance > 0.0:
            z = (p2 - p1) / math.sqrt(variance)
            p_value = float(2.0 * stats.norm.sf(abs(z)))
        else:
            z, p_value = 0.0, 1.0
        cohens_h = abs(2.0 * math.asin(math.sqrt(p2)) - 2.0 * math.asin(math.sqrt(p1)))
        return (
            z,
            p_value,
            abs(p2 - p1),
            {
                "reference_share": p1,
                "current_share": p2,
                "cohens_h": cohens_h,
                "n_reference": n1,
                "n_current": n2,
            },
        )
