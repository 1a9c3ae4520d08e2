"""channel_from_url: settings strings to channels, and its errors."""

from __future__ import annotations

import logging

import pytest

from hindsight.alerts import (
    EmailChannel,
    LogChannel,
    RetryPolicy,
    SlackChannel,
    WebhookChannel,
    channel_from_url,
)
from hindsight.errors import ConfigError


def test_log() -> None:
    ch = channel_from_url("log://")
    assert isinstance(ch, LogChannel)
    assert ch.logger is logging.getLogger("hindsight.alerts")
    named = channel_from_url("log://myapp.alerts")
    assert isinstance(named, LogChannel) and named.logger.name == "myapp.alerts"


def test_slack_keeps_the_https_url() -> None:
    ch = channel_from_url("slack+https://hooks.slack.com/services/T0/B0/xyz?a=1")
    assert isinstance(ch, SlackChannel)
    assert ch.webhook_url == "https://hooks.slack.com/services/T0/B0/xyz?a=1"


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_webhook(scheme: str) -> None:
    retry = RetryPolicy(attempts=7)
    ch = channel_from_url(f"webhook+{scheme}://alerts.example.org:8080/in", retry=retry)
    assert isinstance(ch, WebhookChannel)
    assert ch.url == f"{scheme}://alerts.example.org:8080/in"
    assert ch.retry is retry


def test_smtp_with_everything() -> None:
    ch = channel_from_url(
        "smtp://bot%40corp:p%40ss%3Aw@mail.example.org:587"
        "?from=a@b.org&to=c@d.org,e@f.org&starttls=1"
    )
    assert isinstance(ch, EmailChannel)
    assert (ch.host, ch.port) == ("mail.example.org", 587)
    assert (ch.username, ch.password) == ("bot@corp", "p@ss:w")
    assert ch.sender == "a@b.org"
    assert ch.recipients == ("c@d.org", "e@f.org")
    assert ch.starttls is True


def test_smtp_defaults() -> None:
    ch = channel_from_url("smtp://localhost?from=a@b.org&to=c@d.org&to=e@f.org")
    assert isinstance(ch, EmailChannel)
    assert (ch.port, ch.username, ch.password, ch.starttls) == (25, None, None, False)
    assert ch.recipients == ("c@d.org", "e@f.org")


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("", "Write one of: log://"),
        ("hooks.slack.com/services/x", "Write one of"),
        ("slack://hooks.slack.com/x", "Unknown alert channel scheme 'slack'.*slack\\+https://"),
        ("ftp://x", "Unknown alert channel scheme 'ftp'"),
        ("webhook+https:///path", "has no host.*webhook\\+https://host/path"),
        ("smtp://?from=a@b&to=c@d", "has no host"),
        ("smtp://h:99999?from=a@b&to=c@d", "bad port"),
        ("smtp://h?to=c@d", "add \\?from="),
        ("smtp://h?from=a@b", "add &to="),
        ("smtp://h?from=a@b&to=c@d&starttls=maybe", "starttls"),
        ("smtp://h?from=a@b&to=c@d&tls=1", "Unknown option.*tls"),
    ],
)
def test_bad_urls_say_what_to_write(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        channel_from_url(url)


def test_errors_do_not_leak_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        channel_from_url("smtp://u:hunter2@h?to=c@d")
    assert "hunter2" not in str(info.value)
    assert "u:***@h" in str(info.value)
