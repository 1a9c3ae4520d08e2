"""Every channel class hindsight.alerts exports keeps the AlertChannel contract."""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable
from typing import Any

import pytest

import hindsight.alerts
from hindsight.alerts import Alert, AlertChannel, Delivery, RetryPolicy


def _no_sleep(_seconds: float) -> None:
    pass


class _ExplodingLogger(logging.Logger):
    def log(self, *args: object, **kwargs: object) -> None:
        raise OSError("disk full")


RETRY = RetryPolicy(attempts=2, backoff_s=0.01, timeout_s=1.0)

# How to build each channel pointed at a failing endpoint. A new channel class
# must be added here, or test_every_channel_has_a_failing_factory fails.
FAILING: dict[str, Callable[[int], Any]] = {
    "LogChannel": lambda port: hindsight.alerts.LogChannel(_ExplodingLogger("x")),
    "MemoryChannel": lambda port: hindsight.alerts.MemoryChannel(fail=True, retry=RETRY),
    "WebhookChannel": lambda port: hindsight.alerts.WebhookChannel(
        f"http://127.0.0.1:{port}/hook", retry=RETRY, sleep=_no_sleep
    ),
    "SlackChannel": lambda port: hindsight.alerts.SlackChannel(
        f"http://127.0.0.1:{port}/hook", retry=RETRY, sleep=_no_sleep
    ),
    "EmailChannel": lambda port: hindsight.alerts.EmailChannel(
        "127.0.0.1", port, "hs@example.org", ["ops@example.org"], retry=RETRY, sleep=_no_sleep
    ),
}


def channel_classes() -> list[str]:
    """Every exported class whose ``send`` returns a Delivery, other than the protocol."""
    names = []
    for name in hindsight.alerts.__all__:
        obj = getattr(hindsight.alerts, name)
        if (
            inspect.isclass(obj)
            and obj is not AlertChannel
            and hasattr(obj, "send")
            and typing.get_type_hints(obj.send).get("return") is Delivery
        ):
            names.append(name)
    return names


def test_every_channel_has_a_failing_factory() -> None:
    assert sorted(channel_classes()) == sorted(FAILING)


@pytest.mark.parametrize("name", channel_classes())
def test_a_failing_endpoint_gives_a_failed_delivery_never_an_exception(
    name: str, closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    channel = FAILING[name](closed_port)
    assert isinstance(channel, AlertChannel)
    assert isinstance(channel.name, str) and channel.name
    assert name in repr(channel)
    alert = Alert("contract", "text", severity="critical", fields={"k": "v"})
    with caplog.at_level(logging.WARNING, logger="hindsight.alerts"):
        delivery = channel.send(alert)
    assert isinstance(delivery, Delivery)
    assert delivery.channel == channel.name
    assert delivery.ok is False
    assert delivery.attempts >= 1
    assert isinstance(delivery.error, str) and delivery.error
    assert delivery.elapsed_s >= 0
    assert any(channel.name in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("name", channel_classes())
def test_channel_signature_takes_keyword_name(name: str) -> None:
    params = inspect.signature(getattr(hindsight.alerts, name)).parameters
    assert "name" in params and params["name"].kind is inspect.Parameter.KEYWORD_ONLY
