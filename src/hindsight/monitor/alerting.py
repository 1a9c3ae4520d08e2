"""Turn monitor findings into alerts and incidents, with memory across restarts.

A monitor (confidence, silent failures, rates, decisions, performance) yields one
result per window. :func:`findings_from` turns those results into :class:`Finding`
values; an :class:`AlertRule` says which findings matter and for how long; the
:class:`RuleEngine` remembers consecutive flagged windows per rule and key, sends
one alert per episode (respecting a cool-down) and, for severe rules, records a
ledger failure with a drafted post-mortem.

The engine's memory is a plain JSON-safe dict (:attr:`RuleEngine.state`): save it
after :meth:`RuleEngine.evaluate`, pass it back to a new engine after a restart,
and windows already seen are neither counted twice nor alerted on again.

>>> from hindsight.alerts import MemoryChannel
>>> ch = MemoryChannel()
>>> engine = RuleEngine([AlertRule("low confidence", "confidence", for_windows=2)],
...                     channels=[ch])
>>> f = [Finding("confidence", float(t), "top class", 0.7, True, "mean fell") for t in (0, 60)]
>>> [d.alert.title for d in engine.evaluate(f, now=100.0)]
['low confidence: top class']
>>> engine.evaluate(f, now=200.0)  # the same windows again: nothing new
[]
"""

from __future__ import annotations

import copy
import json
import logging
import math
import numbers
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hindsight._plain import plain
from hindsight.alerts import SEVERITIES, Alert, AlertChannel, Delivery, send
from hindsight.errors import ConfigError

if TYPE_CHECKING:
    from hindsight.ledger.core import Ledger

__all__ = ["AlertRule", "Decision", "Finding", "RuleEngine", "findings_from"]

logger = logging.getLogger("hindsight.monitor")

#: Version of the layout of :attr:`RuleEngine.state`.
STATE_VERSION = 1


# --------------------------------------------------------------------------- helpers


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real)


def _finite(owner: str, name: str, value: Any) -> float:
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be a finite number. Got {value!r}."
        )
    return float(value)


def _optional_value(owner: str, name: str, value: Any) -> float | None:
    if value is None:
        return None
    if not _is_number(value):
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be a number or None. Got {value!r}."
        )
    v = float(value)
    return v if math.isfinite(v) else None


def _name(owner: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be a non-empty str. Got {value!r}."
        )
    return value


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity)


