"""JSON POST over httpx, shared by the webhook and Slack channels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from hindsight.errors import ConfigError

__all__ = ["check_http_url", "http_retryable", "post_json"]


def check_http_url(owner: str, url: object) -> str:
    """Return ``url`` if it is an absolute http(s) URL, else raise ConfigError."""
    if not isinstance(url, str):
        raise ConfigError(f"The 'url' parameter of {owner} must be a str. Got {url!r}.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"The 'url' parameter of {owner} must be an absolute http:// or https:// URL. "
            f"Got {url!r}."
        )
    return url


def post_json(
    url: str,
    payload: Any,
    *,
    headers: Mapping[str, str],
    timeout_s: float,
    transport: httpx.BaseTransport | None,
) -> httpx.Response:
    """POST ``payload`` as JSON; raise httpx.HTTPStatusError for any non-2xx answer."""
    with httpx.Client(timeout=timeout_s, transport=transport) as client:
        response = client.post(url, json=payload, headers=dict(headers))
    if not response.is_success:
        raise httpx.HTTPStatusError(
            # No URL in the message: a Slack webhook URL is a secret and this gets logged.
            f"HTTP {response.status_code} {response.reason_phrase}",
            request=response.request,
            response=response,
        )
    return response


def http_retryable(exc: Exception) -> bool:
    """Retry transport errors, timeouts, 429 and 5xx; not other 4xx or bad payloads."""
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return status == 429 or status >= 500
    return isinstance(exc, httpx.TransportError)
