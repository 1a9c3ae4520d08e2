"""Errors on the dashboard's pages are HTML pages; under /api/ they stay JSON, as before."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from hindsight.ledger import Ledger, experiment
from hindsight.web import auth, create_app
from web_helpers import PASSWORD, bearer, browser
from web_helpers import csrf as _csrf
from web_helpers import login as _login


@pytest.fixture
def server(any_ledger: Ledger) -> Iterator[tuple[Ledger, TestClient]]:
    for name, role in (("vera", "viewer"), ("ed", "editor")):
        auth.create_user(any_ledger.store, name, role=role, password=PASSWORD)
    with TestClient(create_app(any_ledger)) as client:
        yield any_ledger, client


def _page(r: object, status: int) -> str:
    """The text of an HTML error page with ``status`` (whitespace folded, unescaped)."""
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    assert r.headers["content-type"].startswith("text/html"), r.text  # type: ignore[attr-defined]
    body = r.text  # type: ignore[attr-defined]
    assert f"<h1>{status} ·" in body
    return html.unescape(re.sub(r"\s+", " ", body))


def _run(ledger: Ledger) -> str:
    with experiment("run", ledger=ledger, quiet=True) as exp:
        exp.log_metric("acc", 0.5)
    return exp.id


def test_a_bad_query_parameter_is_a_page_naming_it(server: tuple[Ledger, TestClient]) -> None:
    _, client = server
    _login(client, "vera")
    text = _page(client.get("/experiments", params={"page": "abc"}), 422)
    assert "The query parameter 'page' is not valid" in text and "(got 'abc')" in text
    assert "valid integer" in text and "Correct it in the address" in text
    assert "Log out" in text  # the page keeps its navigation
    text = _page(client.get("/experiments", params={"outcome": "meh"}), 422)
    assert "'outcome'" in text and "'success', 'failure' or 'partial'" in text
    text = _page(client.get("/lessons", params={"page": "0"}), 422)
    assert "'page'" in text and "greater than or equal to 1" in text
    # Anonymous: the login comes first, not the parameter's error.
    r = browser(client).get("/experiments?page=abc", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_the_api_keeps_fastapis_json_422(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    r = client.get("/api/v1/experiments", params={"page": "abc"}, headers=bearer(ledger, "vera"))
    assert r.status_code == 422 and r.headers["content-type"] == "application/json"
    (issue,) = r.json()["detail"]
    assert issue["loc"] == ["query", "page"] and issue["type"] == "int_parsing"
    assert issue["input"] == "abc"
    # Even for a browser with a session.
    _login(client, "vera")
    r = client.get("/api/v1/lessons", params={"page": "0"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "page"]


def test_a_bad_form_names_the_field_and_echoes_no_value(
    server: tuple[Ledger, TestClient],
) -> None:
    ledger, client = server
    text = _page(client.post("/login", data={"password": "hunter2hunter2"}), 422)
    assert "The form field 'name' is not valid: Field required" in text
    assert "hunter2hunter2" not in text and "go back, correct the form" in text.lower()
    exp_id = _run(ledger)
    _login(client, "ed")
    r = client.post(f"/experiments/{exp_id}/lessons",
                    data={"csrf": _csrf(client, f"/experiments/{exp_id}")})
    assert "The form field 'text' is not valid" in _page(r, 422)
    assert ledger.lessons_for([exp_id]) == []


def test_not_found_is_a_page_and_json_under_api(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    headers = bearer(ledger, "vera")
    _login(client, "vera")
    assert "There is no page at /nope" in _page(client.get("/nope"), 404)
    assert "exp_nope" in _page(client.get("/experiments/exp_nope"), 404)
    assert "les_nope" in _page(client.get("/lessons/les_nope"), 404)
    r = client.get("/api/v1/nope", headers=headers)
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    r = client.get("/api/v1/experiments/exp_nope", headers=headers)
    assert r.status_code == 404 and "exp_nope" in r.json()["detail"]


def test_forbidden_is_a_page_and_json_under_api(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    exp_id = _run(ledger)
    _login(client, "vera")
    r = client.post(f"/experiments/{exp_id}/lessons",
                    data={"text": "x", "csrf": _csrf(client, f"/experiments/{exp_id}")})
    text = _page(r, 403)
    assert "This needs the editor role; vera is viewer." in text
    assert "You are logged in as vera (viewer)" in text
    assert "Only admins" in _page(client.get("/admin/users"), 403)
    r = client.post("/api/v1/lessons", json={"text": "x"}, headers=bearer(ledger, "vera"))
    assert r.status_code == 403 and r.json() == {
        "detail": "This needs the editor role; vera is viewer."
    }


def test_a_wrong_method_is_a_page_with_allow(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    _login(client, "vera")
    r = client.get("/logout")
    assert "/logout does not answer GET" in _page(r, 405) and r.headers["allow"] == "POST"
    r = client.delete("/api/v1/lessons", headers=bearer(ledger, "vera"))
    assert r.status_code == 405 and r.json() == {"detail": "Method Not Allowed"}
    assert r.headers["allow"] == "GET, POST"
