"""A generic webhook channel: the alert's ``to_dict()`` POSTed as JSON."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import httpx

from hindsight.alerts._http import check_http_url, http_retryable, post_json
from hindsight.alerts.alert import Alert
from hindsight.alerts.channel import Delivery, RetryPolicy, deliver

__all__ = ["WebhookChannel"]


class WebhookChannel:
    """POST each alert as JSON to ``url``; non-2xx is a failure, 429 and 5xx are retried.

    ``transport`` takes any ``httpx.BaseTransport`` (``httpx.MockTransport`` in tests).

    >>> WebhookChannel("https://example.org/hook").name
    'webhook'
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        name: str = "webhook",
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = check_http_url("WebhookChannel", url)
        self.headers: Mapping[str, str] = dict(headers or {})
        self.name = name
        self.retry = retry if retry is not None else RetryPolicy()
        self.transport = transport
        self.sleep = sleep

    def __repr__(self) -> str:
        return f"WebhookChannel(name={self.name!r}, url={self.url!r})"

    def send(self, alert: Alert) -> Delivery:
        """POST ``alert.to_dict()``; never raises."""

        def attempt(timeout_s: float) -> None:
            post_json(
                self.url,
                alert.to_dict(),
                headers=self.headers,
                timeout_s=timeout_s,
                transport=self.transport,
            )

        return deliver(self.name, attempt, self.retry, retryable=http_retryable, sleep=self.sleep)
