"""A Slack-compatible incoming-webhook channel (Slack, Mattermost, Rocket.Chat).

Messages carry a plain ``text`` fallback for notifications plus Block Kit
``blocks``; Slack rejects a whole message when a block breaks its limits, so
:func:`slack_payload` truncates and splits to stay inside them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from hindsight.alerts._http import check_http_url, http_retryable, post_json
from hindsight.alerts.alert import Alert
from hindsight.alerts.channel import Delivery, RetryPolicy, deliver

__all__ = ["SlackChannel", "slack_payload"]

# Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
MAX_HEADER_CHARS = 150
MAX_TEXT_CHARS = 3000
MAX_FIELDS_PER_SECTION = 10
MAX_FIELD_CHARS = 2000
MAX_BLOCKS = 50

_EMOJI = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    # Slack's mrkdwn treats &, < and > as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def slack_payload(alert: Alert) -> dict[str, Any]:
    """The JSON body for a Slack incoming webhook: ``text`` fallback plus ``blocks``."""
    fallback = f"[{alert.severity.upper()}] {alert.title}"
    if alert.text:
        fallback += f": {alert.text}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _cut(alert.title, MAX_HEADER_CHARS),
                "emoji": True,
            },
        }
    ]
    if alert.text:
        blocks.append(
            {"type": "section", "text": _mrkdwn(_cut(_escape(alert.text), MAX_TEXT_CHARS))}
        )
    items = [
        _mrkdwn(_cut(f"*{_escape(key)}*\n{_escape(value)}", MAX_FIELD_CHARS))
        for key, value in alert.fields.items()
    ]
    for start in range(0, len(items), MAX_FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": items[start : start + MAX_FIELDS_PER_SECTION]})
    if alert.links:
        links = " · ".join(
            f"<{url.replace('|', '%7C')}|{_escape(label)}>" for label, url in alert.links.items()
        )
        blocks.append({"type": "section", "text": _mrkdwn(_cut(links, MAX_TEXT_CHARS))})
    context = f"{_EMOJI[alert.severity]} *{alert.severity}* · source: {_escape(alert.source)}"
    if alert.dedup_key:
        context += f" · key: {_escape(alert.dedup_key)}"
    # The context block goes last even when sections had to be dropped.
    blocks = blocks[: MAX_BLOCKS - 1]
    blocks.append({"type": "context", "elements": [_mrkdwn(_cut(context, MAX_TEXT_CHARS))]})
    return {"text": _cut(fallback, MAX_TEXT_CHARS), "blocks": blocks}


class SlackChannel:
    """Post alerts to a Slack-compatible incoming webhook URL.

    >>> SlackChannel("https://hooks.slack.com/services/T/B/X").name
    'slack'
    """

    def __init__(
        self,
        webhook_url: str,
        *,
        name: str = "slack",
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.webhook_url = check_http_url("SlackChannel", webhook_url)
        self.name = name
        self.retry = retry if retry is not None else RetryPolicy()
        self.transport = transport
        self.sleep = sleep

    def __repr__(self) -> str:
        # The webhook URL is a secret; keep it out of logs and reprs.
        return f"SlackChannel(name={self.name!r})"

    def send(self, alert: Alert) -> Delivery:
        """Post the alert as Block Kit; never raises."""

        def attempt(timeout_s: float) -> None:
            post_json(
                self.webhook_url,
                slack_payload(alert),
                headers={},
                timeout_s=timeout_s,
                transport=self.transport,
            )

        return deliver(self.name, attempt, self.retry, retryable=http_retryable, sleep=self.sleep)
