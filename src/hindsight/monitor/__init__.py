"""Production monitors over the prediction log: windows, checks, passes, alerts.

:class:`Monitor` keeps one mergeable profile per time window in the store and compares a
window with a calendar-aware reference; the modules hold the monitors' statistics
(:mod:`.performance`, :mod:`.signals`, :mod:`.decisions`, :mod:`.feedback`), windowing and
references (:mod:`.windows`) and alert rules with incidents (:mod:`.alerting`).
:mod:`.checks` judge stored windows from their aggregates, :func:`run_monitor` makes one
scheduled pass (state in the store), and :func:`load_plan` reads a ``monitor.yaml``.
"""

from __future__ import annotations

from hindsight.monitor.alerting import AlertRule, Finding, RuleEngine, findings_from
from hindsight.monitor.config import load_plan, plan_from_dict
from hindsight.monitor.core import Monitor, WindowDrift
from hindsight.monitor.runner import MonitorPlan, RunResult, run_monitor, watch_monitor
from hindsight.monitor.windows import (
    EventReference,
    FixedReference,
    SeasonalReference,
    TrailingReference,
    WindowSpec,
)

__all__ = [
    "AlertRule",
    "EventReference",
    "Finding",
    "FixedReference",
    "Monitor",
    "MonitorPlan",
    "RuleEngine",
    "RunResult",
    "SeasonalReference",
    "TrailingReference",
    "WindowDrift",
    "WindowSpec",
    "findings_from",
    "load_plan",
    "plan_from_dict",
    "run_monitor",
    "watch_monitor",
]
