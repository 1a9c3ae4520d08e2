"""Build a channel from a settings string such as ``slack+https://hooks.slack.com/…``.

==========================================================  ===================
URL                                                         channel
==========================================================  ===================
``log://`` or ``log://logger.name``                         LogChannel
``slack+https://hooks.slack.com/services/…``                SlackChannel
``webhook+https://host/path`` (or ``webhook+http://``)      WebhookChannel
``smtp://user:pass@host:587?from=a@b&to=c@d,e@f&starttls=1``  EmailChannel
==========================================================  ===================
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from hindsight.alerts.channel import AlertChannel, RetryPolicy
from hindsight.alerts.log import LogChannel
from hindsight.alerts.mail import EmailChannel
from hindsight.alerts.slack import SlackChannel
from hindsight.alerts.webhook import WebhookChannel
from hindsight.errors import ConfigError

__all__ = ["channel_from_url"]

_FORMS = (
    "log://, slack+https://hooks.slack.com/services/..., webhook+https://host/path, "
    "or smtp://user:pass@host:587?from=alerts@example.org&to=ops@example.org&starttls=1"
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def channel_from_url(url: str, *, retry: RetryPolicy | None = None) -> AlertChannel:
    """The channel a settings URL names; ConfigError saying what to write if it is bad.

    >>> channel_from_url("slack+https://hooks.slack.com/services/T/B/X").webhook_url
    'https://hooks.slack.com/services/T/B/X'
    """
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(f"Alert channel URL {url!r} is not a URL. Write one of: {_FORMS}.")
    scheme = url.split("://", 1)[0].lower()
    if scheme == "log":
        name = url.split("://", 1)[1].strip("/")
        return LogChannel(name or "hindsight.alerts")
    if scheme in ("slack+https", "slack+http", "webhook+https", "webhook+http"):
        kind, _, http_scheme = scheme.partition("+")
        target = http_scheme + url[len(scheme) :]
        parts = urlsplit(target)
        if not parts.netloc:
            raise ConfigError(
                f"Alert channel URL {_redact(url)!r} has no host. "
                f"Write it like {kind}+https://host/path."
            )
        if kind == "slack":
            return SlackChannel(target, retry=retry)
        return WebhookChannel(target, retry=retry)
    if scheme == "smtp":
        return _smtp(url, retry)
    raise ConfigError(
        f"Unknown alert channel scheme {scheme!r} in {_redact(url)!r}. Write one of: {_FORMS}."
    )


def _redact(url: str) -> str:
    """``url`` with any password replaced, safe to put in an error message."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "<unparseable URL>"


def _smtp(url: str, retry: RetryPolicy | None) -> EmailChannel:
    shown = _redact(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(
            f"Alert channel URL {shown!r} has a bad port ({exc}). Write smtp://host:587?..."
        ) from exc
    if not parts.hostname:
        raise ConfigError(
            f"Alert channel URL {shown!r} has no host. Write smtp://user:pass@host:587?from=...&to=..."
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"from", "to", "starttls"})
    if unknown:
        raise ConfigError(
            f"Unknown option(s) {unknown} in {shown!r}. Known options: from, to, starttls."
        )
    sender = query.get("from", [""])[-1]
    if "@" not in sender:
        raise ConfigError(
            f"Alert channel URL {shown!r} needs a sender: add ?from=alerts@example.org."
        )
    recipients = [r.strip() for value in query.get("to", []) for r in value.split(",") if r.strip()]
    if not recipients:
        raise ConfigError(
            f"Alert channel URL {shown!r} needs recipients: add &to=ops@example.org,oncall@example.org."
        )
    flag = query.get("starttls", ["0"])[-1].strip().lower()
    if flag not in _TRUE | _FALSE:
        raise ConfigError(f"starttls in {shown!r} must be 1 or 0 (true/false). Got {flag!r}.")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return EmailChannel(
        parts.hostname,
        port or 25,
        sender,
        recipients,
        username=username,
        password=password,
        starttls=flag in _TRUE,
        retry=retry,
    )
