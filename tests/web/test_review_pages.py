"""The Review queue pages and API: auth, CSRF, claims and decisions through the store-backed
queue, 409s that change nothing, overrides, labels in the outcome log, paging, both backends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from hindsight.ledger import Ledger
from hindsight.review import ReviewQueue
from hindsight.serving import AbstentionPolicy, MockBackend, RulesBackend
from hindsight.serving.service import Service
from hindsight.store.listing_review import search_review_items
from hindsight.web import auth
from hindsight.web.app import create_app
from hindsight.web.context import PAGE_SIZE
from web_helpers import PASSWORD
from web_helpers import bearer as _bearer
from web_helpers import csrf as _csrf
from web_helpers import login as _login


@pytest.fixture
def server(any_ledger: Ledger) -> Iterator[tuple[Ledger, TestClient]]:
    store = any_ledger.store
    for name, role in (("vera", "viewer"), ("ed", "editor"), ("eve", "editor")):
        auth.create_user(store, name, role=role, password=PASSWORD)
    with TestClient(create_app(any_ledger)) as client:
        yield any_ledger, client


@pytest.fixture
def service(server: tuple[Ledger, TestClient]) -> Iterator[Service]:
    """A served model that abstains below 0.5 confidence, on the server's store."""
    rules = RulesBackend([(lambda x: x.get("amount", 0) > 1000, "decline", 1.0)], "approve")
    svc = Service(
        "loans", [MockBackend("approve", name="model", confidence=0.2), rules],
        abstention=AbstentionPolicy(min_confidence=0.5), store=server[0].store,
    )  # fmt: skip
    yield svc
    svc.close()


def _cases(svc: Service, n: int = 1) -> list[str]:
    """Serve ``n`` requests the model abstains on; the review item ids (as the server sees
    them: the predictions flushed to the store)."""
    tickets = []
    for i in range(n):
        r = svc.predict_sync({"amount": 3 + i, "country": "NL"})
        assert r.abstained and r.review_ticket is not None
        tickets.append(r.review_ticket)
    assert svc.log is not None
    svc.log.flush()
    return tickets


def _row(ledger: Ledger, item_id: str) -> dict[str, Any]:
    return ledger.store.get("review_item", item_id)


def _state(ledger: Ledger, item_id: str) -> tuple[Any, ...]:
    row = _row(ledger, item_id)
    return row["status"], row["reviewer"], row["decision"], row["note"]


def _labels(ledger: Ledger, prediction_id: str) -> list[Any]:
    rows = ledger.store.predictions_with_outcomes(service="loans")
    return [r["label"] for r in rows if r["id"] == prediction_id]


