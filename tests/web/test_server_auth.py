"""The team server's accounts, roles, CSRF and experiment listings, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hindsight.errors import ConfigError
from hindsight.ledger import Ledger, experiment
from hindsight.store import schema as t
from hindsight.web import auth, create_app
from web_helpers import PASSWORD
from web_helpers import csrf as _csrf
from web_helpers import login as _login


@pytest.fixture
def server(any_ledger: Ledger) -> Iterator[tuple[Ledger, TestClient]]:
    store = any_ledger.store
    for name, role in (("vera", "viewer"), ("ed", "editor"), ("ada", "admin")):
        auth.create_user(store, name, role=role, password=PASSWORD)
    with TestClient(create_app(any_ledger)) as client:
        yield any_ledger, client


def _failed_run(ledger: Ledger, name: str = "crashy") -> str:
    exp = experiment(name, ledger=ledger, quiet=True, hypothesis="it will not crash")
    with pytest.raises(ValueError), exp:
        raise ValueError("shapes (3,4) and (5,6) not aligned")
    return exp.id


def test_nothing_is_readable_or_writable_anonymously(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    exp_id = _failed_run(ledger)
    for path in ("/api/v1/experiments", f"/api/v1/experiments/{exp_id}", "/api/v1/whoami"):
        r = client.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert client.post("/api/v1/lessons", json={"text": "x"}).status_code == 401
    page = client.get(f"/experiments/{exp_id}", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
    r = client.post(f"/experiments/{exp_id}/lessons", data={"text": "x", "csrf": "guess"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert ledger.lessons_for([exp_id]) == []
    # A bad or revoked-looking token is anonymous too.
    for token in ("hs_not-a-real-token", "Basic abc", ""):
        r = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401


def test_every_write_endpoint_refuses_viewers(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    exp_id = _failed_run(ledger)
    writes = [r for r in client.app.routes  # type: ignore[attr-defined]
              if getattr(r, "path", "").startswith("/api/") and "POST" in getattr(r, "methods", ())]
    assert writes, "the API has write endpoints"
    viewer = {"Authorization": f"Bearer {auth.create_token(ledger.store, 'vera', 'ci')}"}
    editor = {"Authorization": f"Bearer {auth.create_token(ledger.store, 'ed', 'ci')}"}
    body = {"text": "Check shapes when the config loads.", "sources": [exp_id]}
    for route in writes:
        r = client.post(route.path, json=body, headers=viewer)
        assert r.status_code == 403 and "editor role" in r.json()["detail"], route.path
    assert ledger.lessons_for([exp_id]) == []
    r = client.post("/api/v1/lessons", json=body, headers=editor)
    assert r.status_code == 201
    assert [les.text for les in ledger.lessons_for([exp_id])] == [body["text"]]
    assert client.get("/api/v1/whoami", headers=viewer).json() == {
        "name": "vera", "role": "viewer", "via": "token"
    }
    bad = client.post("/api/v1/lessons", json={"text": "x", "sources": ["exp_nope"]},
                      headers=editor)
    assert bad.status_code in (400, 404) and "exp_nope" in bad.json()["detail"]


def test_login_sessions_and_csrf(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    exp_id = _failed_run(ledger)
    wrong = client.post("/login", data={"name": "ed", "password": "nope nope"})
    unknown = client.post("/login", data={"name": "nobody", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong name or password." in wrong.text and "Wrong name or password." in unknown.text
    assert PASSWORD not in wrong.text
    # A login never redirects off the server.
    r = client.post("/login", data={"name": "ed", "password": PASSWORD, "next": "//evil.example"},
                    follow_redirects=False)
    assert r.headers["location"] == "/experiments"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert _login(client, "ed") == "/experiments"

    # A form without the session's CSRF token changes nothing.
    r = client.post(f"/experiments/{exp_id}/lessons", data={"text": "no token"})
    assert r.status_code == 403 and ledger.lessons_for([exp_id]) == []
    r = client.post(f"/experiments/{exp_id}/lessons", data={"text": "wrong", "csrf": "x" * 43})
    assert r.status_code == 403 and ledger.lessons_for([exp_id]) == []
    csrf = _csrf(client, f"/experiments/{exp_id}")
    r = client.post(f"/experiments/{exp_id}/lessons",
                    data={"text": "Check shapes at config load.", "tags": "shapes, config",
                          "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    (lesson,) = ledger.lessons_for([exp_id])
    assert sorted(lesson.tags) == ["config", "shapes"]
    assert "Check shapes at config load." in client.get(f"/experiments/{exp_id}").text

    # Logging out ends the session on the server, not just in the browser.
    secret = client.cookies.get(auth.SESSION_COOKIE)
    assert secret and auth.principal_for_session(ledger.store, secret) is not None
    client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert auth.principal_for_session(ledger.store, secret) is None
    client.cookies.set(auth.SESSION_COOKIE, secret)  # the old cookie, sent again
    assert client.get("/api/v1/whoami").status_code == 401


def test_a_viewer_session_cannot_post_forms(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    exp_id = _failed_run(ledger)
    _login(client, "vera")
    page = client.get(f"/experiments/{exp_id}").text
    assert "Add lesson" not in page  # no form offered
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    r = client.post(f"/experiments/{exp_id}/lessons", data={"text": "x", "csrf": csrf})
    assert r.status_code == 403 and ledger.lessons_for([exp_id]) == []


def test_secrets_are_stored_as_hashes_only(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    token = auth.create_token(ledger.store, "ed", "ci")
    _login(client, "ed")
    secret = client.cookies.get(auth.SESSION_COOKIE)
    with ledger.store.read() as conn:
        users = conn.execute(select(t.users.c.password_hash)).scalars().all()
        tokens = conn.execute(select(t.api_tokens.c.token_hash)).scalars().all()
        sessions = conn.execute(select(t.web_sessions.c.id)).scalars().all()
    assert all(h.startswith("$argon2id$") and PASSWORD not in h for h in users)
    assert token not in tokens and len(tokens) == 1 and len(tokens[0]) == 64
    assert secret not in sessions and len(sessions) == 1
    # The token is a bearer secret: it works, and no page shows it.
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/whoami", headers=headers).json()["name"] == "ed"
    assert token not in client.get("/experiments").text


def test_bad_accounts_input_names_the_problem(any_ledger: Ledger) -> None:
    store = any_ledger.store
    with pytest.raises(ConfigError, match="Unknown role 'boss'"):
        auth.create_user(store, "x", role="boss", password=PASSWORD)
    with pytest.raises(ConfigError, match="at least 8 characters"):
        auth.create_user(store, "x", password="short")
    auth.create_user(store, "x", password=PASSWORD)
    with pytest.raises(ConfigError, match="already a user called 'x'"):
        auth.create_user(store, "x", password=PASSWORD)
    with pytest.raises(ConfigError, match="No user called 'y'"):
        auth.create_token(store, "y", "ci")
    assert auth.authenticate(store, "x", PASSWORD) is not None
    auth.set_password(store, "x", "another long one")
    assert auth.authenticate(store, "x", PASSWORD) is None
    assert auth.authenticate(store, "x", "another long one") is not None


def test_experiments_filter_search_and_paginate(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    for i in range(120):
        with experiment(f"run-{i:03d}", ledger=ledger, quiet=True, project="p1" if i % 2 else "p2",
                        tags=["odd" if i % 2 else "even", "sweep"],
                        hypothesis="cold start fix" if i % 10 == 0 else "baseline",
                        criteria={"acc": ">= 0.5"}) as exp:
            exp.log_metric("acc", 0.9 if i % 3 else 0.1)
    _failed_run(ledger, "crash-1")
    headers = {"Authorization": f"Bearer {auth.create_token(ledger.store, 'vera', 'ci')}"}

    def get(**params: object) -> dict[str, object]:
        r = client.get("/api/v1/experiments", params=params, headers=headers)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    first = get()
    assert first["total"] == 121 and first["pages"] == 3 and len(first["items"]) == 50
    assert first["items"][0]["name"] == "crash-1"  # newest first
    last = get(page=3)
    assert len(last["items"]) == 21
    seen = {e["id"] for p in (1, 2, 3) for e in get(page=p)["items"]}
    assert len(seen) == 121  # pages neither overlap nor skip
    assert get(project="p1")["total"] == 60
    assert get(tag="odd")["total"] == 60 and get(tag="od")["total"] == 0  # whole tags only
    assert get(q="COLD START")["total"] == 12  # 12 runs; case-insensitive
    assert get(outcome="failure")["total"] == 40 + 1
    assert get(status="crashed")["total"] == 1
    assert get(q="100%_")["total"] == 0  # LIKE wildcards are escaped
    r = client.get("/api/v1/experiments", params={"outcome": "meh"}, headers=headers)
    (issue,) = r.json()["detail"]
    assert r.status_code == 422 and issue["loc"] == ["query", "outcome"]
    assert "'success', 'failure' or 'partial'" in issue["msg"]

    _login(client, "vera")
    page = client.get("/experiments", params={"tag": "odd", "page": 2}).text
    assert page.count('<a href="/experiments/exp_') == 10
    assert 'rel="prev"' in page and 'rel="next"' not in page and "page 2 of 2" in page
    assert "tag=odd" in re.search(r'href="([^"]+)" rel="prev"', page).group(1)  # type: ignore[union-attr]


def test_a_token_is_marked_used_at_most_once_a_minute(any_ledger: Ledger) -> None:
    store = any_ledger.store
    auth.create_user(store, "bot", role="viewer")
    token = auth.create_token(store, "bot", "ci")
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert store.token_owner(digest, used_at=1000.0) is not None
    assert store.token_owner(digest, used_at=1030.0) is not None
    (row,) = store.list_tokens()
    assert row["last_used_at"] == 1000.0  # not rewritten within the minute
    store.token_owner(digest, used_at=1061.0)
    assert store.list_tokens()[0]["last_used_at"] == 1061.0
    assert store.token_owner("0" * 64, used_at=1100.0) is None
