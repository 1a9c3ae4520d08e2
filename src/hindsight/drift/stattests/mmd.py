"""Maximum Mean Discrepancy with a Gaussian kernel (Gretton et al. 2012, "A Kernel Two-Sample Test").

The kernel is ``k(a, b) = exp(-||a - b||^2 / (2 * bandwidth^2))``. Unless a ``bandwidth``
is given, it is the *median heuristic* of the paper's experiments: the median Euclidean
distance ``||z_i - z_j||`` over all distinct pairs ``i < j`` of rows of the pooled sample
(reference and current stacked), the average of the two middle distances when their
number is even. If that median is zero (at least half the pairs are duplicate rows), the
median of the non-zero distances is used instead, and 1.0 if every row is the same.
Which pooled sample the median is taken over is said by each test.

Two tests share the kernel:

* :class:`MMDPermutation` (``"mmd"``) -- the unbiased quadratic-time MMD^2 (Eq. 3 /
  Lemma 6) with a permutation null. The median is taken over every pair of the pooled
  (subsampled) sample; since the pooled sample does not change under permutation, the
  bandwidth is the same for every relabelling and the test stays exact.
* :class:`MMDLinear` (``"mmd_linear"``) -- the linear-time statistic of Section 6
  (Lemma 14) with the asymptotic normal null of Corollary 16, O(n) in time and memory.
  The median is taken over every pair of a seeded subsample of at most
  :data:`MEDIAN_MAX_ROWS` rows drawn from the pooled sample, which keeps it O(n).

Both report ``MMD^2`` as the statistic and ``sqrt(max(MMD^2, 0))`` -- the distance
between the kernel mean embeddings -- as the effect size.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> reference = rng.normal(size=(200, 3))
>>> current = rng.normal(0.5, size=(200, 3))
>>> result = MMDPermutation()(reference, current)
>>> result.drifted, round(result.p_value, 4)
(True, 0.0099)
>>> MMDLinear()(reference, current).drifted
True
>>> MMDPermutation()(reference, rng.normal(size=(200, 3))).drifted
False
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from hindsight._validation import Interval
from hindsight.drift.stattests._matrix import as_matrices, subsample_rows
from hindsight.drift.stattests.base import DriftTest, register

__all__ = [
    "MEDIAN_MAX_ROWS",
    "MIN_ROWS",
    "MMDLinear",
    "MMDPermutation",
    "gaussian_kernel",
    "median_heuristic",
    "mmd2_linear",
    "mmd2_unbiased",
]

#: Fewest rows per sample: the linear statistic needs two pairs to estimate its variance.
MIN_ROWS = 4
#: Most pooled rows the linear test takes its median heuristic over (O(rows^2) distances).
MEDIAN_MAX_ROWS = 1000
# Permutations are evaluated in blocks, so memory stays O(rows x block), not O(rows x n_perm).
_PERMUTATION_BLOCK = 128


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between the rows of ``a`` and ``b`` (inputs centred by the caller)."""
    sq = a @ b.T
    sq *= -2.0
    sq += np.einsum("ij,ij->i", a, a)[:, None]
    sq += np.einsum("ij,ij->i", b, b)[None, :]
    np.maximum(sq, 0.0, out=sq)
    return sq


def _median_of_pair_distances(sq: np.ndarray) -> float:
    """The median heuristic from the square matrix of squared distances of a sample to itself.

    The off-diagonal entries hold every distinct pair twice, which leaves the median
    unchanged, and the ``N`` zeros of the diagonal are the ``N`` smallest entries, so the
    off-diagonal median sits at fixed ranks of the whole matrix: no triangle is copied.
    Squared distances within ``1e-12`` of the largest count as zero (rounding of duplicates).
    """
    n = sq.shape[0]
    pairs = n * (n - 1) // 2  # off-diagonal entries: 2 * pairs
    zero = 1e-12 * float(sq.max())
    flat = sq.ravel().copy()
    np.fill_diagonal(flat.reshape(n, n), 0.0)
    lo, hi = n + pairs - 1, n + pairs
    flat.partition((lo, hi))
    if flat[hi] > zero:
        return 0.5 * (math.sqrt(flat[lo] if flat[lo] > zero else 0.0) + math.sqrt(flat[hi]))
    off_diagonal = sq[~np.eye(n, dtype=bool)]
    positive = off_diagonal[off_diagonal > zero]
    return float(np.sqrt(np.median(positive))) if positive.size else 1.0


