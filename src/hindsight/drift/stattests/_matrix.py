"""Input checks and seeded subsampling shared by the multivariate tests (rows x features)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hindsight.errors import DriftError

__all__ = ["as_matrices", "as_matrix", "subsample_rows"]


def as_matrix(values: Any, role: str) -> np.ndarray:
    """A 2-D float64 array (rows x features) of finite values, or a :class:`DriftError`."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DriftError(
            f"The {role} sample must be numeric; it could not be read as floats ({exc}). "
            "Encode categorical columns as numbers first."
        ) from exc
    if arr.ndim != 2:
        raise DriftError(
            f"The {role} sample must be 2-D (rows x features). Got shape {arr.shape}. "
            "Reshape one feature with x.reshape(-1, 1), or use a numeric test such as 'ks'."
        )
    if arr.shape[1] == 0:
        raise DriftError(f"The {role} sample has no features (shape {arr.shape}).")
    if not np.isfinite(arr).all():
        raise DriftError(
            f"The {role} sample contains NaN or infinity. Drop or impute missing values first."
        )
    return arr


def as_matrices(
    reference: Any,
    current: Any,
    test: str,
    min_rows: int,
    min_reference_rows: int | None = None,
    min_features: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Both samples as 2-D float arrays of the same width with enough rows for ``test``."""
    ref = as_matrix(reference, "reference")
    cur = as_matrix(current, "current")
    if ref.shape[1] != cur.shape[1]:
        raise DriftError(
            f"The reference and current samples must have the same features; the reference "
            f"has {ref.shape[1]} columns and the current {cur.shape[1]}. Select the same "
            "columns, in the same order, from both."
        )
    if ref.shape[1] < min_features:
        raise DriftError(
            f"The {test} test needs at least {min_features} features; the samples have "
            f"{ref.shape[1]}. Use a numeric test such as 'ks' for a single column."
        )
    need_ref = min_rows if min_reference_rows is None else min_reference_rows
    for role, arr, need in (("reference", ref, need_ref), ("current", cur, min_rows)):
        if arr.shape[0] < need:
            raise DriftError(
                f"The {test} test needs at least {need} rows in the {role} sample; it has "
                f"{arr.shape[0]}. Compare larger samples (or windows)."
            )
    return ref, cur


def subsample_rows(x: np.ndarray, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``max_rows`` rows of ``x``, drawn without replacement (all of them if fewer)."""
    if x.shape[0] <= max_rows:
        return x
    return x[np.sort(rng.choice(x.shape[0], size=max_rows, replace=False))]
