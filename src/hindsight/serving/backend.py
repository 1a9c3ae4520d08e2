"""The serving seam: ``ModelBackend.predict(inputs) -> ModelOutput``.

Every tier of a fallback chain, a canary, a shadow and an A/B arm wraps the same shape,
so anything that can score one request can sit anywhere in a service. ``inputs`` is one
request's features as a mapping (JSON-like); ``ModelOutput`` carries the prediction and,
where the model has one, a confidence in [0, 1].
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ModelBackend", "ModelOutput"]


@dataclass(frozen=True)
class ModelOutput:
    """One prediction: the output (JSON-serialisable) and an optional confidence in [0, 1]."""

    output: Any
    confidence: float | None = None

    def problem(self) -> str | None:
        """Why this output cannot be served (NaN, infinite, confidence out of range), or None."""
        if _has_bad_number(self.output):
            return "the output contains NaN or infinity"
        if self.confidence is not None and not (
            isinstance(self.confidence, int | float) and 0.0 <= float(self.confidence) <= 1.0
        ):
            return f"the confidence must be a number in [0, 1], got {self.confidence!r}"
        return None


def _has_bad_number(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Mapping):
        return any(_has_bad_number(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_bad_number(v) for v in value)
    return False


class ModelBackend(abc.ABC):
    """Something that scores one request: a model, a previous version, a rule set.

    Subclasses set ``name`` and ``version`` and implement :meth:`predict`. ``predict``
    may block; the service runs it off the event loop and gives up on it at the deadline.
    """

    name: str = "model"
    version: str = "0"
    #: Where calls run. ``False``: on the tier's worker threads, where the deadline can cut
    #: a slow or hung call off (the default: right for anything that may block). ``True``:
    #: on the event loop itself, no thread hop and no timeout; only for what answers in
    #: microseconds and cannot block (hand-written rules). ``"auto"``: on the loop while
    #: the p90 of its calls' CPU time stays under ``Tier.inline_below_ms`` and its breaker is
    #: closed, on workers otherwise; for in-memory models (scikit-learn), whose thread
    #: hop would cost more than the prediction.
    inline: bool | Literal["auto"] = False

    @abc.abstractmethod
    def predict(self, inputs: Mapping[str, Any]) -> ModelOutput:
        """Score one request."""

    def describe(self) -> dict[str, Any]:
        """What this backend is, for the prediction log and the status endpoint."""
        return {"name": self.name, "version": self.version, "kind": type(self).__name__}
