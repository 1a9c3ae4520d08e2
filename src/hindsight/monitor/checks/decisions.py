"""Decision patterns: each action's rate per segment against the segment's reference."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hindsight.data.columns import CategoricalColumnProfile
from hindsight.errors import ConfigError
from hindsight.monitor.alerting import Finding
from hindsight.monitor.checks.base import WindowData, _unit
from hindsight.monitor.decisions import RateWatch
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
    watched (default: all). ``segment="*"`` (the default) watches the actions of all
    traffic, read off the window's profile, without a segment column. ``sequential="cusum"`` (or ``"page_hinkley"``) also runs that
    streaming detector over each (segment, action) rate's last ``history`` windows
    (kept in the check's memory; ``sequential_params`` go to the detector, CUSUM's
    ``warmup`` defaults to 24 windows here): a slow creep that no single window shows
    is flagged in the window where the detector fires.
    """

    name: ClassVar[str] = "decisions"
    segment: str = "*"
    actions: tuple[str, ...] | None = None
    alpha: float = 0.05
    min_effect: float = 0.005
    min_samples: int = 30
    sequential: str | None = None
    sequential_params: Mapping[str, Any] | None = None
    history: int = 500

    def __post_init__(self) -> None:
        if self.sequential is not None:
            params = dict(self.sequential_params or {})
            if self.sequential == "cusum":
                params.setdefault("warmup", 24)
            object.__setattr__(self, "sequential_params", params)
            RateWatch("x", self.sequential, **params)  # checks the detector and parameters
        if self.history < 3:
            raise ConfigError(f"DecisionCheck: history must be >= 3 windows. Got {self.history!r}.")
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
        cur = self._table(current) if self.segment == "*" else current.counts.get(self.segment)
        if cur is None:
            raise ConfigError(
                f"DecisionCheck: the window has no counts by {self.segment!r}; add it to the "
                "monitor's segments."
            )
        ref: Mapping[str, Mapping[str, int]]
        if self.segment == "*":
            ref = self._table(reference) or {}
        else:
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
        creeping = self._sequential(rows, memory)
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
            alarm = creeping.get((seg, act))
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
            if alarm is not None:
                detail += f"; {self.sequential} fired on the rate over the last windows"
            out.append(
                Finding(
                    monitor=self.name,
                    window_start=window_start,
                    key=f"all / {act}" if self.segment == "*" else f"{self.segment}={seg} / {act}",
                    value=rate_c,
                    flagged=bool(shifted or alarm is not None),
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
                        "sequential": None if alarm is None else alarm.to_dict(),
                    },
                )
            )
        return out

    @staticmethod
    def _table(data: WindowData) -> dict[str, dict[str, int]] | None:
        """All of a window's actions as one segment ``"*"``, from its profile's counts."""
        col = data.profile.columns.get("prediction")
        if col is None:
            return None
        if not isinstance(col, CategoricalColumnProfile):
            raise ConfigError(
                "DecisionCheck: the predictions are numbers, not actions; watch them with "
                "the drift check instead, or log the decisions as labels."
            )
        return {"*": {str(k): int(v) for k, v in col.frequencies().items()}}

    def _sequential(
        self, rows: list[Any], memory: dict[str, Any] | None
    ) -> dict[tuple[str, str], Any]:
        """Feed each rate's history to the streaming detector; the ones firing now."""
        if self.sequential is None:
            return {}
        mem = {} if memory is None else memory
        series: dict[str, list[float]] = mem.setdefault("rates", {})
        out = {}
        for seg, act, x_c, n_c, *_ in rows:
            if n_c < self.min_samples:
                continue
            key = f"{seg}\x1f{act}"
            values = [*series.get(key, []), x_c / n_c][-self.history :]
            series[key] = values
            watch = RateWatch(act, self.sequential, **dict(self.sequential_params or {}))
            alarm = watch.watch_rates(values, segment=seg)
            if alarm.fired and alarm.windows[-1] == len(values) - 1:
                out[(seg, act)] = alarm
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "sequential": self.sequential,
            "sequential_params": None
            if self.sequential_params is None
            else dict(self.sequential_params),
            "history": self.history,
            "segment": self.segment,
            "actions": self.actions,
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "min_samples": self.min_samples,
        }