def median_heuristic(pooled: np.ndarray) -> float:
    """Median Euclidean distance over all distinct pairs of rows of ``pooled`` (see module doc)."""
    z = np.asarray(pooled, dtype=np.float64)
    z = z - z.mean(axis=0)  # distances are shift-invariant; centring avoids cancellation
    return _median_of_pair_distances(_sq_distances(z, z))


def gaussian_kernel(a: np.ndarray, b: np.ndarray, bandwidth: float) -> np.ndarray:
    """The Gaussian kernel matrix ``exp(-||a_i - b_j||^2 / (2 bandwidth^2))``."""
    shift = np.vstack([a, b]).mean(axis=0)
    sq = _sq_distances(a - shift, b - shift)
    sq *= -0.5 / bandwidth**2
    return np.exp(sq, out=sq)


def _kernel_rows(a: np.ndarray, b: np.ndarray, bandwidth: float) -> np.ndarray:
    """``k(a_i, b_i)`` for paired rows: O(rows) time and memory."""
    diff = a - b
    return np.exp(-np.einsum("ij,ij->i", diff, diff) / (2.0 * bandwidth**2))


def _mmd2_for_labellings(kernel: np.ndarray, masks: np.ndarray, m: int) -> np.ndarray:
    """Unbiased MMD^2 (Eq. 3) for each column of ``masks`` (1 marks a row of the first sample).

    With ``a`` the indicator of the first sample and ``b = 1 - a``, every block sum of
    the pooled kernel matrix ``K`` is a quadratic form: ``a'Ka``, ``a'Kb = a'K1 - a'Ka``
    and ``b'Kb = 1'K1 - 2 a'K1 + a'Ka``; the diagonal (the ``i = j`` terms Eq. 3 leaves
    out) is subtracted from the within-sample sums. One matrix product per block.
    """
    n = kernel.shape[0] - m
    diag = np.diagonal(kernel)
    row_sums = kernel.sum(axis=1)
    total = row_sums.sum()
    a_k_a = np.einsum("ip,ip->p", masks, kernel @ masks)
    a_k_1 = row_sums @ masks
    a_diag = diag @ masks
    b_diag = diag.sum() - a_diag
    k_xx = (a_k_a - a_diag) / (m * (m - 1))
    k_yy = (total - 2.0 * a_k_1 + a_k_a - b_diag) / (n * (n - 1))
    k_xy = (a_k_1 - a_k_a) / (m * n)
    result: np.ndarray = k_xx + k_yy - 2.0 * k_xy
    return result


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    """The unbiased quadratic-time MMD^2 of Gretton et al. 2012, Eq. 3 (Lemma 6)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    pooled = np.vstack([x, y])
    kernel = gaussian_kernel(pooled, pooled, bandwidth)
    mask = np.zeros((pooled.shape[0], 1))
    mask[: x.shape[0]] = 1.0
    return float(_mmd2_for_labellings(kernel, mask, x.shape[0])[0])


def _linear_terms(x: np.ndarray, y: np.ndarray, bandwidth: float) -> np.ndarray:
    """``h((x_{2i-1}, y_{2i-1}), (x_{2i}, y_{2i}))`` for ``i = 1 .. floor(min(m, n) / 2)``."""
    pairs = min(x.shape[0], y.shape[0]) // 2
    x1, x2 = x[0 : 2 * pairs : 2], x[1 : 2 * pairs : 2]
    y1, y2 = y[0 : 2 * pairs : 2], y[1 : 2 * pairs : 2]
    h: np.ndarray = (
        _kernel_rows(x1, x2, bandwidth)
        + _kernel_rows(y1, y2, bandwidth)
        - _kernel_rows(x1, y2, bandwidth)
        - _kernel_rows(x2, y1, bandwidth)
    )
    return h


def mmd2_linear(x: np.ndarray, y: np.ndarray, bandwidth: float) -> tuple[float, float]:
    """The linear-time MMD^2_l of Lemma 14 and its estimated standard error.

    Rows are paired in the order given: ``(x_1, y_1)`` with ``(x_2, y_2)``, and so on,
    over ``m2 = floor(min(m, n) / 2)`` pairs; rows past ``2 * m2`` are not used. The
    statistic is the mean of the ``m2`` independent terms ``h``, asymptotically normal
    (Corollary 16) with variance ``Var(h) / m2``; the standard error returned estimates
    it with the sample variance (ddof=1) of the terms.
    """
    h = _linear_terms(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), bandwidth)
    std_error = float(np.std(h, ddof=1) / math.sqrt(h.size)) if h.size > 1 else math.nan
    return float(h.mean()), std_error


_BANDWIDTH = Interval(float, 0.0, None, closed="neither", allow_none=True)
_SEED = Interval(int, 0, None, allow_none=True)


@register
class MMDLinear(DriftTest):
    """Linear-time MMD test with a normal null; drift when the p-value is below ``threshold``.

    Rows of each sample are shuffled (seeded by ``random_state``) before pairing, so
    ordered data -- a time series whose neighbouring rows are alike -- does not bias
    the within-sample kernel terms. With samples of unequal size, the larger one
    contributes only as many rows as the smaller.

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> MMDLinear()(rng.normal(size=(1000, 2)), rng.normal(1.0, size=(1000, 2))).drifted
    True
    """

    name = "mmd_linear"
    kinds = frozenset({"multivariate"})
    has_p_value = True
    default_threshold = 0.05
    threshold_on = "p_value"
    effect_name = "mmd"
    _constraints = {"bandwidth": _BANDWIDTH, "random_state": _SEED}

    bandwidth: float | None
    random_state: int | None

    def __init__(
        self,
        threshold: float | None = None,
        *,
        bandwidth: float | None = None,
        random_state: int | None = 0,
    ) -> None:
        super().__init__(threshold, bandwidth=bandwidth, random_state=random_state)

    def _compute(
        self, reference: Any, current: Any
    ) -> tuple[float, float | None, float, dict[str, Any]]:
        ref, cur = as_matrices(reference, current, self.name, MIN_ROWS)
        rng = np.random.default_rng(self.random_state)
        n_ref, n_cur = ref.shape[0], cur.shape[0]
        if self.bandwidth is None:
            size = min(MEDIAN_MAX_ROWS, n_ref + n_cur)
            picked = np.sort(rng.choice(n_ref + n_cur, size=size, replace=False))
            split = np.searchsorted(picked, n_ref)
            pooled = np.vstack([ref[picked[:split]], cur[picked[split:] - n_ref]])
            bandwidth = median_heuristic(pooled)
        else:
            bandwidth = float(self.bandwidth)
        pairs = min(n_ref, n_cur) // 2
        x = ref[rng.permutation(n_ref)[: 2 * pairs]]
        y = cur[rng.permutation(n_cur)[: 2 * pairs]]
        mmd2, std_error = mmd2_linear(x, y, bandwidth)
        # Every term equal (no noise at all): any positive MMD^2 is then certain.
        noiseless = math.inf if mmd2 > 0.0 else 0.0
        z = mmd2 / std_error if std_error > 0.0 else noiseless
        p_value = float(stats.norm.sf(z))
        details = {
            "mmd2": mmd2,
            "z": z,
            "std_error": std_error,
            "bandwidth": bandwidth,
            "bandwidth_source": "given" if self.bandwidth is not None else "median heuristic",
            "n_pairs": pairs,
            "n_reference": n_ref,
            "n_current": n_cur,
            "rows_used": 2 * pairs,
        }
        return mmd2, p_value, math.sqrt(max(mmd2, 0.0)), details


@register
class MMDPermutation(DriftTest):
    """Unbiased MMD^2 with a permutation null; drift when the p-value is below ``threshold``.

    Each sample is first subsampled (seeded) to at most ``max_samples`` rows, because the
    pooled kernel matrix holds ``(n + m)^2`` floats: 128 MB at the default 2000 + 2000
    (twice that for a moment while the median heuristic is found).
    That matrix is computed once; each permutation's MMD^2 is then a pair of quadratic
    forms in it. The p-value is ``(1 + #{permuted MMD^2 >= observed}) / (1 + n_permutations)``,
    so it is never below ``1 / (1 + n_permutations)``.

    >>> import numpy as np
    >>> rng = np.random.default_rng(2)
    >>> result = MMDPermutation(n_permutations=50)(rng.normal(size=(100, 4)), rng.normal(size=(80, 4)))
    >>> result.drifted, result.details["n_permutations"]
    (False, 50)
    """

    name = "mmd"
    kinds = frozenset({"multivariate"})
    has_p_value = True
    default_threshold = 0.05
    threshold_on = "p_value"
    effect_name = "mmd"
    _constraints = {
        "n_permutations": Interval(int, 1, None),
        "max_samples": Interval(int, MIN_ROWS, None),
        "bandwidth": _BANDWIDTH,
        "random_state": _SEED,
    }

    n_permutations: int
    max_samples: int
    bandwidth: float | None
    random_state: int | None

    def __init__(
        self,
        threshold: float | None = None,
        *,
        n_permutations: int = 100,
        max_samples: int = 2000,
        bandwidth: float | None = None,
        random_state: int | None = 0,
    ) -> None:
        super().__init__(
            threshold,
            n_permutations=n_permutations,
            max_samples=max_samples,
            bandwidth=bandwidth,
            random_state=random_state,
        )

    def _compute(
        self, reference: Any, current: Any
    ) -> tuple[float, float | None, float, dict[str, Any]]:
        ref, cur = as_matrices(reference, current, self.name, MIN_ROWS)
        rng = np.random.default_rng(self.random_state)
        x = subsample_rows(ref, self.max_samples, rng)
        y = subsample_rows(cur, self.max_samples, rng)
        m, n = x.shape[0], y.shape[0]
        pooled = np.vstack([x, y])
        pooled -= pooled.mean(axis=0)
        kernel = _sq_distances(pooled, pooled)
        np.fill_diagonal(kernel, 0.0)
        if self.bandwidth is None:
            bandwidth = _median_of_pair_distances(kernel)
        else:
            bandwidth = float(self.bandwidth)
        kernel *= -0.5 / bandwidth**2
        np.exp(kernel, out=kernel)

        identity = np.zeros((m + n, 1))
        identity[:m] = 1.0
        observed = float(_mmd2_for_labellings(kernel, identity, m)[0])
        null = np.empty(self.n_permutations)
        for start in range(0, self.n_permutations, _PERMUTATION_BLOCK):
            block = min(_PERMUTATION_BLOCK, self.n_permutations - start)
            first = np.argsort(rng.random((block, m + n)), axis=1)[:, :m]
            masks = np.zeros((m + n, block))
            masks[first, np.arange(block)[:, None]] = 1.0
            null[start : start + block] = _mmd2_for_labellings(kernel, masks, m)
        # Relabellings equal to the observed one must count as ties despite rounding.
        tolerance = 1e-12 * max(1.0, abs(observed))
        exceed = int(np.count_nonzero(null >= observed - tolerance))
        p_value = (1 + exceed) / (1 + self.n_permutations)
        subsampled = m < ref.shape[0] or n < cur.shape[0]
        details: dict[str, Any] = {
            "mmd2": observed,
            "bandwidth": bandwidth,
            "bandwidth_source": "given" if self.bandwidth is not None else "median heuristic",
            "n_permutations": self.n_permutations,
            "null_mean": float(null.mean()),
            "null_std": float(null.std()),
            "n_reference": ref.shape[0],
            "n_current": cur.shape[0],
            "n_reference_used": m,
            "n_current_used": n,
            "subsampled": subsampled,
        }
        if subsampled:
            details["note"] = (
                f"each sample was subsampled (seeded) to at most {self.max_samples} rows "
                "to bound the memory of the pooled kernel matrix"
            )
        return observed, p_value, math.sqrt(max(observed, 0.0)), details
