"""An email channel over SMTP: plain-text body with a simple HTML alternative."""

from __future__ import annotations

import html
import smtplib
import time
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from hindsight.alerts.alert import Alert
from hindsight.alerts.channel import Delivery, RetryPolicy, deliver
from hindsight.errors import ConfigError

__all__ = ["EmailChannel", "email_message"]


def email_message(alert: Alert, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """The email for ``alert``: subject ``[SEVERITY] title``, text and HTML parts."""
    msg = EmailMessage()
    msg["Subject"] = f"[{alert.severity.upper()}] {alert.title}"
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(alert.created_at, localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg["X-Hindsight-Severity"] = alert.severity
    msg["X-Hindsight-Source"] = alert.source

    lines = [alert.title, "", f"severity: {alert.severity}", f"source: {alert.source}"]
    if alert.text:
        lines += ["", alert.text]
    if alert.fields:
        width = max(len(k) for k in alert.fields)
        lines += [""] + [f"{k.ljust(width)}  {v}" for k, v in alert.fields.items()]
    if alert.links:
        lines += [""] + [f"{label}: {url}" for label, url in alert.links.items()]
    msg.set_content("\n".join(lines) + "\n")

    esc = html.escape
    parts = [
        f"<h2>{esc(alert.title)}</h2>",
        f"<p><strong>{esc(alert.severity)}</strong> &middot; source: {esc(alert.source)}</p>",
    ]
    if alert.text:
        parts.append(f"<p>{esc(alert.text)}</p>".replace("\n", "<br>"))
    if alert.fields:
        rows = "".join(
            f"<tr><th align='left'>{esc(k)}</th><td>{esc(v)}</td></tr>"
            for k, v in alert.fields.items()
        )
        parts.append(f"<table>{rows}</table>")
    if alert.links:
        items = "".join(
            f"<li><a href='{esc(url)}'>{esc(label)}</a></li>" for label, url in alert.links.items()
        )
        parts.append(f"<ul>{items}</ul>")
    msg.add_alternative(
        "<!doctype html><html><body>" + "".join(parts) + "</body></html>\n", subtype="html"
    )
    return msg


def smtp_retryable(exc: Exception) -> bool:
    """Retry connection trouble and 4xx (transient) SMTP replies, not 5xx refusals."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPNotSupportedError):
        return False
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, OSError)  # includes SMTPServerDisconnected and timeouts


class EmailChannel:
    """Send alerts by email through an SMTP server.

    >>> EmailChannel("localhost", 25, "hs@example.org", ["ops@example.org"]).name
    'email'
    """

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        *,
        name: str = "email",
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(host, str) or not host:
            raise ConfigError(
                f"The 'host' parameter of EmailChannel must be a host name. Got {host!r}."
            )
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(
                f"The 'port' parameter of EmailChannel must be an int in [1, 65535]. Got {port!r}."
            )
        if not isinstance(sender, str) or "@" not in sender:
            raise ConfigError(
                f"The 'sender' parameter of EmailChannel must be an address like "
                f"hindsight@example.org. Got {sender!r}."
            )
        if isinstance(recipients, str):
            recipients = [recipients]
        recipients = list(recipients)
        if not recipients or not all(isinstance(r, str) and "@" in r for r in recipients):
            raise ConfigError(
                "The 'recipients' parameter of EmailChannel must be a non-empty list of "
                f"addresses like ops@example.org. Got {recipients!r}."
            )
        if password is not None and not username:
            raise ConfigError("EmailChannel got a password but no username. Set both or neither.")
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients: tuple[str, ...] = tuple(recipients)
        self.username = username
        self.password = password
        self.starttls = bool(starttls)
        self.name = name
        self.retry = retry if retry is not None else RetryPolicy()
        self.sleep = sleep

    def __repr__(self) -> str:
        return (
            f"EmailChannel(name={self.name!r}, host={self.host!r}, port={self.port}, "
            f"recipients={list(self.recipients)!r})"
        )

    def send(self, alert: Alert) -> Delivery:
        """Email the alert to every recipient; never raises."""

        def attempt(timeout_s: float) -> None:
            msg = email_message(alert, self.sender, self.recipients)
            with smtplib.SMTP(self.host, self.port, timeout=timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(msg, from_addr=self.sender, to_addrs=list(self.recipients))

        return deliver(self.name, attempt, self.retry, retryable=smtp_retryable, sleep=self.sleep)
