"""Input, feature and prediction drift of a window, with LORD++ across windows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from hindsight.drift.engine import drift_report
from hindsight.errors import ConfigError
from hindsight.monitor.alerting import Finding
from hindsight.monitor.checks.base import WindowData, _unit
from hindsight.monitor.online_fdr import LordPlusPlus

__all__ = ["DriftCheck"]


@dataclass(frozen=True)
class DriftCheck:
    """Drift of every column (or ``columns``) of a window against its reference.

    Within a window, Benjamini-Hochberg across columns (the drift engine's, with its
    effect thresholds at large n). Across windows, ``repeated="lord"`` (the default)
    tests each window at its LORD++ level (:mod:`hindsight.monitor.online_fdr`) instead
    of ``alpha``, so a monitor that checks every hour for months keeps its false
    discovery rate at ``alpha`` rather than raising a false alarm every ``1 / alpha``
    windows; ``repeated="none"`` tests every window at ``alpha``. A column is flagged
    when it drifts and its adjusted p-value is within the window's level.
    """

    name: ClassVar[str] = "drift"
    columns: tuple[str, ...] | None = None
    alpha: float = 0.05
    repeated: str = "lord"

    def __post_init__(self) -> None:
        _unit("DriftCheck", "alpha", self.alpha)
        if self.columns is not None:
            object.__setattr__(self, "columns", tuple(self.columns))
        if self.repeated not in ("lord", "none"):
            raise ConfigError(
                f"DriftCheck: repeated must be 'lord' or 'none'. Got {self.repeated!r}."
            )

    def judge(
        self,
        window_start: float,
        current: WindowData,
        reference: WindowData,
        memory: dict[str, Any] | None = None,
    ) -> list[Finding]:
        report = drift_report(
            reference.profile, current.profile, columns=self.columns, alpha=self.alpha
        )
        level = self.alpha
        if self.repeated == "lord":
            mem = {} if memory is None else memory
            lord = (
                LordPlusPlus.from_dict(mem["lord"]) if "lord" in mem else LordPlusPlus(self.alpha)
            )
            level = lord.level()
            # The window's test: the smallest adjusted p-value among columns whose effect
            # is large enough to count (Simes' test of "no column drifted").
            candidates: list[float] = [
                0.0 if col.override or col.p_adjusted is None else col.p_adjusted
                for col in report.columns
                if col.override
                or (
                    col.p_adjusted is not None
                    and (col.effect_threshold is None or col.effect_size >= col.effect_threshold)
                )
            ]
            lord.test(min(candidates) if candidates else 1.0)
            mem["lord"] = lord.to_dict()
        out = []
        for col in report.columns:
            within = col.override or (col.p_adjusted is not None and col.p_adjusted <= level)
            flagged = bool(col.drifted and within)
            d = col.to_dict()
            d.pop("plot", None)
            out.append(
                Finding(
                    monitor=self.name,
                    window_start=window_start,
                    key=col.column,
                    value=col.effect_size,
                    flagged=flagged,
                    detail=(
                        f"{col.column}: {col.test} {col.effect_name} {col.effect_size:.3g}"
                        + (
                            f", adjusted p {col.p_adjusted:.3g}"
                            if col.p_adjusted is not None
                            else ""
                        )
                        + f" (window level {level:.3g})"
                        + (" — drifted" if flagged else "")
                        + f" against {reference.description or report.reference_source}"
                    ),
                    evidence={**d, "window_level": level, "plot": col.plot},
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "columns": self.columns,
            "alpha": self.alpha,
            "repeated": self.repeated,
        }
