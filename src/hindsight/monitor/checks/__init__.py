"""Checks of one stored window against its reference, from window aggregates alone.

A scheduled monitor keeps no raw rows: each window is a mergeable profile plus count
tables (:mod:`hindsight.monitor.core`). Every check here reads only those, so it runs
on a window logged a month ago as well as on the last hour, and a reference merged from
many windows costs no more than one. Each check is a small frozen value with a stable
``name`` (what :class:`~hindsight.monitor.alerting.AlertRule` matches on) and
``judge(window_start, current, reference) -> list[Finding]``:

* :class:`DriftCheck` — input, feature and prediction drift: the drift engine on the two
  profiles (Benjamini-Hochberg across columns, effect thresholds at large n), one
  finding per column.
* :class:`ConfidenceCheck` — the mean confidence (Welch's t-test from the profiles'
  moments, as ``scipy.stats.ttest_ind_from_stats``) and the low-confidence share.
* :class:`HealthCheck` — silent failures of the predictions: NaN/missing bursts and
  constant or near-constant output.
* :class:`DecisionCheck` — each action's rate in each segment (approve, block, ...)
  against the same segment's reference rate, Benjamini-Hochberg across them.
* :class:`RateCheck` — the share of true values of a boolean column, such as the
  serving log's ``fell_back`` or ``abstained``: rising fallback and abstention rates.
* :class:`PerformanceCheck` and :class:`EstimatedPerformanceCheck` — performance once
  labels arrive (accuracy, precision, recall, AUC, cost, label coverage) and before they
  do (CBPE), reconciled in the same finding.
* :class:`ExposureCheck` and :class:`HoldoutCheck` — feedback loops: recommended items'
  exposure concentrating over time, and treated traffic falling behind a random holdout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hindsight.errors import ConfigError
from hindsight.monitor.checks.base import Check, WindowData
from hindsight.monitor.checks.decisions import DecisionCheck
from hindsight.monitor.checks.drift import DriftCheck
from hindsight.monitor.checks.feedback import ExposureCheck, HoldoutCheck
from hindsight.monitor.checks.outputs import ConfidenceCheck, HealthCheck, RateCheck
from hindsight.monitor.checks.performance import EstimatedPerformanceCheck, PerformanceCheck

__all__ = [
    "Check",
    "ConfidenceCheck",
    "DecisionCheck",
    "DriftCheck",
    "EstimatedPerformanceCheck",
    "ExposureCheck",
    "HealthCheck",
    "HoldoutCheck",
    "PerformanceCheck",
    "RateCheck",
    "WindowData",
    "check_from_dict",
]

_CHECKS: dict[str, Any] = {
    c.name: c
    for c in (
        DriftCheck,
        ConfidenceCheck,
        HealthCheck,
        DecisionCheck,
        RateCheck,
        ExposureCheck,
        HoldoutCheck,
        PerformanceCheck,
        EstimatedPerformanceCheck,
    )
}


def check_from_dict(spec: Mapping[str, Any], where: str = "check") -> Check:
    """A check from its ``to_dict()`` form (``{"check": "decisions", "segment": ...}``)."""
    if not isinstance(spec, Mapping) or "check" not in spec:
        raise ConfigError(
            f"{where} must be a mapping with 'check': one of {', '.join(_CHECKS)}. Got {spec!r}."
        )
    kind = spec["check"]
    cls = _CHECKS.get(kind)
    if cls is None:
        raise ConfigError(f"{where}: unknown check {kind!r}; use one of {', '.join(_CHECKS)}.")
    options = {k: v for k, v in spec.items() if k != "check"}
    fields = set(cls.__dataclass_fields__) - {"name"}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ConfigError(
            f"{where}: {kind} takes {', '.join(sorted(fields))}; unknown: {', '.join(unknown)}."
        )
    for key in ("columns", "actions"):
        if isinstance(options.get(key), Sequence) and not isinstance(options[key], str):
            options[key] = tuple(options[key])
    check: Check = cls(**options)
    return check
