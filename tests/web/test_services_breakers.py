"""Circuit breakers on the Services pages and API, from a real Service whose primary fails,
on SQLite and PostgreSQL: the list's open / half-open counts, the service page's table and
transitions, the JSON states and the paged history."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from hindsight.ledger import Ledger
from hindsight.serving import CallableBackend, CircuitBreaker, ModelOutput, RulesBackend, Tier
from hindsight.serving.log import PredictionRecord
from hindsight.serving.service import Service
from hindsight.store.schema import SCHEMA_VERSION
from hindsight.web import auth
from hindsight.web.app import create_app
from hindsight.web.context import PAGE_SIZE
from hindsight.web.pages_services import BREAKER_EVENTS_SHOWN
from switch_model import Switch
from web_helpers import PASSWORD, bearer, login

# 4 good calls, then 4 failures fill the window of 8: half of it failed.
OPENED = "error rate 0.50 >= 0.50 over the last 8 calls"


@pytest.fixture
def server(any_ledger: Ledger) -> Iterator[tuple[Ledger, TestClient]]:
    auth.create_user(any_ledger.store, "vera", role="viewer", password=PASSWORD)
    with TestClient(create_app(any_ledger)) as client:
        yield any_ledger, client


def _drive(svc: Service, n: int) -> None:
    async def go() -> None:
        for i in range(n):
            await svc.predict({"i": i})

    asyncio.run(go())


def _run_loans(ledger: Ledger, *, recover: bool) -> None:
    """A real "loans" service: model -> cache -> rules. The model goes down and its breaker
    opens; the cache stays healthy; with ``recover`` the model comes back through half-open
    probes (the probe only after open_for_s, on an injected clock)."""
    now = [0.0]
    model = Switch()
    breaker = CircuitBreaker(window=8, min_calls=8, open_for_s=10.0, half_open_probes=1,
                             clock=lambda: now[0])  # fmt: skip
    svc = Service(
        "loans",
        [Tier(CallableBackend(model, name="model", version="3"), breaker=breaker),
         CallableBackend(lambda x: ModelOutput("cached", 1.0), name="cache", version="1"),
         RulesBackend([], "rules-answer", name="rules")],
        store=ledger.store, ledger=ledger, deadline_ms=2000.0,
    )  # fmt: skip
    _drive(svc, 4)
    model.down = True
    _drive(svc, 8)
    assert breaker.state == "open"
    if recover:
        model.down = False
        now[0] += 10.0
        _drive(svc, 2)
        assert breaker.state == "closed"
    svc.close()


def _rows(page: str, table: str) -> list[str]:
    body = page.split(f'<table class="{table}">', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr[^>]*>.*?</tr>", body.split("<tbody>", 1)[1], flags=re.S)


def _cells(row: str) -> list[str]:
    """A row's cells as text, tags dropped, entities decoded and whitespace collapsed."""
    return [html.unescape(" ".join(re.sub(r"<[^>]+>", " ", c).split()))
            for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]