# --------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class Finding:
    """What one monitor found about one thing (``key``) in one window.

    ``value`` is the measured number (``None`` where undefined; non-finite values
    become ``None``), ``flagged`` the monitor's own verdict, ``evidence`` the
    JSON-safe facts behind it (usually the result's ``to_dict()``).
    """

    monitor: str
    window_start: float
    key: str
    value: float | None
    flagged: bool
    detail: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        _name("Finding", "monitor", self.monitor)
        _name("Finding", "key", self.key)
        start = _finite("Finding", "window_start", self.window_start)
        value = _optional_value("Finding", "value", self.value)
        if not isinstance(self.flagged, bool):
            raise ConfigError(
                f"The 'flagged' parameter of Finding must be a bool. Got {self.flagged!r}."
            )
        if not isinstance(self.detail, str):
            raise ConfigError(
                "The 'detail' parameter of Finding must be a str. "
                f"Got {type(self.detail).__name__}."
            )
        if not isinstance(self.evidence, Mapping):
            raise ConfigError(
                "The 'evidence' parameter of Finding must be a mapping. "
                f"Got {type(self.evidence).__name__}."
            )
        object.__setattr__(self, "window_start", start)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "evidence", plain(self.evidence))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the finding."""
        return {
            "monitor": self.monitor,
            "window_start": self.window_start,
            "window": _iso(self.window_start),
            "key": self.key,
            "value": self.value,
            "flagged": self.flagged,
            "detail": self.detail,
            "evidence": copy.deepcopy(dict(self.evidence)),
        }


def _window_start_of(window_starts: Any, window: Any) -> float:
    if isinstance(window_starts, Mapping):
        if window not in window_starts:
            raise ConfigError(
                f"The 'window_starts' parameter of findings_from has no start for window "
                f"{window!r}."
            )
        return _finite("findings_from", "window_starts", window_starts[window])
    bounds = getattr(window_starts, "bounds", None)
    if callable(bounds):  # a WindowSpec
        return _finite("findings_from", "window_starts", bounds(window)[0])
    if callable(window_starts):
        return _finite("findings_from", "window_starts", window_starts(window))
    raise ConfigError(
        "The 'window_starts' parameter of findings_from must be a mapping of window id to "
        "epoch seconds, a WindowSpec or a function of the window id. "
        f"Got {type(window_starts).__name__}."
    )


def _detail_of(result: Any) -> str:
    for attr in ("detail", "reason"):
        text = getattr(result, attr, None)
        if isinstance(text, str) and text:
            return text
    reasons = getattr(result, "reasons", None)
    if isinstance(reasons, list | tuple):
        return "; ".join(str(r) for r in reasons)
    return ""


def findings_from(
    results: Iterable[Any],
    *,
    monitor: str,
    flag_attr: str,
    window_starts: Mapping[Any, float] | Callable[[Any], float] | Any,
    key_attr: str | Sequence[str] | None = None,
    value_attr: str | None = None,
    window_attr: str = "window",
) -> list[Finding]:
    """Findings from a monitor's per-window results (``ConfidenceWindow``, ``RateWindow`` ...).

    ``flag_attr`` names the verdict (``"shifted"``, ``"worse"``, ``"flagged"``);
    ``key_attr`` the attribute(s) that say what a result is about (several are
    joined with ``" / "``, ``None`` values skipped; without it the key is
    ``monitor``); ``value_attr`` the measured number. ``window_starts`` maps each
    result's window id to its start in epoch seconds: a mapping, a
    :class:`~hindsight.monitor.windows.WindowSpec` or a function. The detail is the
    result's ``detail``, ``reason`` or joined ``reasons``; the evidence its
    ``to_dict()``.
    """
    monitor = _name("findings_from", "monitor", monitor)
    flag_attr = _name("findings_from", "flag_attr", flag_attr)
    if key_attr is None:
        key_attrs: tuple[str, ...] = ()
    elif isinstance(key_attr, str):
        key_attrs = (_name("findings_from", "key_attr", key_attr),)
    elif isinstance(key_attr, Sequence) and key_attr:
        key_attrs = tuple(_name("findings_from", "key_attr", k) for k in key_attr)
    else:
        raise ConfigError(
            "The 'key_attr' parameter of findings_from must be an attribute name, a sequence "
            f"of them or None. Got {key_attr!r}."
        )
    out: list[Finding] = []
    for i, result in enumerate(results):
        for attr in (flag_attr, window_attr, *key_attrs, *([value_attr] if value_attr else [])):
            if not hasattr(result, attr):
                raise ConfigError(
                    f"findings_from: result {i} ({type(result).__name__}) has no attribute "
                    f"{attr!r}; check 'flag_attr', 'key_attr', 'value_attr' and 'window_attr'."
                )
        parts = [getattr(result, a) for a in key_attrs]
        key = " / ".join(str(p) for p in parts if p is not None) or monitor
        value = plain(getattr(result, value_attr)) if value_attr else None
        if value is not None and not _is_number(value):
            raise ConfigError(
                f"findings_from: the 'value_attr' {value_attr!r} of result {i} must be a number. "
                f"Got {value!r}."
            )
        to_dict = getattr(result, "to_dict", None)
        evidence = to_dict() if callable(to_dict) else {}
        out.append(
            Finding(
                monitor=monitor,
                window_start=_window_start_of(window_starts, getattr(result, window_attr)),
                key=key,
                value=value,
                flagged=bool(getattr(result, flag_attr)),
                detail=_detail_of(result),
                evidence=evidence,
            )
        )
    return out


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class AlertRule:
    """When findings of one monitor become an alert.

    A window breaches the rule when its finding is ``flagged`` or, where
    ``min_value``/``max_value`` are given, when its value falls below ``min_value``
    or rises above ``max_value`` (a missing value breaches nothing). The rule fires
    after ``for_windows`` consecutive breaching windows of one key, once per
    episode, and not within ``cooldown_s`` seconds of its last alert for that key.
    ``key`` limits the rule to one key; ``None`` watches every key of the monitor.
    """

    name: str
    monitor: str
    severity: str = "warning"
    for_windows: int = 1
    cooldown_s: float = 3600
    key: str | None = None
    min_value: float | None = None
    max_value: float | None = None

    def __post_init__(self) -> None:
        _name("AlertRule", "name", self.name)
        _name("AlertRule", "monitor", self.monitor)
        if self.severity not in SEVERITIES:
            raise ConfigError(
                f"The 'severity' parameter of AlertRule must be one of {', '.join(SEVERITIES)}. "
                f"Got {self.severity!r}."
            )
        if (
            isinstance(self.for_windows, bool)
            or not isinstance(self.for_windows, numbers.Integral)
            or self.for_windows < 1
        ):
            raise ConfigError(
                "The 'for_windows' parameter of AlertRule must be an int >= 1. "
                f"Got {self.for_windows!r}."
            )
        cooldown = _finite("AlertRule", "cooldown_s", self.cooldown_s)
        if cooldown < 0:
            raise ConfigError(
                "The 'cooldown_s' parameter of AlertRule must be a number of seconds >= 0. "
                f"Got {self.cooldown_s!r}."
            )
        if self.key is not None:
            _name("AlertRule", "key", self.key)
        lo = None if self.min_value is None else _finite("AlertRule", "min_value", self.min_value)
        hi = None if self.max_value is None else _finite("AlertRule", "max_value", self.max_value)
        if lo is not None and hi is not None and lo > hi:
            raise ConfigError(
                f"The 'min_value' parameter of AlertRule ({lo}) must not exceed 'max_value' ({hi})."
            )
        object.__setattr__(self, "for_windows", int(self.for_windows))
        object.__setattr__(self, "cooldown_s", cooldown)
        object.__setattr__(self, "min_value", lo)
        object.__setattr__(self, "max_value", hi)

    @property
    def uses_threshold(self) -> bool:
        return self.min_value is not None or self.max_value is not None

    def matches(self, finding: Finding) -> bool:
        """Whether ``finding`` is one this rule watches."""
        return finding.monitor == self.monitor and (self.key is None or finding.key == self.key)

    def breached(self, finding: Finding) -> bool:
        """Whether one window's finding counts towards firing."""
        if not self.uses_threshold:
            return finding.flagged
        if finding.value is None:
            return False
        low = self.min_value is not None and finding.value < self.min_value
        high = self.max_value is not None and finding.value > self.max_value
        return low or high

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "monitor": self.monitor,
            "severity": self.severity,
            "for_windows": self.for_windows,
            "cooldown_s": self.cooldown_s,
            "key": self.key,
            "min_value": self.min_value,
            "max_value": self.max_value,
        }


