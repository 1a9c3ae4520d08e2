"""WebhookChannel against a real loopback HTTP server."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from hindsight.alerts import Alert, RetryPolicy, WebhookChannel
from hindsight.errors import ConfigError

ALERT = Alert(
    "Loss is NaN",
    "step 1200: loss became NaN",
    severity="critical",
    source="training",
    fields={"step": "1200", "lr": "0.3"},
    links={"run": "https://example.org/runs/7"},
    dedup_key="nan:run7",
    created_at=1_700_000_000.0,
)


def channel(url: str, sleep: Any, **kwargs: Any) -> WebhookChannel:
    retry = kwargs.pop("retry", RetryPolicy(attempts=3, backoff_s=0.5, timeout_s=2.0))
    return WebhookChannel(url, retry=retry, sleep=sleep, **kwargs)


def test_posts_the_alert_as_json_with_headers(http_receiver: Any, fake_sleep: Any) -> None:
    ch = channel(http_receiver.url, fake_sleep, headers={"Authorization": "Bearer t0k"})
    delivery = ch.send(ALERT)
    assert delivery.ok, delivery.error
    assert (delivery.channel, delivery.attempts, delivery.error) == ("webhook", 1, None)
    [request] = http_receiver.requests
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer t0k"
    assert request.json() == ALERT.to_dict()
    assert fake_sleep.calls == []


def test_500_is_retried_with_backoff(http_receiver: Any, fake_sleep: Any) -> None:
    http_receiver.answer(500, 503)
    delivery = channel(http_receiver.url, fake_sleep).send(ALERT)
    assert delivery.ok
    assert delivery.attempts == 3
    assert len(http_receiver.requests) == 3
    assert fake_sleep.calls == [0.5, 1.0]


def test_429_is_retried(http_receiver: Any, fake_sleep: Any) -> None:
    http_receiver.answer(429)
    delivery = channel(http_receiver.url, fake_sleep).send(ALERT)
    assert (delivery.ok, delivery.attempts) == (True, 2)


def test_persistent_500_gives_up_after_the_attempts(http_receiver: Any, fake_sleep: Any) -> None:
    http_receiver.default_status = 500
    delivery = channel(http_receiver.url, fake_sleep).send(ALERT)
    assert not delivery.ok
    assert delivery.attempts == 3
    assert delivery.error is not None and "500" in delivery.error
    assert len(http_receiver.requests) == 3
    assert fake_sleep.calls == [0.5, 1.0]


@pytest.mark.parametrize("status", [400, 401, 404])
def test_4xx_is_not_retried(http_receiver: Any, fake_sleep: Any, status: int) -> None:
    http_receiver.answer(status)
    delivery = channel(http_receiver.url, fake_sleep).send(ALERT)
    assert not delivery.ok
    assert delivery.attempts == 1
    assert delivery.error is not None and str(status) in delivery.error
    assert len(http_receiver.requests) == 1
    assert fake_sleep.calls == []


def test_redirect_is_a_failure(http_receiver: Any, fake_sleep: Any) -> None:
    http_receiver.answer(302)
    delivery = channel(http_receiver.url, fake_sleep).send(ALERT)
    assert (delivery.ok, delivery.attempts) == (False, 1)


def test_unreachable_port_is_a_failed_delivery(closed_port: int, fake_sleep: Any) -> None:
    ch = channel(f"http://127.0.0.1:{closed_port}/hook", fake_sleep)
    delivery = ch.send(ALERT)
    assert not delivery.ok
    assert delivery.attempts == 3  # connection errors are worth retrying
    assert delivery.error is not None and "ConnectError" in delivery.error
    assert fake_sleep.calls == [0.5, 1.0]


def test_timeout_is_respected(http_receiver: Any, fake_sleep: Any) -> None:
    http_receiver.delay_s = 1.0
    retry = RetryPolicy(attempts=1, timeout_s=0.2)
    start = time.monotonic()
    delivery = channel(http_receiver.url, fake_sleep, retry=retry).send(ALERT)
    assert time.monotonic() - start < 0.9
    assert not delivery.ok
    assert delivery.error is not None and "Timeout" in delivery.error


def test_mock_transport_twin(fake_sleep: Any) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    ch = WebhookChannel(
        "https://hooks.example.org/x", transport=httpx.MockTransport(handler), sleep=fake_sleep
    )
    assert ch.send(ALERT).ok
    assert seen[0].url == "https://hooks.example.org/x"


@pytest.mark.parametrize("url", ["", "ftp://x/y", "hooks.example.org/x", "https://", None])
def test_bad_url_is_a_config_error(url: Any) -> None:
    with pytest.raises(ConfigError, match=r"http:// or https://|must be a str"):
        WebhookChannel(url)