def test_an_open_breaker_on_the_list_the_page_and_the_api(
    server: tuple[Ledger, TestClient],
) -> None:
    ledger, client = server
    _run_loans(ledger, recover=False)
    viewer = bearer(ledger, "vera")

    # The list: one of three tiers open now.
    (item,) = client.get("/api/v1/services", headers=viewer).json()["items"]
    assert item["breakers"] == {"closed": 2, "open": 1, "half_open": 0, "tiers": 3}
    login(client, "vera")
    listing = client.get("/services").text
    row = listing.split('href="/services/loans?hours=24"', 1)[1].split("</tr>", 1)[0]
    assert '<span class="pill bad" title="tiers whose breaker is open now">1 open</span>' in row
    assert "of 3" in row and "half-open" not in row

    # The service page: every tier, in chain order, the model open with its reason and rate.
    page = client.get("/services/loans").text
    assert '<h2 id="breakers">Circuit breakers</h2>' in page
    rows = _rows(page, "breakers")
    cells = [_cells(r) for r in rows]
    assert [c[0] for c in cells] == ["model", "cache", "rules"]
    assert '<span class="pill bad">open</span>' in rows[0]
    assert cells[0][3] == OPENED and cells[0][4:8] == ["50.0%", "0.0%", "8", "1"]
    for r, c in zip(rows[1:], cells[1:], strict=True):
        assert '<span class="pill good">closed</span>' in r
        assert c[3] == "service started" and c[4:8] == ["—", "—", "—", "0"]
    # The transitions: open by default while a breaker is not closed, newest first.
    assert '<details id="breaker-events" open>' in page
    events = [_cells(r) for r in _rows(page, "breaker-events")]
    # The three starts share one time; the newest id (the last tier) comes first.
    assert [e[1:4] for e in events] == [
        ["model", "closed → open", OPENED], ["rules", "closed", "service started"],
        ["cache", "closed", "service started"], ["model", "closed", "service started"],
    ]
    assert "Only the newest" not in page

    # The API: the detail carries the states; the breakers route the history too.
    detail = client.get("/api/v1/services/loans", headers=viewer).json()
    states = {s["tier"]: s for s in detail["breaker_states"]}
    assert (states["model"]["state"], states["model"]["previous"]) == ("open", "closed")
    assert states["model"]["reason"] == OPENED and states["model"]["current"] is True
    assert states["model"]["snapshot"]["errors"] == 4
    assert states["model"]["at_iso"].endswith("+00:00")
    assert detail["breakers"]["open"] == 1
    body = client.get("/api/v1/services/loans/breakers", headers=viewer).json()
    assert body["total"] == 4 and body["pages"] == 1 and body["counts"]["open"] == 1
    newest = body["items"][0]
    assert (newest["tier"], newest["previous"], newest["state"]) == ("model", "closed", "open")
    assert [s["tier"] for s in body["states"]] == ["model", "cache", "rules"]
    only = client.get("/api/v1/services/loans/breakers", params={"tier": "cache"},
                      headers=viewer).json()
    assert (only["total"], [e["state"] for e in only["items"]]) == (1, ["closed"])


