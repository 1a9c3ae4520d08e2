"""Decision patterns: each action's rate per segment against the segment's reference."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hindsight.errors import ConfigError
from hindsight.monitor.alerting import Finding
from hindsight.monitor.checks.base import WindowData, _unit
from hindsight.monitor.signals import bh_adjust
from hindsight.serving.rollout.stats import compare_rates

__all__ = ["DecisionCheck"]


@dataclass(frozen=True)
class DecisionCheck:
    """Each action's rate per segment of ``segment`` against that segment's reference.

    Every (segment, action) rate is compared with the two-proportion test (Fisher's exact
    test for small cells); a comparison is ``shifted`` when its Benjamini-Hochberg
    adjusted p-value across all of the window's comparisons is below ``alpha`` and the
    rate moved by more than ``min_effect`` either way. ``actions`` limits the actions
    watched (default: all).
    """

    name: ClassVar[str] = "decisions"
    segment: str = ""
    actions: tuple[str, ...] | None = None
    alpha: float = 0.05
    min_effect: float = 0.005
    min_samples: int = 30

    def __post_init__(self) -> None:
        if not isinstance(self.segment, str) or not self.segment:
            raise ConfigError(
                "DecisionCheck needs segment=, a column the monitor counts actions by "
                "(Monitor(segments=[...]))."
            )
        _unit("DecisionCheck", "alpha", self.alpha)
        if self.actions is not None:
            object.__setattr__(self, "actions", tuple(str(a) for a in self.actions))

    def judge(
        self,
        window_start: float,
        current: WindowData,
        reference: WindowData,
        memory: dict[str, Any] | None = None,
    ) -> list[Finding]:
        cur = current.counts.get(self.segment)
        if cur is None:
            raise ConfigError(
                f"DecisionCheck: the window has no counts by {self.segment!r}; add it to the "
                "monitor's segments."
            )
        ref = reference.counts.get(self.segment, {})
        rows = []
        for seg in sorted(cur):
            c_acts, r_acts = cur[seg], ref.get(seg, {})
            n_c, n_r = sum(c_acts.values()), sum(r_acts.values())
            actions = self.actions or tuple(sorted(set(c_acts) | set(r_acts)))
            for act in actions:
                x_c, x_r = int(c_acts.get(act, 0)), int(r_acts.get(act, 0))
                j = compare_rates(
                    # Only its p-value and interval are used: BH decides below.
                    x_r,
                    n_r,
                    x_c,
                    n_c,
                    alpha=self.alpha,
                    min_effect=self.min_effect,
                    name=f"{act} rate",
                    min_samples=self.min_samples,
                )
                rows.append((seg, act, x_c, n_c, x_r, n_r, j))
        p = np.array([np.nan if r[6].p_value is None else r[6].p_value for r in rows])
        q = bh_adjust(p) if len(rows) else p
        out = []
        for (seg, act, x_c, n_c, x_r, n_r, j), qv in zip(rows, q.tolist(), strict=True):
            rate_c = x_c / n_c if n_c else None
            rate_r = x_r / n_r if n_r else None
            moved = None if rate_c is None or rate_r is None else rate_c - rate_r
            shifted = (
                not math.isnan(qv)
                and qv < self.alpha
                and moved is not None
                and abs(moved) > self.min_effect
            )
            if rate_c is None:
                detail = f"no {seg!r} rows in the window"
            elif rate_r is None:
                detail = f"{act} rate for segment {seg!r} {rate_c:.2%}: no reference rows"
            else:
                detail = (
                    f"{act} rate for segment {seg!r} {rate_r:.2%} -> {rate_c:.2%} "
                    f"({x_c}/{n_c} vs {x_r}/{n_r}"
                    + ("" if math.isnan(qv) else f", adjusted p {qv:.3g}")
                    + ")"
                    + (" — shifted" if shifted else "")
                )
            out.append(
                Finding(
                    monitor=self.name,
                    window_start=window_start,
                    key=f"{self.segment}={seg} / {act}",
                    value=rate_c,
                    flagged=bool(shifted),
                    detail=detail,
                    evidence={
                        "segment": seg,
                        "action": act,
                        "events": x_c,
                        "n": n_c,
                        "reference_events": x_r,
                        "reference_n": n_r,
                        "p_value": j.p_value,
                        "p_adjusted": None if math.isnan(qv) else qv,
                        "difference_ci": j.effect_ci,
                    },
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "segment": self.segment,
            "actions": self.actions,
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "min_samples": self.min_samples,
        }
