"""EmailChannel against a real aiosmtpd server on loopback."""

from __future__ import annotations

import smtplib
from typing import Any

import pytest

from hindsight.alerts import Alert, EmailChannel, RetryPolicy, email_message
from hindsight.alerts.mail import smtp_retryable
from hindsight.errors import ConfigError

ALERT = Alert(
    "Drift on price",
    "PSI 0.31 > 0.2 on <price>",
    severity="warning",
    source="monitor",
    fields={"column": "price", "psi": "0.31"},
    links={"report": "https://example.org/r/1"},
    created_at=1_700_000_000.0,
)


def test_email_arrives_with_subject_parts_and_recipients(smtp_server: Any, fake_sleep: Any) -> None:
    ch = EmailChannel(
        smtp_server.host,
        smtp_server.port,
        "hindsight@example.org",
        ["ops@example.org", "ml@example.org"],
        sleep=fake_sleep,
    )
    delivery = ch.send(ALERT)
    assert delivery.ok, delivery.error
    assert (delivery.channel, delivery.attempts) == ("email", 1)
    [mail] = smtp_server.received
    assert mail.mail_from == "hindsight@example.org"
    assert mail.rcpt_tos == ["ops@example.org", "ml@example.org"]
    msg = mail.message
    assert "WARNING" in msg["Subject"] and "Drift on price" in msg["Subject"]
    assert msg["To"] == "ops@example.org, ml@example.org"
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(preferencelist=("plain",))
    rich = msg.get_body(preferencelist=("html",))
    assert plain is not None and rich is not None
    text = plain.get_content()
    assert "PSI 0.31 > 0.2 on <price>" in text
    assert "column" in text and "https://example.org/r/1" in text
    page = rich.get_content()
    assert "<h2>Drift on price</h2>" in page
    assert "&lt;price&gt;" in page  # alert text is escaped in HTML
    assert "<table>" in page and "https://example.org/r/1" in page


def test_closed_port_is_a_failed_delivery(closed_port: int, fake_sleep: Any) -> None:
    ch = EmailChannel(
        "127.0.0.1",
        closed_port,
        "hs@example.org",
        ["ops@example.org"],
        retry=RetryPolicy(attempts=2, timeout_s=1.0),
        sleep=fake_sleep,
    )
    delivery = ch.send(ALERT)
    assert not delivery.ok
    assert delivery.attempts == 2
    assert delivery.error is not None and "ConnectionRefused" in delivery.error
    assert fake_sleep.calls == [0.5]


def test_starttls_against_a_server_without_it_fails_without_raising(
    smtp_server: Any, fake_sleep: Any
) -> None:
    ch = EmailChannel(
        smtp_server.host,
        smtp_server.port,
        "hs@example.org",
        ["ops@example.org"],
        starttls=True,
        sleep=fake_sleep,
    )
    delivery = ch.send(ALERT)
    assert not delivery.ok
    assert delivery.attempts == 1  # not supported: retrying cannot help
    assert smtp_server.received == []


def test_smtp_retry_rules() -> None:
    assert smtp_retryable(smtplib.SMTPResponseException(421, b"busy"))
    assert not smtp_retryable(smtplib.SMTPResponseException(550, b"no such user"))
    assert not smtp_retryable(smtplib.SMTPRecipientsRefused({}))
    assert smtp_retryable(smtplib.SMTPServerDisconnected("gone"))
    assert smtp_retryable(TimeoutError())
    assert not smtp_retryable(ValueError())


def test_message_builder_date_and_single_recipient() -> None:
    msg = email_message(ALERT, "hs@example.org", ["ops@example.org"])
    assert msg["Date"].startswith("Tue, 14 Nov 2023 22:13:20")
    assert msg["X-Hindsight-Severity"] == "warning"


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("", 25, "a@b", ["c@d"]), {}, "'host'"),
        (("h", 0, "a@b", ["c@d"]), {}, "'port'"),
        (("h", 25, "nobody", ["c@d"]), {}, "'sender'"),
        (("h", 25, "a@b", []), {}, "'recipients'"),
        (("h", 25, "a@b", ["nope"]), {}, "'recipients'"),
        (("h", 25, "a@b", ["c@d"]), {"password": "x"}, "no username"),
    ],
)
def test_bad_settings_are_config_errors(
    args: tuple[Any, ...], kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        EmailChannel(*args, **kwargs)


def test_a_single_recipient_string_is_accepted() -> None:
    assert EmailChannel("h", 25, "a@b", "c@d").recipients == ("c@d",)


def test_login_with_username_and_password(smtp_auth_server: Any, fake_sleep: Any) -> None:
    def channel(password: str) -> EmailChannel:
        return EmailChannel(
            smtp_auth_server.host,
            smtp_auth_server.port,
            "hs@example.org",
            ["ops@example.org"],
            username="bot",
            password=password,
            sleep=fake_sleep,
        )

    assert channel("s3cret").send(ALERT).ok
    assert len(smtp_auth_server.received) == 1
    refused = channel("wrong").send(ALERT)
    assert not refused.ok
    assert refused.attempts == 1  # a 535 refusal is permanent
    assert refused.error is not None and "SMTPAuthenticationError" in refused.error
    assert len(smtp_auth_server.received) == 1
