"""Alert channels: log, generic webhook, Slack-compatible webhook, email, in-memory.

Every channel has ``name`` and ``send(alert) -> Delivery``; sending retries with
backoff and never raises into the caller. :func:`send` fans one alert out to many
channels; :class:`Dispatcher` adds deduplication; :func:`channel_from_url` builds a
channel from a settings string. :class:`MemoryChannel` is the twin for tests.

>>> from hindsight.alerts import Alert, MemoryChannel, send
>>> ch = MemoryChannel()
>>> [d.ok for d in send(Alert("canary rolled back", severity="critical"), [ch])]
[True]
"""

from __future__ import annotations

from hindsight.alerts.alert import SEVERITIES, Alert
from hindsight.alerts.channel import AlertChannel, Delivery, RetryPolicy, deliver
from hindsight.alerts.dispatch import Dispatcher, send
from hindsight.alerts.log import LogChannel
from hindsight.alerts.mail import EmailChannel, email_message
from hindsight.alerts.memory import MemoryChannel
from hindsight.alerts.slack import SlackChannel, slack_payload
from hindsight.alerts.urls import channel_from_url
from hindsight.alerts.webhook import WebhookChannel

__all__ = [
    "SEVERITIES",
    "Alert",
    "AlertChannel",
    "Delivery",
    "Dispatcher",
    "EmailChannel",
    "LogChannel",
    "MemoryChannel",
    "RetryPolicy",
    "SlackChannel",
    "WebhookChannel",
    "channel_from_url",
    "deliver",
    "email_message",
    "send",
    "slack_payload",
]
