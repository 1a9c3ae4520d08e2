"""Monitor alerting: consecutive windows, dedup, cool-down, restarts, incidents."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from hindsight.alerts import Alert, Delivery, MemoryChannel
from hindsight.errors import ConfigError
from hindsight.ledger.core import Ledger
from hindsight.monitor.alerting import AlertRule, Finding, RuleEngine, findings_from
from hindsight.monitor.signals import rate_shift
from hindsight.monitor.windows import WindowSpec

HOUR = 3600.0


def _f(
    t: int,
    flagged: bool = True,
    *,
    key: str = "block rate / genuine",
    value: float | None = 0.5,
    monitor: str = "decisions",
) -> Finding:
    return Finding(
        monitor=monitor,
        window_start=t * HOUR,
        key=key,
        value=value,
        flagged=flagged,
        detail=f"window {t} {'shifted' if flagged else 'fine'}",
        evidence={"window": t, "rate": value, "n": np.int64(100)},
    )


def _titles(ch: MemoryChannel) -> list[str]:
    return [a.title for a in ch.alerts]


# --------------------------------------------------------------------------- findings


def test_findings_from_rate_windows_is_generic_and_json_safe() -> None:
    results = rate_shift(
        50, 10_000, [5, 60, 5], [1000, 1000, 1000], name="fallback_rate", window=[3, 4, 5]
    )
    found = findings_from(
        results,
        monitor="rates",
        flag_attr="worse",
        key_attr="name",
        value_attr="rate",
        window_starts=WindowSpec(every="1h"),
    )
    assert [f.key for f in found] == ["fallback_rate"] * 3
    assert [f.flagged for f in found] == [False, True, False]
    assert [f.window_start for f in found] == [3 * HOUR, 4 * HOUR, 5 * HOUR]
    assert found[1].value == pytest.approx(0.06)
    assert found[1].detail == results[1].detail
    assert found[1].evidence["events"] == 60
    json.dumps([f.to_dict() for f in found], allow_nan=False)
    # A function works too, and several key attributes join with " / ".
    again = findings_from(
        results,
        monitor="rates",
        flag_attr="worse",
        key_attr=("name", "test"),
        window_starts=lambda w: w * 60.0,
    )
    assert again[0].key == f"fallback_rate / {results[0].test}"
    assert again[2].window_start == 300.0
    assert again[0].value is None
    by_map = findings_from(
        results, monitor="rates", flag_attr="worse", window_starts={3: 1.0, 4: 2.0, 5: 3.0}
    )
    assert [(f.key, f.window_start) for f in by_map] == [
        ("rates", 1.0),
        ("rates", 2.0),
        ("rates", 3.0),
    ]


def test_findings_from_names_bad_attributes() -> None:
    results = rate_shift(50, 10_000, [5], [1000], name="fallback_rate")
    with pytest.raises(ConfigError, match="flag_attr"):
        findings_from(results, monitor="rates", flag_attr="shifted", window_starts={0: 0.0})
    with pytest.raises(ConfigError, match="window_starts"):
        findings_from(results, monitor="rates", flag_attr="worse", window_starts={1: 0.0})
    with pytest.raises(ConfigError, match="value_attr"):
        findings_from(
            results, monitor="rates", flag_attr="worse", value_attr="test", window_starts={0: 0.0}
        )


def test_finding_validation_and_non_finite_value() -> None:
    assert _f(0, value=float("nan")).value is None
    assert _f(0).evidence["n"] == 100 and type(_f(0).evidence["n"]) is int
    with pytest.raises(ConfigError, match="'key'"):
        _f(0, key="")
    with pytest.raises(ConfigError, match="'window_start'"):
        Finding("m", float("inf"), "k", None, True)
    with pytest.raises(ConfigError, match="'flagged'"):
        Finding("m", 0.0, "k", None, 1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"severity": "page"}, "severity"),
        ({"for_windows": 0}, "for_windows"),
        ({"for_windows": True}, "for_windows"),
        ({"cooldown_s": -1}, "cooldown_s"),
        ({"min_value": "low"}, "min_value"),
        ({"min_value": 2.0, "max_value": 1.0}, "min_value"),
        ({"key": ""}, "key"),
        ({"name": ""}, "name"),
    ],
)
def test_rule_validation_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"name": "r", "monitor": "m", **kwargs}
    with pytest.raises(ConfigError, match=f"'{field}'"):
        AlertRule(**args)


def test_engine_validation_names_the_field() -> None:
    rule = AlertRule("r", "m")
    with pytest.raises(ConfigError, match=r"'rules'.*twice"):
        RuleEngine([rule, AlertRule("r", "other")])
    with pytest.raises(ConfigError, match="'open_incident_at'"):
        RuleEngine([rule], open_incident_at="page")
    with pytest.raises(ConfigError, match="'state'"):
        RuleEngine([rule], state={"rules": {}})
    with pytest.raises(ConfigError, match="'channels'"):
        RuleEngine([rule], channels=[object()])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="'findings'"):
        RuleEngine([rule]).evaluate([{"monitor": "m"}])  # type: ignore[list-item]


# --------------------------------------------------------------------------- engine


def test_fires_only_after_consecutive_windows() -> None:
    ch = MemoryChannel()
    engine = RuleEngine([AlertRule("block shift", "decisions", for_windows=3)], channels=[ch])
    # Two flagged, a clear window resets the count, then three in a row fire.
    assert engine.evaluate([_f(0), _f(1), _f(2, False), _f(3), _f(4)], now=10 * HOUR) == []
    assert engine.memory("block shift", "block rate / genuine")["consecutive"] == 2
    decisions = engine.evaluate([_f(5)], now=10 * HOUR)
    assert [d.consecutive for d in decisions] == [3]
    assert _titles(ch) == ["block shift: block rate / genuine"]
    alert = ch.alerts[0]
    assert alert.dedup_key == "block shift:block rate / genuine"
    assert alert.severity == "warning" and alert.source == "monitor"
    assert alert.fields["consecutive"] == "3"
    assert alert.fields["window_start"].startswith("1970-01-01T05:00:00")
    assert alert.fields["value"] == "0.5"
    assert "window 5 shifted" in alert.text
    # Other monitors and keys are tracked apart.
    assert engine.evaluate([_f(6, monitor="rates"), _f(6, key="other")], now=10 * HOUR) == []


def test_one_alert_per_episode_until_it_clears() -> None:
    ch = MemoryChannel()
    engine = RuleEngine([AlertRule("shift", "decisions", cooldown_s=0)], channels=[ch])
    assert len(engine.evaluate([_f(0), _f(1), _f(2)], now=0.0)) == 1
    assert len(engine.evaluate([_f(3)], now=HOUR)) == 0  # still the same episode
    engine.evaluate([_f(4, False)], now=2 * HOUR)  # clears
    assert len(engine.evaluate([_f(5)], now=3 * HOUR)) == 1  # a new episode fires again
    assert len(ch.alerts) == 2


def test_cooldown_holds_back_a_new_episode_then_lets_it_fire() -> None:
    ch = MemoryChannel()
    engine = RuleEngine([AlertRule("shift", "decisions", cooldown_s=2 * HOUR)], channels=[ch])
    engine.evaluate([_f(0)], now=0.0)
    engine.evaluate([_f(1, False)], now=HOUR / 2)
    assert engine.evaluate([_f(2)], now=HOUR) == []  # back within the cool-down
    assert engine.evaluate([_f(3)], now=1.5 * HOUR) == []
    late = engine.evaluate([_f(4)], now=2 * HOUR)  # still breaching once it has passed
    assert [d.window_start for d in late] == [4 * HOUR]
    assert len(ch.alerts) == 2


def test_threshold_rules_and_severities() -> None:
    ch = MemoryChannel()
    rules = [
        AlertRule("too high", "rates", severity="info", max_value=0.1),
        AlertRule("too low", "rates", severity="critical", min_value=0.01, key="fallback"),
    ]
    engine = RuleEngine(rules, channels=[ch])
    findings = [
        _f(0, False, monitor="rates", key="fallback", value=0.2),  # above max, unflagged
        _f(0, True, monitor="rates", key="other", value=0.05),  # flagged, within bounds
        _f(1, False, monitor="rates", key="fallback", value=0.001),  # below min
        _f(1, True, monitor="rates", key="other", value=None),  # no value: no breach
    ]
    decisions = engine.evaluate(findings, now=0.0)
    assert [(d.rule, d.key, d.alert.severity) for d in decisions] == [
        ("too high", "fallback", "info"),
        ("too low", "fallback", "critical"),
    ]
    assert "outside max 0.1" in decisions[0].alert.text
    assert "outside min 0.01" in decisions[1].alert.text
    assert decisions[1].failure_id is None  # no ledger, no incident


def test_state_round_trip_over_a_restart_repeats_nothing() -> None:
    ch = MemoryChannel()
    rule = AlertRule("shift", "decisions", for_windows=3)
    first = RuleEngine([rule], channels=[ch])
    first.evaluate([_f(0), _f(1)], now=0.0)
    saved = json.loads(json.dumps(first.state, allow_nan=False))

    second = RuleEngine([rule], channels=[ch], state=saved)
    assert second.memory("shift", "block rate / genuine")["consecutive"] == 2
    # The restarted process re-reads the log: old windows are not counted twice.
    assert [d.consecutive for d in second.evaluate([_f(0), _f(1), _f(2)], now=HOUR)] == [3]
    saved = json.loads(json.dumps(second.state, allow_nan=False))

    third = RuleEngine([rule], channels=[ch], state=saved)
    assert third.evaluate([_f(0), _f(1), _f(2), _f(3)], now=2 * HOUR) == []
    assert len(ch.alerts) == 1
    assert third.memory("shift", "block rate / genuine")["consecutive"] == 4
    # Mutating a saved copy does not reach into the engine.
    saved["rules"]["shift"]["block rate / genuine"]["active"] = False
    assert third.memory("shift", "block rate / genuine")["active"] is True


def test_critical_rule_opens_an_incident(ledger: Ledger) -> None:
    ch = MemoryChannel()
    rule = AlertRule("silent constant", "health", severity="critical", for_windows=2)
    engine = RuleEngine([rule], channels=[ch], ledger=ledger, project="fraud")
    findings = [_f(t, monitor="health", key="score") for t in (7, 8)]
    [decision] = engine.evaluate(findings, now=9 * HOUR)
    assert decision.incident_error is None
    assert decision.failure_id is not None and decision.postmortem_id is not None
    assert decision.delivered and [d.ok for d in decision.deliveries] == [True]

    failure = ledger.failure_record(decision.failure_id)
    assert failure.source == "monitor" and failure.project == "fraud"
    assert failure.message == "silent constant: score"
    assert "window 8 shifted" in (failure.log_tail or "")
    windows = failure.evidence["windows"]
    assert [w["evidence"]["window"] for w in windows] == [7, 8]
    assert windows[1]["detail"] == "window 8 shifted"
    assert failure.evidence["rule"]["name"] == "silent constant"

    pm = ledger.postmortem(decision.postmortem_id)
    assert pm.failure_id == decision.failure_id and pm.status == "draft"
    json.dumps(decision.to_dict(), allow_nan=False)


def test_warning_rule_sends_but_opens_no_incident(ledger: Ledger) -> None:
    ch = MemoryChannel()
    engine = RuleEngine([AlertRule("shift", "decisions")], channels=[ch], ledger=ledger)
    [decision] = engine.evaluate([_f(0)], now=0.0)
    assert _titles(ch) == ["shift: block rate / genuine"]
    assert decision.failure_id is None and decision.postmortem_id is None
    assert ledger.failures() == []


def test_open_incident_at_lowers_the_bar(ledger: Ledger) -> None:
    engine = RuleEngine(
        [AlertRule("shift", "decisions")], ledger=ledger, open_incident_at="warning"
    )
    [decision] = engine.evaluate([_f(0)], now=0.0)
    assert decision.failure_id is not None
    assert [f.id for f in ledger.failures()] == [decision.failure_id]


class _Raising:
    name = "broken"

    def send(self, alert: Alert) -> Delivery:
        raise RuntimeError("endpoint on fire")


def test_a_raising_channel_does_not_stop_the_engine(caplog: pytest.LogCaptureFixture) -> None:
    good = MemoryChannel()
    engine = RuleEngine(
        [AlertRule("a", "decisions"), AlertRule("b", "decisions", severity="critical")],
        channels=[_Raising(), good],
    )
    decisions = engine.evaluate([_f(0)], now=0.0)
    assert [d.rule for d in decisions] == ["a", "b"]
    assert [[d.ok for d in dec.deliveries] for dec in decisions] == [[False, True]] * 2
    assert "endpoint on fire" in (decisions[0].deliveries[0].error or "")
    assert _titles(good) == ["a: block rate / genuine", "b: block rate / genuine"]
    # And a broken ledger is reported in the decision instead of raised.
    broken = RuleEngine(
        [AlertRule("c", "decisions", severity="critical")],
        ledger=object(),  # type: ignore[arg-type]
    )
    [decision] = broken.evaluate([_f(0)], now=0.0)
    assert decision.failure_id is None and decision.incident_error
