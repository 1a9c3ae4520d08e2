"""What every check shares: the window data it reads and the protocol it follows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from hindsight.data.columns import NumericColumnProfile
from hindsight.data.profile import DatasetProfile
from hindsight.errors import ConfigError
from hindsight.monitor.alerting import Finding

__all__ = ["Check", "WindowData"]


@dataclass(frozen=True)
class WindowData:
    """What a check reads of a window (or of a merged reference): profile and counts."""

    profile: DatasetProfile
    counts: Mapping[str, Mapping[str, Mapping[str, int]]]
    description: str = ""


class Check(Protocol):
    """What a check is: a stable name, a verdict per window, a serialisable form."""

    name: ClassVar[str]

    def judge(
        self,
        window_start: float,
        current: WindowData,
        reference: WindowData,
        memory: dict[str, Any] | None = None,
    ) -> list[Finding]: ...  # pragma: no cover - a protocol

    def to_dict(self) -> dict[str, Any]: ...  # pragma: no cover - a protocol


def _column(prof: DatasetProfile, name: str) -> Any:
    return prof.columns.get(name)


def _unit(owner: str, name: str, value: float, *, open_low: bool = True) -> float:
    v = float(value)
    ok = (0.0 < v < 1.0) if open_low else (0.0 <= v < 1.0)
    if not ok:
        raise ConfigError(f"The '{name}' parameter of {owner} must be in (0, 1). Got {value!r}.")
    return v


def _numeric(prof: DatasetProfile, column: str, owner: str) -> NumericColumnProfile | None:
    col = _column(prof, column)
    if col is None:
        return None
    if not isinstance(col, NumericColumnProfile):
        raise ConfigError(
            f"{owner}: column {column!r} is {col.kind}, not numeric; point column= at the "
            "confidence scores."
        )
    return col