# --------------------------------------------------------------------------- engine


@dataclass(frozen=True)
class Decision:
    """One alert the engine raised, where it went, and the incident it opened."""

    rule: str
    key: str
    window_start: float
    consecutive: int
    alert: Alert
    deliveries: tuple[Delivery, ...] = ()
    failure_id: str | None = None
    postmortem_id: str | None = None
    incident_error: str | None = None

    @property
    def delivered(self) -> bool:
        """Whether at least one channel took the alert."""
        return any(d.ok for d in self.deliveries)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "key": self.key,
            "window_start": self.window_start,
            "consecutive": self.consecutive,
            "alert": self.alert.to_dict(),
            "deliveries": [d.to_dict() for d in self.deliveries],
            "failure_id": self.failure_id,
            "postmortem_id": self.postmortem_id,
            "incident_error": self.incident_error,
        }


def _check_state(state: Any) -> dict[str, Any]:
    if state is None:
        return {"version": STATE_VERSION, "rules": {}}
    if not isinstance(state, Mapping):
        raise ConfigError(
            "The 'state' parameter of RuleEngine must be a dict saved from RuleEngine.state. "
            f"Got {type(state).__name__}."
        )
    try:
        copied = json.loads(json.dumps(state, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"The 'state' parameter of RuleEngine is not JSON-safe: {exc}.") from exc
    if copied.get("version") != STATE_VERSION or not isinstance(copied.get("rules"), dict):
        raise ConfigError(
            "The 'state' parameter of RuleEngine must be a dict saved from RuleEngine.state "
            f"(version {STATE_VERSION} with a 'rules' mapping)."
        )
    for rule, keys in copied["rules"].items():
        if not isinstance(keys, dict) or not all(isinstance(v, dict) for v in keys.values()):
            raise ConfigError(
                f"The 'state' parameter of RuleEngine is damaged: rule {rule!r} is not a "
                "mapping of key to its memory."
            )
    return dict(copied)


def _new_entry() -> dict[str, Any]:
    return {
        "consecutive": 0,
        "active": False,
        "last_window": None,
        "last_alert_at": None,
        "windows": [],
    }


class RuleEngine:
    """Evaluate findings against rules; alert once per episode; open incidents.

    ``channels`` receive every alert through :func:`hindsight.alerts.send` (a
    failing channel stops neither the others nor the engine). With a ``ledger``,
    an alert of severity ``open_incident_at`` or above also records a failure
    (``source="monitor"``) holding the windows involved, and drafts a post-mortem.
    ``state`` is a dict saved from :attr:`state`, to carry memory over a restart.
    """

    def __init__(
        self,
        rules: Iterable[AlertRule],
        *,
        channels: Iterable[AlertChannel] = (),
        ledger: Ledger | None = None,
        project: str | None = None,
        open_incident_at: str = "critical",
        state: Mapping[str, Any] | None = None,
    ) -> None:
        self.rules: tuple[AlertRule, ...] = tuple(rules)
        names: set[str] = set()
        for rule in self.rules:
            if not isinstance(rule, AlertRule):
                raise ConfigError(
                    "The 'rules' parameter of RuleEngine must hold AlertRule values. "
                    f"Got {type(rule).__name__}."
                )
            if rule.name in names:
                raise ConfigError(
                    f"The 'rules' parameter of RuleEngine names rule {rule.name!r} twice; "
                    "rule names must be unique."
                )
            names.add(rule.name)
        self.channels: tuple[AlertChannel, ...] = tuple(channels)
        for ch in self.channels:
            if not callable(getattr(ch, "send", None)):
                raise ConfigError(
                    "The 'channels' parameter of RuleEngine must hold alert channels (objects "
                    f"with send(alert)). Got {type(ch).__name__}."
                )
        if open_incident_at not in SEVERITIES:
            raise ConfigError(
                "The 'open_incident_at' parameter of RuleEngine must be one of "
                f"{', '.join(SEVERITIES)}. Got {open_incident_at!r}."
            )
        if project is not None:
            _name("RuleEngine", "project", project)
        self.ledger = ledger
        self.project = project
        self.open_incident_at = open_incident_at
        self._state = _check_state(state)

    def __repr__(self) -> str:
        return (
            f"RuleEngine(rules={[r.name for r in self.rules]!r}, "
            f"channels={len(self.channels)}, open_incident_at={self.open_incident_at!r})"
        )

    @property
    def state(self) -> dict[str, Any]:
        """A JSON-safe copy of the engine's memory; pass it back as ``state=`` after a restart."""
        return copy.deepcopy(self._state)

    def memory(self, rule: str, key: str) -> dict[str, Any]:
        """What the engine remembers about one rule and key (consecutive count and so on)."""
        return copy.deepcopy(self._state["rules"].get(rule, {}).get(key, _new_entry()))

    def evaluate(self, findings: Iterable[Finding], now: float | None = None) -> list[Decision]:
        """Take in new findings (in any order); return the alerts raised.

        Findings for windows at or before the last window seen for a rule and key are
        ignored, so the same findings evaluated twice (say after a restart) count once.
        ``now`` (epoch seconds, default the clock) stamps alerts and measures cool-downs.
        """
        at = time.time() if now is None else _finite("RuleEngine.evaluate", "now", now)
        items = list(findings)
        for f in items:
            if not isinstance(f, Finding):
                raise ConfigError(
                    "The 'findings' parameter of RuleEngine.evaluate must hold Finding values. "
                    f"Got {type(f).__name__}."
                )
        items.sort(key=lambda f: f.window_start)
        decisions: list[Decision] = []
        for rule in self.rules:
            memory = self._state["rules"].setdefault(rule.name, {})
            for f in items:
                if not rule.matches(f):
                    continue
                entry = memory.setdefault(f.key, _new_entry())
                if entry["last_window"] is not None and f.window_start <= entry["last_window"]:
                    continue
                decision = self._step(rule, f, entry, at)
                if decision is not None:
                    decisions.append(decision)
        return decisions

    # -- internals -------------------------------------------------------------------

    def _step(
        self, rule: AlertRule, finding: Finding, entry: dict[str, Any], at: float
    ) -> Decision | None:
        entry["last_window"] = finding.window_start
        if not rule.breached(finding):
            entry.update(consecutive=0, active=False, windows=[])
            return None
        entry["consecutive"] += 1
        window = {
            "window_start": finding.window_start,
            "window": _iso(finding.window_start),
            "value": finding.value,
            "flagged": finding.flagged,
            "detail": finding.detail,
            "evidence": copy.deepcopy(dict(finding.evidence)),
        }
        entry["windows"] = [*entry["windows"], window][-rule.for_windows :]
        if entry["active"] or entry["consecutive"] < rule.for_windows:
            return None
        last = entry["last_alert_at"]
        if last is not None and at - last < rule.cooldown_s:
            # Still breaching; it fires on a later window once the cool-down has passed.
            return None
        entry.update(active=True, last_alert_at=at)
        alert = self._alert(rule, finding, entry, at)
        deliveries = tuple(send(alert, self.channels))
        for d in deliveries:
            if not d.ok:
                logger.warning("alert %r not delivered to %r: %s", alert.title, d.channel, d.error)
        failure_id = postmortem_id = error = None
        if self.ledger is not None and _rank(rule.severity) >= _rank(self.open_incident_at):
            failure_id, postmortem_id, error = self._incident(rule, finding, entry, alert)
        return Decision(
            rule=rule.name,
            key=finding.key,
            window_start=finding.window_start,
            consecutive=int(entry["consecutive"]),
            alert=alert,
            deliveries=deliveries,
            failure_id=failure_id,
            postmortem_id=postmortem_id,
            incident_error=error,
        )

    def _alert(self, rule: AlertRule, finding: Finding, entry: dict[str, Any], at: float) -> Alert:
        n = int(entry["consecutive"])
        first = entry["windows"][0]["window"] if entry["windows"] else _iso(finding.window_start)
        if rule.uses_threshold:
            bounds = [
                f"min {rule.min_value:g}" if rule.min_value is not None else "",
                f"max {rule.max_value:g}" if rule.max_value is not None else "",
            ]
            why = f"value {finding.value:g} outside {', '.join(b for b in bounds if b)}"
        else:
            why = f"flagged by the {rule.monitor} monitor"
        text = f"{why} in {n} consecutive window{'s' if n != 1 else ''} since {first}."
        if finding.detail:
            text += f"\n{finding.detail}"
        fields = {
            "rule": rule.name,
            "monitor": rule.monitor,
            "key": finding.key,
            "window_start": _iso(finding.window_start),
            "value": "n/a" if finding.value is None else f"{finding.value:g}",
            "consecutive": str(n),
        }
        return Alert(
            title=f"{rule.name}: {finding.key}",
            text=text,
            severity=rule.severity,
            source="monitor",
            fields=fields,
            dedup_key=f"{rule.name}:{finding.key}",
            created_at=at,
        )

    def _incident(
        self, rule: AlertRule, finding: Finding, entry: dict[str, Any], alert: Alert
    ) -> tuple[str | None, str | None, str | None]:
        # Imported here: the ledger pulls in the store, which plain alerting does not need.
        from hindsight.diagnose import Evidence
        from hindsight.ledger.failures import record_failure
        from hindsight.ledger.postmortem import draft_postmortem

        assert self.ledger is not None
        extra = {
            "monitor": rule.monitor,
            "rule": rule.to_dict(),
            "key": finding.key,
            "alert": alert.to_dict(),
            "windows": copy.deepcopy(entry["windows"]),
        }
        failure_id: str | None = None
        try:
            # The title is the message, so repeats of one rule and key share a fingerprint.
            evidence = Evidence(
                exc_type="MonitorAlert",
                message=alert.title,
                log_tail=f"{alert.title}\n{alert.text}",
            )
            report = record_failure(
                self.ledger,
                evidence,
                source="monitor",
                project=self.project,
                extra=extra,
            )
            failure_id = report.failure.id
            pm = draft_postmortem(self.ledger, failure_id)
        # Broad on purpose: the alert is already out; a ledger outage must not stop
        # the engine or lose the other rules' alerts. The error travels in the Decision.
        except Exception as exc:
            logger.warning("could not open an incident for %r: %s", alert.title, exc)
            return failure_id, None, f"{type(exc).__name__}: {exc}"
        return failure_id, pm.id, None
