"""Parameter constraints declared as data and checked in one place.

Every message has one shape, e.g.
"The 'patience' parameter of Plateau must be an int >= 1. Got 0."
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hindsight.errors import ConfigError

__all__ = ["Interval", "Options", "validate_params"]


@dataclass(frozen=True)
class Interval:
    """A real (or integer) interval; ``None`` bounds are open to infinity."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # "both", "left", "right" or "neither"
    allow_none: bool = False

    def describe(self) -> str:
        noun = "an int" if self.kind is int else "a float"
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and self.high is not None:
            text = f"{noun} in {'[' if left else '('}{self.low:g}, {self.high:g}{']' if right else ')'}"
        elif self.low is not None:
            text = f"{noun} {'>=' if left else '>'} {self.low:g}"
        elif self.high is not None:
            text = f"{noun} {'<=' if right else '<'} {self.high:g}"
        else:
            text = f"{noun}"
        return text + (" or None" if self.allow_none else "")

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.allow_none
        if isinstance(value, bool):
            return False
        if self.kind is int:
            if not isinstance(value, numbers.Integral):
                return False
        elif not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
            return False
        v = float(value)
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (v < self.low or (v == self.low and not left)):
            return False
        return not (self.high is not None and (v > self.high or (v == self.high and not right)))


@dataclass(frozen=True)
class Options:
    """One of a fixed set of strings."""

    values: tuple[str, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.values


def validate_params(
    owner: str, params: Mapping[str, Any], constraints: Mapping[str, Interval | Options]
) -> None:
    """Raise :class:`ConfigError` for the first parameter that breaks its constraint."""
    for name, constraint in constraints.items():
        value = params[name]
        if not constraint.accepts(value):
            raise ConfigError(
                f"The {name!r} parameter of {owner} must be {constraint.describe()}. Got {value!r}."
            )
