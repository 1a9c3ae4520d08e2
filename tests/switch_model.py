"""A model for breaker tests: it answers until ``down`` is set, then times out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hindsight.serving import ModelOutput


class Switch:
    """A model that fails while ``down`` is set."""

    def __init__(self) -> None:
        self.down = False

    def __call__(self, inputs: Mapping[str, Any]) -> ModelOutput:
        if self.down:
            raise ConnectionError("feature store timed out")
        return ModelOutput("model-answer", 0.9)
