"""SlackChannel payloads and delivery against a real loopback HTTP server."""

from __future__ import annotations

from typing import Any

import pytest

from hindsight.alerts import Alert, RetryPolicy, SlackChannel, slack_payload
from hindsight.errors import ConfigError


def make_alert(**kwargs: Any) -> Alert:
    base: dict[str, Any] = {
        "title": "Canary rolled back",
        "text": "error rate 4.1% vs 0.9% on the stable arm",
        "severity": "critical",
        "source": "serving",
        "fields": {"model": "ranker", "version": "v42"},
        "links": {"incident": "https://example.org/i/3"},
        "created_at": 0.0,
    }
    base.update(kwargs)
    return Alert(**base)


def test_payload_has_fallback_text_and_the_blocks() -> None:
    payload = slack_payload(make_alert())
    assert payload["text"] == (
        "[CRITICAL] Canary rolled back: error rate 4.1% vs 0.9% on the stable arm"
    )
    types = [b["type"] for b in payload["blocks"]]
    assert types == ["header", "section", "section", "section", "context"]
    header, text, facts, links, context = payload["blocks"]
    assert header["text"] == {"type": "plain_text", "text": "Canary rolled back", "emoji": True}
    assert text["text"]["type"] == "mrkdwn"
    assert "error rate 4.1%" in text["text"]["text"]
    assert [f["text"] for f in facts["fields"]] == ["*model*\nranker", "*version*\nv42"]
    assert "<https://example.org/i/3|incident>" in links["text"]["text"]
    context_text = context["elements"][0]["text"]
    assert "critical" in context_text and "serving" in context_text


def test_payload_respects_block_limits() -> None:
    alert = make_alert(
        title="T" * 400,
        text="x" * 5000,
        fields={f"k{i:02d}": "v" * 3000 for i in range(23)},
    )
    payload = slack_payload(alert)
    blocks = payload["blocks"]
    assert len(blocks) <= 50
    assert len(payload["text"]) <= 3000
    assert len(blocks[0]["text"]["text"]) <= 150
    sections = [b for b in blocks if b["type"] == "section"]
    assert all(len(b["text"]["text"]) <= 3000 for b in sections if "text" in b)
    field_sections = [b for b in sections if "fields" in b]
    assert [len(b["fields"]) for b in field_sections] == [10, 10, 3]
    assert all(len(f["text"]) <= 2000 for b in field_sections for f in b["fields"])
    assert blocks[-1]["type"] == "context"


def test_payload_without_text_fields_or_links_is_minimal() -> None:
    payload = slack_payload(make_alert(text="", fields={}, links={}, severity="info"))
    assert [b["type"] for b in payload["blocks"]] == ["header", "context"]
    assert payload["text"] == "[INFO] Canary rolled back"


def test_payload_escapes_mrkdwn_control_characters() -> None:
    payload = slack_payload(make_alert(text="a < b & c > d", fields={"<k>": "<v>"}, links={}))
    assert payload["blocks"][1]["text"]["text"] == "a &lt; b &amp; c &gt; d"
    assert payload["blocks"][2]["fields"][0]["text"] == "*&lt;k&gt;*\n&lt;v&gt;"


def test_posts_to_the_webhook(http_receiver: Any, fake_sleep: Any) -> None:
    alert = make_alert()
    delivery = SlackChannel(http_receiver.url, sleep=fake_sleep).send(alert)
    assert delivery.ok, delivery.error
    assert delivery.channel == "slack"
    [request] = http_receiver.requests
    assert request.json() == slack_payload(alert)


def test_retries_5xx_but_not_4xx(http_receiver: Any, fake_sleep: Any) -> None:
    ch = SlackChannel(http_receiver.url, retry=RetryPolicy(attempts=4), sleep=fake_sleep)
    http_receiver.answer(500, 502, 500)
    assert ch.send(make_alert()).attempts == 4
    assert fake_sleep.calls == [0.5, 1.0, 2.0]
    http_receiver.answer(400)
    delivery = ch.send(make_alert())
    assert (delivery.ok, delivery.attempts) == (False, 1)
    assert len(http_receiver.requests) == 5


def test_the_secret_url_stays_out_of_errors_and_repr(http_receiver: Any, fake_sleep: Any) -> None:
    http_receiver.answer(403)
    ch = SlackChannel(http_receiver.url, sleep=fake_sleep)
    delivery = ch.send(make_alert())
    assert delivery.error is not None and "/hook" not in delivery.error
    assert "/hook" not in repr(ch)


def test_unreachable_is_a_failed_delivery(closed_port: int, fake_sleep: Any) -> None:
    delivery = SlackChannel(f"http://127.0.0.1:{closed_port}/x", sleep=fake_sleep).send(
        make_alert()
    )
    assert (delivery.ok, delivery.attempts) == (False, 3)


def test_bad_url() -> None:
    with pytest.raises(ConfigError, match="SlackChannel"):
        SlackChannel("hooks.slack.com/services/x")