def test_nothing_is_readable_or_writable_anonymously(
    server: tuple[Ledger, TestClient], service: Service
) -> None:
    ledger, client = server
    (item,) = _cases(service)
    for path in ("/api/v1/review", f"/api/v1/review/{item}"):
        r = client.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
    assert client.post(f"/api/v1/review/{item}/claim").status_code == 401
    r = client.post(f"/api/v1/review/{item}/decide", json={"decision": "decline"})
    assert r.status_code == 401
    for path in ("/review", f"/review/{item}", "/review?status=decided"):
        page = client.get(path, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
    for action, data in (("claim", {}), ("decide", {"choice": "accept"})):
        r = client.post(f"/review/{item}/{action}", data={**data, "csrf": "guess"},
                        follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert _state(ledger, item) == ("pending", None, None, None)


def test_viewers_read_but_cannot_claim_or_decide(
    server: tuple[Ledger, TestClient], service: Service
) -> None:
    ledger, client = server
    (item,) = _cases(service)
    viewer = _bearer(ledger, "vera")

    assert client.post(f"/api/v1/review/{item}/claim", headers=viewer).status_code == 403
    r = client.post(f"/api/v1/review/{item}/decide", json={"decision": "x"}, headers=viewer)
    assert r.status_code == 403 and "editor role" in r.json()["detail"]
    got = client.get(f"/api/v1/review/{item}", headers=viewer).json()
    assert (got["status"], got["service"], got["proposed_output"]) == (
        "pending", "loans", "approve",
    )  # fmt: skip
    assert got["inputs"] == {"amount": 3, "country": "NL"} and got["labels"] == []

    _login(client, "vera")
    page = client.get(f"/review/{item}").text
    assert "Claim for review" not in page and "Accept the model" not in page
    csrf = _csrf(client, f"/review/{item}")
    assert client.post(f"/review/{item}/claim", data={"csrf": csrf}).status_code == 403
    r = client.post(f"/review/{item}/decide", data={"csrf": csrf, "choice": "accept"})
    assert r.status_code == 403
    assert _state(ledger, item) == ("pending", None, None, None)


def test_an_editor_claims_and_decides_through_the_forms(
    server: tuple[Ledger, TestClient], service: Service
) -> None:
    ledger, client = server
    item, kept = _cases(service, 2)
    pid = _row(ledger, item)["prediction_id"]

    _login(client, "ed")
    page = client.get(f"/review/{item}").text
    assert "Claim for review" in page and "<td>country</td>" in page
    assert "confidence 0.2 &lt; 0.5" in page  # why it was sent, escaped
    assert "<code>approve</code>" in page  # the proposed answer
    # No CSRF token, or a wrong one: refused, nothing changes.
    assert client.post(f"/review/{item}/claim").status_code == 403
    assert client.post(f"/review/{item}/claim", data={"csrf": "x" * 43}).status_code == 403
    assert _state(ledger, item) == ("pending", None, None, None)
    csrf = _csrf(client, f"/review/{item}")
    # Deciding before claiming is refused.
    r = client.post(f"/review/{item}/decide", data={"csrf": csrf, "choice": "accept"})
    assert r.status_code == 409 and "claim it before" in r.text
    r = client.post(f"/review/{item}/claim", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/review/{item}#decide"
    assert _state(ledger, item) == ("claimed", "ed", None, None)
    assert "Your answer" in client.get(f"/review/{item}").text

    # Another reviewer cannot take it, nor decide it.
    _login(client, "eve")
    other = _csrf(client, f"/review/{item}")
    assert "Claimed by ed; only they can decide it." in client.get(f"/review/{item}").text
    r = client.post(f"/review/{item}/claim", data={"csrf": other})
    assert r.status_code == 409 and "claimed by &#39;ed&#39;" in r.text
    r = client.post(f"/review/{item}/decide", data={"csrf": other, "choice": "answer",
                                                    "answer": "approve"})
    assert r.status_code == 409 and "not &#39;eve&#39;" in r.text
    assert _state(ledger, item) == ("claimed", "ed", None, None)

    _login(client, "ed")
    csrf = _csrf(client, f"/review/{item}")
    # An empty answer is not a decision.
    r = client.post(f"/review/{item}/decide", data={"csrf": csrf, "choice": "answer",
                                                    "answer": "  "})
    assert r.status_code == 422 and _state(ledger, item)[0] == "claimed"
    r = client.post(f"/review/{item}/decide",
                    data={"csrf": csrf, "choice": "answer", "answer": "decline",
                          "note": "stolen card"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/review/{item}#decision"
    assert _state(ledger, item) == ("decided", "ed", "decline", "stolen card")
    # The decision is the prediction's label in the outcome log.
    assert _labels(ledger, pid) == ["decline"]
    page = client.get(f"/review/{item}").text
    assert "overrode the model" in page and "Label recorded: decline" in page
    assert '<li class="label"><code>decline</code>' in page
    assert "Claim for review" not in page and "Your answer" not in page

    # Deciding again is refused and changes nothing, not even the labels.
    r = client.post(f"/review/{item}/decide", data={"csrf": csrf, "choice": "answer",
                                                    "answer": "approve"})
    assert r.status_code == 409 and "already decided" in r.text
    assert client.post(f"/review/{item}/claim", data={"csrf": csrf}).status_code == 409
    assert _state(ledger, item) == ("decided", "ed", "decline", "stolen card")
    assert _labels(ledger, pid) == ["decline"]

    # Accepting the model's answer keeps it: not an override.
    client.post(f"/review/{kept}/claim", data={"csrf": csrf})
    r = client.post(f"/review/{kept}/decide", data={"csrf": csrf, "choice": "accept"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert _state(ledger, kept) == ("decided", "ed", "approve", None)
    page = client.get(f"/review/{kept}").text
    assert "kept the model's answer" in page and "overrode the model" not in page
    assert _labels(ledger, _row(ledger, kept)["prediction_id"]) == ["approve"]

    listing = client.get("/review?status=decided").text
    row = listing.split(f'href="/review/{item}"', 1)[1].split("</tr>", 1)[0]
    assert "overridden" in row and "ed" in row
    row = listing.split(f'href="/review/{kept}"', 1)[1].split("</tr>", 1)[0]
    assert "overridden" not in row
    assert client.get("/review/rev_nope").status_code == 404


def test_a_typed_answer_is_json_when_it_parses(
    server: tuple[Ledger, TestClient], service: Service
) -> None:
    ledger, client = server
    a, b = _cases(service, 2)
    _login(client, "ed")
    csrf = _csrf(client, f"/review/{a}")
    for item, text, want in ((a, '{"label": 1, "why": "fraud"}', {"label": 1, "why": "fraud"}),
                             (b, "{not json", "{not json")):
        client.post(f"/review/{item}/claim", data={"csrf": csrf})
        r = client.post(f"/review/{item}/decide",
                        data={"csrf": csrf, "choice": "answer", "answer": text})
        assert r.status_code == 200, r.text  # followed the redirect
        assert _row(ledger, item)["decision"] == want
        assert _labels(ledger, _row(ledger, item)["prediction_id"]) == [want]


def test_an_editor_claims_and_decides_through_the_api(
    server: tuple[Ledger, TestClient], service: Service
) -> None:
    ledger, client = server
    item, other = _cases(service, 2)
    pid = _row(ledger, item)["prediction_id"]
    ed, eve = _bearer(ledger, "ed"), _bearer(ledger, "eve")

    r = client.post(f"/api/v1/review/{item}/decide", json={"decision": "approve"}, headers=ed)
    assert r.status_code == 409 and "claim it before" in r.json()["detail"]
    r = client.post(f"/api/v1/review/{item}/claim", headers=ed)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["reviewer"]) == ("claimed", "ed")
    r = client.post(f"/api/v1/review/{item}/claim", headers=eve)
    assert r.status_code == 409 and "claimed by 'ed'" in r.json()["detail"]
    r = client.post(f"/api/v1/review/{item}/decide", json={"decision": "decline"}, headers=eve)
    assert r.status_code == 409
    assert _state(ledger, item) == ("claimed", "ed", None, None)
    for bad in ({"decision": None}, {}, {"decision": "x", "extra": 1}):
        r = client.post(f"/api/v1/review/{item}/decide", json=bad, headers=ed)
        assert r.status_code == 422, bad
    assert _state(ledger, item) == ("claimed", "ed", None, None)

    r = client.post(f"/api/v1/review/{item}/decide",
                    json={"decision": "approve", "note": "looks fine"}, headers=ed)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["decision"], body["note"], body["overridden"]) == (
        "decided", "approve", "looks fine", False,
    )  # fmt: skip
    assert [x["label"] for x in body["labels"]] == ["approve"]
    assert _labels(ledger, pid) == ["approve"]
    r = client.post(f"/api/v1/review/{item}/decide", json={"decision": "decline"}, headers=ed)
    assert r.status_code == 409 and "already decided" in r.json()["detail"]
    assert _state(ledger, item) == ("decided", "ed", "approve", "looks fine")
    assert _labels(ledger, pid) == ["approve"]

    # A decision that differs from the proposed answer is an override.
    client.post(f"/api/v1/review/{other}/claim", headers=eve)
    r = client.post(f"/api/v1/review/{other}/decide", json={"decision": {"label": "decline"}},
                    headers=eve)
    assert r.status_code == 200 and r.json()["overridden"] is True
    viewer = _bearer(ledger, "vera")
    got = client.get(f"/api/v1/review/{other}", headers=viewer).json()
    assert got["overridden"] is True and got["reviewer"] == "eve"
    assert got["labels"][0]["label"] == {"label": "decline"}
    listed = client.get("/api/v1/review", params={"status": "decided"}, headers=viewer).json()
    assert {x["id"]: x["overridden"] for x in listed["items"]} == {item: False, other: True}
    assert client.get("/api/v1/review/rev_nope", headers=viewer).status_code == 404
    assert client.post("/api/v1/review/rev_nope/claim", headers=ed).status_code == 404


def test_pages_of_120_items_with_filters(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    bulk = ReviewQueue(store=ledger.store, service="bulk", capacity=1000)
    made = []
    for i in range(120):
        got = bulk.submit(f"pred_bulk{i}", {"i": i}, "yes", ["low confidence"],
                          priority=1 if i % 3 == 0 else 0)
        assert got is not None
        made.append(got)
    other = ReviewQueue(store=ledger.store, service="alt").submit("pred_alt", {}, 1, "audit sample")
    assert other is not None
    bulk.claim(made[0].id, "ed")
    viewer = _bearer(ledger, "vera")

    seen: list[str] = []
    for page in (1, 2, 3):
        body = client.get("/api/v1/review", params={"service": "bulk", "status": "",
                                                    "page": page}, headers=viewer).json()
        assert (body["total"], body["page"], body["page_size"], body["pages"]) == (
            120, page, PAGE_SIZE, 3
        )
        assert len(body["items"]) == (50 if page < 3 else 20)
        seen += [x["id"] for x in body["items"]]
    assert len(seen) == len(set(seen)) == 120 and set(seen) == {m.id for m in made}
    # Queue order: highest priority first, then oldest.
    assert seen == [m.id for m in sorted(made, key=lambda m: (-m.priority, m.created_at, m.id))]
    past = client.get("/api/v1/review", params={"service": "bulk", "status": "", "page": 4},
                      headers=viewer).json()
    assert past["items"] == [] and past["total"] == 120
    assert client.get("/api/v1/review", params={"page": 0}, headers=viewer).status_code == 422
    r = client.get("/api/v1/review", params={"status": "bogus"}, headers=viewer)
    assert r.status_code == 422
    pending = client.get("/api/v1/review", headers=viewer).json()  # pending by default
    assert pending["total"] == 120 and all(x["status"] == "pending" for x in pending["items"])
    claimed = client.get("/api/v1/review", params={"status": "claimed"}, headers=viewer).json()
    assert [x["id"] for x in claimed["items"]] == [made[0].id]
    assert claimed["items"][0]["reviewer"] == "ed"
    alt = client.get("/api/v1/review", params={"service": "alt"}, headers=viewer).json()
    assert [x["id"] for x in alt["items"]] == [other.id]

    _login(client, "vera")
    first = client.get("/review?service=bulk").text
    assert "page 1 of 3" in first and 'rel="prev"' not in first
    assert 'href="/review?service=bulk&amp;status=pending&amp;page=2" rel="next"' in first
    assert "<option selected>bulk</option>" in first and "<option>alt</option>" in first
    assert "<option selected>pending</option>" in first
    assert len(re.findall(r'<a href="/review/rev_', first)) == 50
    middle = client.get("/review?service=bulk&page=2").text
    assert 'href="/review?service=bulk&amp;status=pending&amp;page=1" rel="prev"' in middle
    assert "page 2 of 3" in middle
    last = client.get("/review?service=bulk&page=3").text
    assert "page 3 of 3" in last and 'rel="next"' not in last
    assert len(re.findall(r'<a href="/review/rev_', last)) == 19  # one claimed, not pending
    every = client.get("/review?status=").text
    assert "page 1 of 3" in every and 'href="/review?status=&amp;page=2" rel="next"' in every
    empty = client.get("/review?status=expired").text
    assert "No review item matches." in empty and "page 1 of 1" in empty


def test_a_page_is_one_read_and_one_count_in_sql(server: tuple[Ledger, TestClient]) -> None:
    ledger, _client = server
    q = ReviewQueue(store=ledger.store, service="s")
    for i in range(60):
        q.submit(f"pred_{i}", {}, "yes", "x")
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        statements.append(sql)

    event.listen(ledger.store.engine, "before_cursor_execute", seen)
    try:
        rows, total = search_review_items(ledger.store, service="s", status="pending",
                                          offset=50, limit=50)
    finally:
        event.remove(ledger.store.engine, "before_cursor_execute", seen)
    assert (len(rows), total) == (10, 60)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, statements
    assert any("LIMIT" in s.upper() for s in selects)
