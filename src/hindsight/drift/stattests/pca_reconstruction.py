"""Data reconstruction error: drift in the joint structure of features, seen through PCA.

The method NannyML documents for multivariate drift, written here from its description:

1. Standardise every feature with the reference's mean and standard deviation (a
   feature constant in the reference keeps a scale of 1, so any change in it shows).
2. Fit PCA on the standardised reference (an SVD; it is already centred) and keep the
   fewest components whose cumulative explained-variance ratio reaches ``variance``
   (at most ``n_features - 1``, so that some residual always remains).
3. The reconstruction error of a row is the Euclidean distance between the standardised
   row and its projection onto those components; the error of a sample is its mean.
4. Cut the reference into ``chunks`` consecutive chunks of (nearly) equal size and take
   the mean error of each. Their mean ``mu`` and standard deviation ``sigma`` (ddof=1)
   describe how the error of a reference-like chunk varies.

The effect size is ``|current error - mu| / sigma``, the number of reference-chunk
standard deviations the current sample's error lies from the reference's; drift is an
effect of at least ``threshold`` (3 by default), i.e. a current error outside the band
``mu +/- threshold * sigma``, which the details report as ``lower`` and ``upper``.
A change in correlation that leaves every marginal distribution as it was still
moves rows off the reference's principal subspace, which is the point of the method.

``sigma`` is the spread of the mean error of a chunk of ``len(reference) / chunks``
rows; a current sample much larger than that makes the test conservative, a much
smaller one raises false alarms. The details report the ``chunk_size`` to compare with.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> def correlated(n):
...     base = rng.normal(size=(n, 1))
...     return np.hstack([base, base + 0.3 * rng.normal(size=(n, 1))])
>>> reference = correlated(2000)
>>> result = PCAReconstruction()(reference, correlated(200))
>>> result.drifted, result.details["n_components"]
(False, 1)
>>> current = rng.normal(size=(200, 2)) * reference.std(axis=0)  # same scales, no correlation
>>> PCAReconstruction()(reference, current).drifted
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hindsight._validation import Interval
from hindsight.drift.stattests._matrix import as_matrices
from hindsight.drift.stattests.base import DriftTest, register

__all__ = ["PCAReconstruction", "ReconstructionModel", "fit_reconstruction"]

# Below this spread of the reference chunks' errors (in standardised units) the errors
# differ by rounding only; dividing by it would turn rounding noise into "drift".
_SIGMA_FLOOR = 1e-9


@dataclass(frozen=True)
class ReconstructionModel:
    """Standardisation and principal components learned from a reference sample."""

    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray  # (n_components, n_features), orthonormal rows
    explained_variance: float

    def errors(self, x: np.ndarray) -> np.ndarray:
        """Per-row Euclidean distance between the standardised row and its reconstruction."""
        z = (x - self.mean) / self.scale
        residual = z - (z @ self.components.T) @ self.components
        errors: np.ndarray = np.sqrt(np.einsum("ij,ij->i", residual, residual))
        return errors


def fit_reconstruction(reference: np.ndarray, variance: float) -> ReconstructionModel:
    """Standardise ``reference`` and keep the components explaining ``variance`` of it."""
    mean = reference.mean(axis=0)
    scale = reference.std(axis=0)
    # A constant column's std is rounding noise; a scale of 1 keeps its changes visible.
    scale[scale <= 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0
    z = (reference - mean) / scale
    _, singular, vt = np.linalg.svd(z, full_matrices=False)
    power = singular**2
    total = float(power.sum())
    n_features = reference.shape[1]
    if total > 0.0:
        ratio = np.cumsum(power) / total
        # Smallest k with ratio[k - 1] >= variance; the slack absorbs rounding at variance=1.
        k = int(np.searchsorted(ratio, variance - 1e-12)) + 1
        k = min(k, n_features - 1, vt.shape[0])
        explained = float(ratio[k - 1])
    else:
        k, explained = 1, 0.0
    return ReconstructionModel(mean, scale, vt[:k], explained)


@register
class PCAReconstruction(DriftTest):
    """PCA reconstruction-error drift; drift at ``threshold`` reference-chunk sigmas or more.

    >>> import numpy as np
    >>> rng = np.random.default_rng(4)
    >>> reference = rng.normal(size=(1000, 4))
    >>> PCAReconstruction()(reference, rng.normal(size=(100, 4))).drifted
    False
    """

    name = "pca_reconstruction"
    kinds = frozenset({"multivariate"})
    has_p_value = False
    default_threshold = 3.0
    threshold_on = "effect_size"
    effect_name = "reference_sigmas"
    _constraints = {
        "variance": Interval(float, 0.0, 1.0, closed="right"),
        "chunks": Interval(int, 2, None),
    }

    variance: float
    chunks: int

    def __init__(
        self, threshold: float | None = None, *, variance: float = 0.65, chunks: int = 10
    ) -> None:
        super().__init__(threshold, variance=variance, chunks=chunks)

    def _compute(
        self, reference: Any, current: Any
    ) -> tuple[float, float | None, float, dict[str, Any]]:
        ref, cur = as_matrices(
            reference,
            current,
            self.name,
            min_rows=2,
            min_reference_rows=2 * self.chunks,
            min_features=2,
        )
        model = fit_reconstruction(ref, float(self.variance))
        chunk_errors = np.array(
            [part.mean() for part in np.array_split(model.errors(ref), self.chunks)]
        )
        mu = float(chunk_errors.mean())
        sigma = float(chunk_errors.std(ddof=1))
        current_error = float(model.errors(cur).mean())
        spread = max(sigma, _SIGMA_FLOOR)
        effect = abs(current_error - mu) / spread
        details = {
            "current_error": current_error,
            "reference_error": mu,
            "reference_error_std": sigma,
            "lower": mu - self.threshold * spread,
            "upper": mu + self.threshold * spread,
            "chunk_errors": [float(e) for e in chunk_errors],
            "chunk_size": math.floor(ref.shape[0] / self.chunks),
            "n_components": int(model.components.shape[0]),
            "explained_variance": model.explained_variance,
            "n_features": ref.shape[1],
            "n_reference": ref.shape[0],
            "n_current": cur.shape[0],
        }
        return current_error, None, effect, details
