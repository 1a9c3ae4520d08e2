"""LogChannel with caplog, and the MemoryChannel twin."""

from __future__ import annotations

import logging

import pytest

from hindsight.alerts import Alert, LogChannel, MemoryChannel


@pytest.mark.parametrize(
    ("severity", "level"),
    [("info", logging.INFO), ("warning", logging.WARNING), ("critical", logging.CRITICAL)],
)
def test_log_level_follows_severity(
    caplog: pytest.LogCaptureFixture, severity: str, level: int
) -> None:
    alert = Alert(
        "GPU memory at 97%", "batch 512", severity=severity, source="training", fields={"gpu": "0"}
    )
    with caplog.at_level(logging.DEBUG, logger="hindsight.alerts"):
        delivery = LogChannel().send(alert)
    assert (delivery.ok, delivery.channel, delivery.attempts) == (True, "log", 1)
    [record] = caplog.records
    assert record.levelno == level
    assert record.name == "hindsight.alerts"
    assert record.getMessage() == f"[{severity}] training: GPU memory at 97% — batch 512 (gpu=0)"
    assert record.alert == alert.to_dict()  # type: ignore[attr-defined]


def test_log_channel_takes_a_logger_or_a_name(caplog: pytest.LogCaptureFixture) -> None:
    custom = logging.getLogger("myapp.alerts")
    with caplog.at_level(logging.INFO):
        LogChannel(custom).send(Alert("a", severity="info"))
        LogChannel("other.alerts", name="ops-log").send(Alert("b", severity="info"))
    assert [r.name for r in caplog.records] == ["myapp.alerts", "other.alerts"]


class _ExplodingLogger(logging.Logger):
    def log(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("handler exploded")


def test_a_broken_logger_is_a_failed_delivery(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hindsight.alerts"):
        delivery = LogChannel(_ExplodingLogger("broken")).send(Alert("a"))
    assert (delivery.ok, delivery.attempts) == (False, 1)
    assert delivery.error == "RuntimeError: handler exploded"
    assert "'log'" in caplog.records[-1].getMessage()


def test_memory_channel_records_and_can_fail() -> None:
    ch = MemoryChannel()
    first = Alert("one")
    assert ch.send(first).ok
    ch.fail = True
    failed = ch.send(Alert("two"))
    assert not failed.ok and failed.error is not None and "set to fail" in failed.error
    assert ch.alerts == [first]
    assert [d.ok for d in ch.deliveries] == [True, False]
    ch.clear()
    assert ch.alerts == [] and ch.deliveries == []
