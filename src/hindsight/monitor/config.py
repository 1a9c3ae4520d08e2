"""``monitor.yaml``: a scheduled monitor described in a file.

An example (``examples/monitor/monitor.yaml`` has a whole one)::

    name: fraud
    window: 1h
    segments: [customer]
    source: {kind: parquet, path: "logs/*.parquet", timestamps: ts, predictions: decision}
    reference: {rule: seasonal, period: 7d, weeks: 4}
    checks: [{check: drift}, {check: decisions, segment: customer}]
    rules: [{name: block-rate, check: decisions, severity: critical, for_windows: 2}]
    alerts: ["slack+https://hooks.slack.com/services/..."]

The file's keys (paths are relative to the file's folder):

``name``; ``window`` (``"1h"``); ``segments`` (columns to count actions by); ``source``
(``{kind: parquet, path: "logs/*.parquet", timestamps: ts, predictions: decision,
confidence: score}`` or ``{kind: prediction_log, service: loans}``; none for monitors
fed by ``Monitor.log`` in Python); ``reference`` (``{rule: trailing, n_windows: 24}``,
``{rule: seasonal, period: 7d, weeks: 4}``, ``{rule: fixed, start: ..., end: ...}``,
``{rule: event, events: {...}, current: ..., past: ...}``, or ``{profile: train.hsprof}``
/ ``{stored_profile: NAME}`` for a fixed profile such as the training data's);
``settle`` (how long after a window ends before it is judged, ``"0s"``); ``checks``
(each ``{check: drift|confidence|health|decisions|rates, ...options}``); ``rules`` (each
``{name, check, severity, for_windows, cooldown, key, min_value, max_value}``);
``alerts`` (channel URLs, see :func:`hindsight.alerts.channel_from_url`); ``project``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hindsight.data.profile import DatasetProfile
from hindsight.errors import ConfigError
from hindsight.ledger.core import Ledger, get_ledger
from hindsight.monitor.alerting import AlertRule
from hindsight.monitor.checks import check_from_dict
from hindsight.monitor.core import Monitor
from hindsight.monitor.runner import MonitorPlan
from hindsight.monitor.sources import source_from_dict
from hindsight.monitor.windows import (
    EventReference,
    FixedReference,
    ReferenceRule,
    SeasonalReference,
    TrailingReference,
    parse_duration,
)

__all__ = ["load_plan", "plan_from_dict"]

_TOP = {
    "name", "window", "segments", "source", "reference", "settle", "checks", "rules",
    "alerts", "project",
}  # fmt: skip
_RULES: dict[str, Any] = {
    "trailing": TrailingReference,
    "seasonal": SeasonalReference,
    "fixed": FixedReference,
    "event": EventReference,
}


def load_plan(path: str | os.PathLike[str], *, ledger: Ledger | None = None) -> MonitorPlan:
    """The monitor a ``monitor.yaml`` describes."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"No monitor file at {str(p)!r}. Write a monitor.yaml (see the README).")
    try:
        spec = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}") from exc
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{p} must hold a mapping with 'name', 'reference' and 'checks'.")
    return plan_from_dict(spec, base=p.parent, ledger=ledger, where=str(p))


def _reference(spec: Any, base: Path, ledger: Ledger, where: str) -> ReferenceRule | DatasetProfile:
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"{where}: 'reference' must be a mapping, e.g. {{rule: trailing, n_windows: 24}}."
        )
    if "profile" in spec:
        return DatasetProfile.load(base / str(spec["profile"]))
    if "stored_profile" in spec:
        project = ledger.settings.project
        row = ledger.store.load_profile(project, str(spec["stored_profile"]))
        if row is None:
            raise ConfigError(
                f"{where}: no stored profile {spec['stored_profile']!r} in project {project!r}."
            )
        return DatasetProfile.from_bytes(bytes(row["data"]))
    rule = spec.get("rule")
    cls = _RULES.get(str(rule))
    if cls is None:
        raise ConfigError(
            f"{where}: reference rule {rule!r} is unknown; use one of {', '.join(_RULES)}, "
            "or profile: / stored_profile:."
        )
    options = {k: v for k, v in spec.items() if k != "rule"}
    if cls is EventReference and isinstance(options.get("events"), Mapping):
        options["events"] = {k: tuple(v) for k, v in options["events"].items()}
    if cls is EventReference and options.get("otherwise") is not None:
        options["otherwise"] = _reference(options["otherwise"], base, ledger, f"{where}: otherwise")
    try:
        made: ReferenceRule = cls(**options)
    except TypeError as exc:
        raise ConfigError(f"{where}: reference: {exc}") from None
    return made


def _rule(spec: Any, where: str) -> AlertRule:
    if not isinstance(spec, Mapping) or "name" not in spec or "check" not in spec:
        raise ConfigError(f"{where} must be a mapping with 'name' and 'check'. Got {spec!r}.")
    options = dict(spec)
    options["monitor"] = options.pop("check")
    if "cooldown" in options:
        options["cooldown_s"] = parse_duration(options.pop("cooldown"), allow_zero=True)
    try:
        return AlertRule(**options)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def plan_from_dict(
    spec: Mapping[str, Any],
    *,
    base: str | os.PathLike[str] = ".",
    ledger: Ledger | None = None,
    where: str = "the monitor spec",
) -> MonitorPlan:
    """Build a :class:`MonitorPlan` from a parsed spec."""
    from hindsight.alerts import channel_from_url

    unknown = sorted(set(spec) - _TOP)
    if unknown:
        raise ConfigError(
            f"{where}: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(_TOP))}."
        )
    for key in ("name", "reference", "checks"):
        if key not in spec:
            raise ConfigError(f"{where}: '{key}' is missing.")
    led = ledger if ledger is not None else get_ledger()
    if spec.get("project") not in (None, led.settings.project):
        settings = dataclasses.replace(led.settings, project=str(spec["project"]))
        led = Ledger(settings, store=led.store)
    monitor = Monitor(
        str(spec["name"]),
        ledger=led,
        window=spec.get("window", "1h"),
        segments=list(spec.get("segments") or []),
    )
    checks_spec = spec["checks"]
    if not isinstance(checks_spec, list) or not checks_spec:
        raise ConfigError(f"{where}: 'checks' must be a non-empty list.")
    checks = tuple(check_from_dict(c, f"{where}: checks[{i}]") for i, c in enumerate(checks_spec))
    rules = tuple(_rule(r, f"{where}: rules[{i}]") for i, r in enumerate(spec.get("rules") or []))
    alerts = spec.get("alerts") or []
    if isinstance(alerts, str) or not isinstance(alerts, list):
        raise ConfigError(f"{where}: 'alerts' must be a list of channel URLs.")
    return MonitorPlan(
        monitor=monitor,
        reference=_reference(spec["reference"], Path(base), led, where),
        checks=checks,
        rules=rules,
        channels=tuple(channel_from_url(str(u)) for u in alerts),
        source=source_from_dict(spec.get("source"), f"{where}: source"),
        settle_s=float(parse_duration(spec.get("settle", 0), allow_zero=True)),
    )
