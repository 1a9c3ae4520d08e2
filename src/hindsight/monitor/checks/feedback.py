"""Feedback loops: exposure concentration, and treated traffic against a holdout."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hindsight.data.columns import CategoricalColumnProfile
from hindsight.data.profile import DatasetProfile
from hindsight.errors import ConfigError
from hindsight.monitor.alerting import Finding
from hindsight.monitor.checks.base import WindowData, _column, _unit
from hindsight.monitor.feedback import gini, linear_trend
from hindsight.serving.rollout.stats import compare_rates

__all__ = ["ExposureCheck", "HoldoutCheck"]


@dataclass(frozen=True)
class ExposureCheck:
    """Exposure concentration of recommended items (feedback loops), window by window.

    The window's item counts come from its profile of ``column`` (one recommended item
    per row; exact for the 1,000 most frequent items, the rest pooled). Reported: the
    Gini coefficient of exposure over ``catalogue`` items (default: the items seen in
    the window and its reference), catalogue coverage and the top ``top`` items' share.
    ``flagged`` when the Gini rose by at least ``min_increase`` over the reference's
    and, across the last ``trend_windows`` windows judged (kept in the check's memory),
    the Gini climbs significantly (one-sided OLS slope test at ``alpha``).
    """

    name: ClassVar[str] = "exposure"
    column: str = "prediction"
    catalogue: int | None = None
    top: int = 10
    min_increase: float = 0.03
    trend_windows: int = 12
    alpha: float = 0.05

    def __post_init__(self) -> None:
        _unit("ExposureCheck", "alpha", self.alpha)
        if self.trend_windows < 3 or self.top < 1 or self.min_increase < 0:
            raise ConfigError(
                "ExposureCheck: trend_windows must be >= 3, top >= 1 and min_increase >= 0."
            )

    def _counts(self, prof: DatasetProfile) -> dict[str, int] | None:
        col = _column(prof, self.column)
        if col is None:
            return None
        if not isinstance(col, CategoricalColumnProfile):
            raise ConfigError(
                f"ExposureCheck: column {self.column!r} must hold item ids as categories "
                f"(strings); it is {col.kind}."
            )
        return col.frequencies()

    def _gini(self, counts: dict[str, int], items: list[str]) -> float:
        x = np.array([counts.get(i, 0) for i in items], dtype=np.float64)
        return float(gini(x))

    def judge(
        self,
        window_start: float,
        current: WindowData,
        reference: WindowData,
        memory: dict[str, Any] | None = None,
    ) -> list[Finding]:
        cur, ref = self._counts(current.profile), self._counts(reference.profile)
        if not cur or ref is None:
            return []
        items = sorted(set(cur) | set(ref))
        if self.catalogue is not None:
            items += [f"\0unseen{i}" for i in range(max(0, self.catalogue - len(items)))]
        g_cur, g_ref = self._gini(cur, items), self._gini(ref, items)
        n = sum(cur.values())
        top_share = sum(sorted(cur.values(), reverse=True)[: self.top]) / n if n else 0.0
        coverage = sum(1 for v in cur.values() if v > 0) / len(items)
        mem = {} if memory is None else memory
        history = [*mem.get("gini", []), [window_start, g_cur]][-self.trend_windows :]
        mem["gini"] = history
        trend = linear_trend(
            [h[0] for h in history],
            [h[1] for h in history],
            alternative="greater",
            alpha=self.alpha,
        )
        rose = g_cur - g_ref >= self.min_increase
        flagged = bool(rose and trend.flagged)
        detail = (
            f"exposure Gini {g_cur:.3f} vs {g_ref:.3f} in the reference; top {self.top} items "
            f"{top_share:.1%} of {n} recommendations, coverage {coverage:.1%}; trend over "
            f"{len(history)} windows "
            + ("rising" if trend.flagged else "not significant")
            + (" — concentrating" if flagged else "")
        )
        evidence = {
            "gini": g_cur,
            "reference_gini": g_ref,
            "top_share": top_share,
            "coverage": coverage,
            "items": len(items),
            "trend": trend.to_dict(),
        }
        return [Finding(self.name, window_start, self.column, g_cur, flagged, detail, evidence)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "column": self.column,
            "catalogue": self.catalogue,
            "top": self.top,
            "min_increase": self.min_increase,
            "trend_windows": self.trend_windows,
            "alpha": self.alpha,
        }


@dataclass(frozen=True)
class HoldoutCheck:
    """Quality of treated traffic against a random holdout slice in the same window.

    Reads the count table ``slice|outcome`` (``Monitor(crosstabs=[("slice",
    "clicked")])``): the share of true ``outcome`` values in the ``holdout`` slice and in
    every other slice of the same window, so both sides see the same day and the same
    users. ``flagged`` when treated traffic falls behind the holdout by more than
    ``min_effect`` (two-proportion test at ``alpha``); a recommender reinforcing its own
    choices shows as treated quality sliding below the holdout's.
    """

    name: ClassVar[str] = "holdout"
    slice_column: str = "slice"
    outcome: str = "clicked"
    holdout: str = "holdout"
    alpha: float = 0.05
    min_effect: float = 0.01
    min_samples: int = 50

    def __post_init__(self) -> None:
        _unit("HoldoutCheck", "alpha", self.alpha)

    def judge(
        self,
        window_start: float,
        current: WindowData,
        reference: WindowData,
        memory: dict[str, Any] | None = None,
    ) -> list[Finding]:
        key = f"{self.slice_column}|{self.outcome}"
        table = current.counts.get(key)
        if table is None:
            raise ConfigError(
                f"HoldoutCheck: the window has no counts {key!r}; add "
                f"crosstabs=[({self.slice_column!r}, {self.outcome!r})] to the monitor."
            )
        if self.holdout not in table:
            return []

        def share(row: Mapping[str, int]) -> tuple[int, int]:
            trues = sum(v for k, v in row.items() if str(k).lower() in ("true", "1", "1.0"))
            return trues, sum(row.values())

        x_h, n_h = share(table[self.holdout])
        out = []
        for arm in sorted(a for a in table if a != self.holdout):
            x_t, n_t = share(table[arm])
            j = compare_rates(
                x_h,
                n_h,
                x_t,
                n_t,
                alpha=self.alpha,
                min_effect=self.min_effect,
                higher_is_worse=False,
                name=f"{self.outcome} rate",
                min_samples=self.min_samples,
            )
            flagged = j.status == "worse"
            detail = f"{arm} vs {self.holdout}: {j.detail}" + (" — behind" if flagged else "")
            out.append(
                Finding(
                    self.name,
                    window_start,
                    f"{self.slice_column}={arm}",
                    x_t / n_t if n_t else None,
                    flagged,
                    detail,
                    j.to_dict(),
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "slice_column": self.slice_column,
            "outcome": self.outcome,
            "holdout": self.holdout,
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "min_samples": self.min_samples,
        }