def test_recovery_shows_half_open_then_closed(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    _run_loans(ledger, recover=True)
    viewer = bearer(ledger, "vera")
    (item,) = client.get("/api/v1/services", headers=viewer).json()["items"]
    assert item["breakers"] == {"closed": 3, "open": 0, "half_open": 0, "tiers": 3}
    body = client.get("/api/v1/services/loans/breakers", params={"tier": "model"},
                      headers=viewer).json()
    assert [(e["previous"], e["state"], e["reason"]) for e in body["items"]] == [
        ("half_open", "closed", "all 1 half-open probe call(s) succeeded"),
        ("open", "half_open", "open for 10 s; letting 1 probe call(s) through"),
        ("closed", "open", OPENED),
        ("closed", "closed", "service started"),
    ]
    login(client, "vera")
    listing = client.get("/services").text
    assert '<span class="pill good">all 3 closed</span>' in listing
    page = client.get("/services/loans").text
    model = _cells(_rows(page, "breakers")[0])
    assert model[0] == "model" and model[1] == "closed"
    assert model[3] == "all 1 half-open probe call(s) succeeded (probes 1/1 succeeded)"
    assert model[7] == "1"  # it opened once since the start, though it is closed now
    assert '<details id="breaker-events" open>' in page  # there are changes to see
    changes = [_cells(r)[2] for r in _rows(page, "breaker-events")]
    assert changes[:3] == ["half-open → closed", "open → half-open", "closed → open"]


def _event(tier: str, previous: str, state: str, at: float, reason: str) -> dict[str, Any]:
    return {"service": "batch", "tier": tier, "state": state, "previous": previous,
            "reason": reason, "snapshot": {"calls": 10, "errors": 6, "error_rate": 0.6,
                                           "slow_rate": 0.1},
            "at": at, "schema_version": SCHEMA_VERSION}  # fmt: skip


def test_long_histories_are_limited_on_the_page_and_paged_in_the_api(
    server: tuple[Ledger, TestClient],
) -> None:
    """A service known only by its breakers (no request logged): listed, its page shows the
    newest 50 transitions with a note, the API pages through all of them."""
    ledger, client = server
    rows = [_event("m", "closed", "closed", 1000.0, "service started")]
    state = "closed"
    for i in range(120):
        new = {"closed": "open", "open": "half_open", "half_open": "closed"}[state]
        rows.append(_event("m", state, new, 1001.0 + i, f"change {i}"))
        state = new
    ledger.store.append_breaker_events(rows)
    viewer = bearer(ledger, "vera")
    (item,) = client.get("/api/v1/services", headers=viewer).json()["items"]
    assert item["service"] == "batch" and item["requests"] == 0
    assert item["breakers"] == {"closed": 1, "open": 0, "half_open": 0, "tiers": 1}  # 120 % 3
    login(client, "vera")
    page = client.get("/services/batch").text
    listed = _rows(page, "breaker-events")
    assert len(listed) == BREAKER_EVENTS_SHOWN
    assert _cells(listed[0])[3] == "change 119" and _cells(listed[-1])[3] == "change 70"
    assert f"the last {BREAKER_EVENTS_SHOWN} of 121" in page
    assert '<a href="/api/v1/services/batch/breakers">' in page
    # Error and slow rates from the stored snapshot.
    assert _cells(_rows(page, "breakers")[0])[4:8] == ["60.0%", "10.0%", "10", "—"]

    first = client.get("/api/v1/services/batch/breakers", headers=viewer).json()
    assert (first["total"], first["page_size"], first["pages"]) == (121, PAGE_SIZE,
                                                                  -(-121 // PAGE_SIZE))
    seen = []
    for p in range(1, first["pages"] + 1):
        seen += [e["reason"] for e in client.get(
            "/api/v1/services/batch/breakers", params={"page": p}, headers=viewer
        ).json()["items"]]
    assert seen == [f"change {i}" for i in range(119, -1, -1)] + ["service started"]


def test_stale_tiers_unknown_services_and_access(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    ledger.store.append_breaker_events([
        {**_event("old-model", "closed", "closed", 10.0, "service started"), "service": "s"},
        {**_event("old-model", "closed", "open", 11.0, "error rate 0.60 >= 0.50"), "service": "s"},
        {**_event("new-model", "closed", "closed", 20.0, "service started"), "service": "s"},
    ])
    viewer = bearer(ledger, "vera")
    for path in ("/api/v1/services/s/breakers", "/api/v1/services/s"):
        assert client.get(path).status_code == 401
    r = client.get("/api/v1/services/nope/breakers", headers=viewer)
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    assert client.get("/api/v1/services/s/breakers", params={"page": 0},
                      headers=viewer).status_code == 422
    # The tier left out of the latest start is not counted as open now.
    (item,) = client.get("/api/v1/services", headers=viewer).json()["items"]
    assert item["breakers"] == {"closed": 1, "open": 0, "half_open": 0, "tiers": 1}
    states = client.get("/api/v1/services/s/breakers", headers=viewer).json()["states"]
    assert [(s["tier"], s["state"], s["current"]) for s in states] == [
        ("new-model", "closed", True), ("old-model", "open", False)]
    login(client, "vera")
    page = client.get("/services/s").text
    stale = _rows(page, "breakers")[1]
    assert 'class="gone muted"' in stale and "not in the chain since" in stale
    assert '<span class="pill ">open</span>' in stale  # not coloured: not current
    assert "No breaker state recorded" not in page


def test_a_service_without_breaker_states_says_so(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    record = PredictionRecord(service="logged", version="1", arm="baseline", tier="model",
                              reason="", inputs=None, output=1, confidence=None, latency_ms=3.0)
    ledger.store.append_predictions([record.to_row()])
    viewer = bearer(ledger, "vera")
    assert client.get("/api/v1/services/logged", headers=viewer).json()["breaker_states"] == []
    body = client.get("/api/v1/services/logged/breakers", headers=viewer).json()
    assert (body["states"], body["items"], body["total"], body["counts"]) == ([], [], 0, None)
    login(client, "vera")
    page = client.get("/services/logged").text
    assert str(escape("No breaker state recorded: logged has not run with a store")) in page
    assert 'id="breaker-events"' not in page
    # A service that only started: every tier closed, the (start-only) history folded.
    Service("fresh", [CallableBackend(lambda x: ModelOutput(1, 1.0), name="model", version="1"),
                      RulesBackend([], 0, name="rules")], store=ledger.store).close()
    page = client.get("/services/fresh").text
    assert [_cells(r)[:2] for r in _rows(page, "breakers")] == [["model", "closed"],
                                                               ["rules", "closed"]]
    assert '<details id="breaker-events">' in page
