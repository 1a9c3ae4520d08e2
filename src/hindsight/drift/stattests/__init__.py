"""The registry of drift tests, one module each, every one checked against SciPy or its paper.

>>> from hindsight.drift.stattests import get_test
>>> get_test("ks").name
'ks'
"""

from __future__ import annotations

from typing import Any

from hindsight.drift.stattests.anderson import AndersonDarling
from hindsight.drift.stattests.base import (
    REGISTRY,
    Counts,
    DriftTest,
    Kind,
    TestResult,
    as_counts,
    as_numeric,
    quantile_bin_counts,
    register,
)
from hindsight.drift.stattests.c2st import C2ST
from hindsight.drift.stattests.chisquare import ChiSquare
from hindsight.drift.stattests.cvm import CramerVonMises
from hindsight.drift.stattests.energy import EnergyDistance
from hindsight.drift.stattests.gtest import GTest
from hindsight.drift.stattests.hellinger import Hellinger
from hindsight.drift.stattests.jensen_shannon import JensenShannon
from hindsight.drift.stattests.kl import KLDivergence
from hindsight.drift.stattests.ks import KS
from hindsight.drift.stattests.mannwhitney import MannWhitney
from hindsight.drift.stattests.mmd import MMDLinear, MMDPermutation
from hindsight.drift.stattests.pca_reconstruction import PCAReconstruction
from hindsight.drift.stattests.psi import PSI
from hindsight.drift.stattests.total_variation import TotalVariation
from hindsight.drift.stattests.wasserstein import Wasserstein
from hindsight.drift.stattests.ztest import ZTest
from hindsight.errors import DriftError

__all__ = [
    "C2ST",
    "KS",
    "PSI",
    "AndersonDarling",
    "ChiSquare",
    "Counts",
    "CramerVonMises",
    "DriftTest",
    "EnergyDistance",
    "GTest",
    "Hellinger",
    "JensenShannon",
    "KLDivergence",
    "MMDLinear",
    "MMDPermutation",
    "MannWhitney",
    "PCAReconstruction",
    "TestResult",
    "TotalVariation",
    "Wasserstein",
    "ZTest",
    "as_counts",
    "as_numeric",
    "available_tests",
    "get_test",
    "quantile_bin_counts",
    "register",
]


def available_tests(kind: Kind | None = None) -> list[str]:
    """Registered test names, optionally only those that take ``kind`` data."""
    return sorted(n for n, c in REGISTRY.items() if kind is None or kind in c.kinds)


def get_test(name: str, **params: Any) -> DriftTest:
    """A configured test by registry name; the error lists the names that exist."""
    cls = REGISTRY.get(name)
    if cls is None:
        raise DriftError(f"No drift test named {name!r}. Available: {', '.join(sorted(REGISTRY))}.")
    return cls(**params)
