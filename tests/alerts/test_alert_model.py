"""The Alert value, the RetryPolicy value and the shared retry loop."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import pytest

from hindsight.alerts import SEVERITIES, Alert, Delivery, RetryPolicy, deliver
from hindsight.errors import ConfigError


def test_alert_to_dict_is_json_ready_and_complete() -> None:
    alert = Alert(
        "Drift on price",
        "PSI 0.31 > 0.2",
        severity="critical",
        source="monitor",
        fields={"column": "price", "psi": 0.31},  # type: ignore[dict-item]
        links={"dashboard": "https://example.org/d/1"},
        dedup_key="drift:price",
        created_at=123.5,
    )
    data = alert.to_dict()
    assert data == {
        "title": "Drift on price",
        "text": "PSI 0.31 > 0.2",
        "severity": "critical",
        "source": "monitor",
        "fields": {"column": "price", "psi": "0.31"},
        "links": {"dashboard": "https://example.org/d/1"},
        "dedup_key": "drift:price",
        "created_at": 123.5,
    }
    assert json.loads(json.dumps(data)) == data


def test_alert_is_frozen_and_copies_its_mappings() -> None:
    facts = {"a": "1"}
    alert = Alert("t", fields=facts)
    facts["b"] = "2"
    assert dict(alert.fields) == {"a": "1"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        alert.title = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        alert.fields["c"] = "3"  # type: ignore[index]


@pytest.mark.parametrize("severity", SEVERITIES)
def test_every_severity_is_accepted(severity: str) -> None:
    assert Alert("t", severity=severity).severity == severity


def test_bad_severity_names_the_allowed_values() -> None:
    with pytest.raises(ConfigError, match=r"one of info, warning, critical\. Got 'fatal'"):
        Alert("t", severity="fatal")
    with pytest.raises(ValueError):  # ConfigError is a ValueError
        Alert("t", severity="WARNING")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"title": ""}, "'title'"),
        ({"title": "t", "source": ""}, "'source'"),
        ({"title": "t", "fields": ["a"]}, "'fields'"),
        ({"title": "t", "dedup_key": 3}, "'dedup_key'"),
        ({"title": "t", "text": None}, "'text'"),
    ],
)
def test_bad_alert_parameters(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Alert(**kwargs)


def test_retry_policy_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(attempts=6, backoff_s=0.5, factor=2.0, max_backoff_s=3.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert RetryPolicy().to_dict() == {
        "attempts": 3,
        "backoff_s": 0.5,
        "factor": 2.0,
        "max_backoff_s": 10,
        "timeout_s": 5,
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 0},
        {"attempts": True},
        {"attempts": 1.5},
        {"backoff_s": -1},
        {"factor": 0.5},
        {"max_backoff_s": -1},
        {"timeout_s": 0},
    ],
)
def test_bad_retry_policy(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="parameter of RetryPolicy"):
        RetryPolicy(**kwargs)


def test_deliver_retries_with_backoff_then_succeeds(fake_sleep: Any) -> None:
    calls: list[float] = []

    def attempt(timeout_s: float) -> None:
        calls.append(timeout_s)
        if len(calls) < 3:
            raise ConnectionError("down")

    delivery = deliver("x", attempt, RetryPolicy(attempts=3, timeout_s=1.5), sleep=fake_sleep)
    assert delivery == Delivery("x", True, 3, None, delivery.elapsed_s)
    assert calls == [1.5, 1.5, 1.5]
    assert fake_sleep.calls == [0.5, 1.0]


def test_deliver_turns_errors_into_a_failed_delivery_and_a_warning(
    fake_sleep: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def attempt(_timeout_s: float) -> None:
        raise RuntimeError("boom\nsecond line")

    with caplog.at_level(logging.WARNING, logger="hindsight.alerts"):
        delivery = deliver("pager", attempt, RetryPolicy(attempts=2), sleep=fake_sleep)
    assert not delivery.ok
    assert delivery.attempts == 2
    assert delivery.error == "RuntimeError: boom"
    assert delivery.elapsed_s >= 0
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "'pager'" in record.getMessage()
    assert "RuntimeError: boom" in record.getMessage()


def test_deliver_stops_on_a_permanent_error(fake_sleep: Any) -> None:
    def attempt(_timeout_s: float) -> None:
        raise PermissionError("denied")

    delivery = deliver(
        "x", attempt, RetryPolicy(attempts=5), retryable=lambda e: False, sleep=fake_sleep
    )
    assert (delivery.ok, delivery.attempts, fake_sleep.calls) == (False, 1, [])


def test_deliver_survives_a_broken_retry_predicate(fake_sleep: Any) -> None:
    def attempt(_timeout_s: float) -> None:
        raise OSError("x")

    def broken(_exc: Exception) -> bool:
        raise ZeroDivisionError

    delivery = deliver("x", attempt, RetryPolicy(attempts=5), retryable=broken, sleep=fake_sleep)
    assert (delivery.ok, delivery.attempts) == (False, 1)


def test_deliver_lets_keyboard_interrupt_through() -> None:
    def attempt(_timeout_s: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        deliver("x", attempt, RetryPolicy())
