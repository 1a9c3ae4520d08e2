"""Production monitors over the prediction log (issue 6, being built).

:class:`Monitor` keeps one mergeable profile per time window in the store and compares a
window with a calendar-aware reference; the modules hold the monitors' statistics
(:mod:`.performance`, :mod:`.signals`, :mod:`.decisions`, :mod:`.feedback`), windowing and
references (:mod:`.windows`) and alert rules with incidents (:mod:`.alerting`).
"""

from __future__ import annotations

from hindsight.monitor.alerting import AlertRule, Finding, RuleEngine, findings_from
from hindsight.monitor.core import Monitor, WindowDrift
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
    "RuleEngine",
    "SeasonalReference",
    "TrailingReference",
    "WindowDrift",
    "WindowSpec",
    "findings_from",
]
