"""A small loan-approval model for the example service: a fixed logistic score.

In a real service this would load a trained model (``kind: sklearn`` or ``kind: mlflow``
in service.yaml); a plain function keeps the example self-contained.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def score(inputs: Mapping[str, Any]) -> tuple[str, float]:
    """Approve or decline, with the model's confidence in its answer."""
    z = 2.0 - 0.0004 * float(inputs["amount"]) + 0.03 * (float(inputs["age"]) - 40.0)
    p = 1.0 / (1.0 + math.exp(-z))
    return ("approve", p) if p >= 0.5 else ("decline", 1.0 - p)


def score_v2(inputs: Mapping[str, Any]) -> tuple[str, float]:
    """A retrain that leans harder on age (the candidate in the example canary)."""
    z = 1.5 - 0.0003 * float(inputs["amount"]) + 0.05 * (float(inputs["age"]) - 40.0)
    p = 1.0 / (1.0 + math.exp(-z))
    return ("approve", p) if p >= 0.5 else ("decline", 1.0 - p)
