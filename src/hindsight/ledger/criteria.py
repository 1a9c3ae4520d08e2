"""Success criteria: ``{"ctr": ">= 0.60", "latency_p99_ms": "<= 50"}`` and their verdicts.

An experiment's outcome is judged from them: every criterion met is a success,
some met is partial, none met is a failure. A criterion on a metric that was
never logged counts as not met, with verdict ``missing``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hindsight.errors import InvalidCriteria

__all__ = ["Criterion", "Verdict", "format_value", "judge", "outcome_of", "parse_criteria"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_RE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Criterion:
    """One metric compared with a threshold."""

    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"

    def check(self, value: float) -> bool:
        """Whether a value meets the criterion (NaN never does)."""
        return not math.isnan(value) and _OPS[self.op](value, self.threshold)


@dataclass(frozen=True)
class Verdict:
    """A criterion's verdict: met, missed or missing (never logged)."""

    criterion: Criterion
    value: float | None
    verdict: str

    @property
    def met(self) -> bool:
        return self.verdict == "met"

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.criterion.metric,
            "op": self.criterion.op,
            "threshold": self.criterion.threshold,
            "value": self.value,
            "verdict": self.verdict,
        }


def parse_criteria(criteria: Mapping[str, Any] | None) -> list[Criterion]:
    """Parse ``{metric: ">= 0.6"}``; a bare number means ``>=``."""
    if criteria is None:
        return []
    if not isinstance(criteria, Mapping):
        raise InvalidCriteria(
            f"criteria must be a mapping like {{'ctr': '>= 0.60'}}. Got {type(criteria).__name__}."
        )
    out = []
    for metric, spec in criteria.items():
        if not isinstance(metric, str) or not metric:
            raise InvalidCriteria(f"Criterion names must be metric names. Got {metric!r}.")
        if isinstance(spec, bool) or not isinstance(spec, (str, int, float)):
            raise InvalidCriteria(
                f"Criterion {metric!r} must be a string like '>= 0.60' or a number. Got {spec!r}."
            )
        if isinstance(spec, (int, float)):
            out.append(Criterion(metric, ">=", float(spec)))
            continue
        m = _RE.match(spec)
        if m is None:
            raise InvalidCriteria(
                f"Cannot read criterion {metric!r}: {spec!r}. Write an operator and a "
                "number, e.g. '>= 0.60', '<= 50', '> 3', '== 1'."
            )
        out.append(Criterion(metric, m.group(1), float(m.group(2))))
    return out


def judge(criteria: list[Criterion], values: Mapping[str, float]) -> list[Verdict]:
    """Each criterion's verdict against the final metric values."""
    verdicts = []
    for c in criteria:
        raw = values.get(c.metric)
        if raw is None:
            verdicts.append(Verdict(c, None, "missing"))
            continue
        value = float(raw)
        verdicts.append(Verdict(c, value, "met" if c.check(value) else "missed"))
    return verdicts


def outcome_of(verdicts: list[Verdict]) -> str | None:
    """success (all met), partial (some), failure (none); None without criteria."""
    if not verdicts:
        return None
    met = sum(v.met for v in verdicts)
    if met == len(verdicts):
        return "success"
    return "partial" if met else "failure"


def format_value(value: object, digits: int = 6) -> str:
    """A stored metric value for people: numbers to ``digits`` significant digits.

    Non-finite values are stored as the strings ``"nan"``/``"inf"`` (JSON has no
    NaN), so anything that is not a number is shown as it is.
    """
    if value is None:
        return "—"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.{digits}g}"
    return str(value)
