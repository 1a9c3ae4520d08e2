"""The admin pages: users and API tokens managed from the dashboard, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import html
import logging
import re
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from hindsight.errors import ConfigError
from hindsight.ledger import Ledger
from hindsight.web import auth, create_app
from web_helpers import PASSWORD, browser, post_form
from web_helpers import login as _login

USERS = "/admin/users"


@pytest.fixture
def server(any_ledger: Ledger) -> Iterator[tuple[Ledger, TestClient]]:
    store = any_ledger.store
    for name, role in (("vera", "viewer"), ("ed", "editor"), ("ada", "admin")):
        auth.create_user(store, name, role=role, password=PASSWORD)
    with TestClient(create_app(any_ledger)) as client:
        yield any_ledger, client


def _id(ledger: Ledger, name: str) -> str:
    user = ledger.store.user_by_name(name)
    assert user is not None
    return str(user["id"])


def _admin_post(client: TestClient, action: str, **data: str) -> tuple[int, str]:
    """Post an admin form; the status and, after a redirect, the page it leads to."""
    r = post_form(client, USERS, action, data)
    if r.status_code == 303:
        return 303, client.get(r.headers["location"]).text
    return r.status_code, r.text


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", page))


def _alert(page: str) -> str:
    """The error a refused form shows (the page's role="alert" box)."""
    m = re.search(r'role="alert">(.*?)</p>', page, re.S)
    assert m is not None, page
    return _text(m.group(1))


def test_only_admins_get_the_admin_pages(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    r = client.get(USERS, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/admin/users"
    for name in ("vera", "ed"):
        _login(client, name)
        r = client.get(USERS)
        assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
        assert "Only admins manage users and tokens" in _text(r.text)
        assert 'href="/admin/users"' not in client.get("/experiments").text  # no nav link
        # A non-admin's own CSRF token does not open the forms either.
        page = client.get("/experiments").text
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        r = client.post(USERS, data={"csrf": token, "name": "mallory", "role": "admin",
                                     "password": PASSWORD, "password2": PASSWORD})
        assert r.status_code == 403 and ledger.store.user_by_name("mallory") is None
        r = client.post(f"/admin/users/{_id(ledger, name)}/role",
                        data={"csrf": token, "role": "admin"})
        assert r.status_code == 403 and ledger.store.user_by_name(name)["role"] != "admin"  # type: ignore[index]
    # A non-admin's token is refused as well.
    viewer = {"Authorization": f"Bearer {auth.create_token(ledger.store, 'vera', 'ci')}"}
    assert browser(client).get(USERS, headers=viewer).status_code == 403

    _login(client, "ada")
    assert client.get(USERS).status_code == 200
    assert 'href="/admin/users"' in client.get("/experiments").text  # the nav link
    assert client.get("/admin", follow_redirects=False).headers["location"] == USERS


def test_every_admin_form_needs_the_csrf_token(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    ed = _id(ledger, "ed")
    auth.create_token(ledger.store, "ed", "ci")
    (tok,) = ledger.store.list_tokens(ed)
    _login(client, "ada")
    forms = {
        USERS: {"name": "bob", "role": "editor", "password": PASSWORD, "password2": PASSWORD},
        f"/admin/users/{ed}/role": {"role": "viewer"},
        f"/admin/users/{ed}/disable": {},
        f"/admin/users/{ed}/password": {"password": "a new long one", "password2": "a new long one"},
        f"/admin/users/{ed}/tokens": {"label": "stolen"},
        f"/admin/tokens/{tok['id']}/revoke": {},
    }
    for action, data in forms.items():
        for csrf in ({}, {"csrf": "x" * 43}):
            r = client.post(action, data={**data, **csrf}, follow_redirects=False)
            assert r.status_code == 403, action
            assert "CSRF token is missing or stale" in _text(r.text)
    assert ledger.store.user_by_name("bob") is None
    user = ledger.store.user_by_name("ed")
    assert user is not None and user["role"] == "editor" and not user["disabled"]
    assert auth.authenticate(ledger.store, "ed", PASSWORD) is not None
    assert [(t["name"], t["revoked_at"]) for t in ledger.store.list_tokens(ed)] == [("ci", None)]
    # Every form on the page carries the session's token.
    page = client.get(USERS).text
    assert page.count("<form") == page.count('name="csrf" value="') > len(forms)


def test_an_added_user_can_log_in(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    _login(client, "ada")
    status, page = _admin_post(client, USERS, name="bob", role="editor",
                               password="bobs long password", password2="bobs long password")
    assert status == 303 and "Added bob (editor)." in _text(page)
    assert "bobs long password" not in page
    bob = browser(client)
    r = bob.post("/login", data={"name": "bob", "password": "bobs long password"},
                 follow_redirects=False)
    assert r.status_code == 303
    assert bob.get("/api/v1/whoami").json() == {"name": "bob", "role": "editor", "via": "session"}

    # The CLI's checks, with the reason on the page and the typed password not echoed.
    bad = {
        "already a user called 'bob'": {"name": "bob", "password": PASSWORD},
        "Unknown role 'boss'": {"name": "cy", "role": "boss", "password": PASSWORD},
        "at least 8 characters": {"name": "cy", "password": "short7!"},
        "The two passwords differ": {"name": "cy", "password": PASSWORD, "password2": "other one!"},
        "1 to 200 characters": {"name": "  ", "password": PASSWORD},
        "not both": {"name": "cy", "password": PASSWORD, "tokens_only": "1"},
    }
    for message, data in bad.items():
        data.setdefault("password2", data["password"])
        status, page = _admin_post(client, USERS, **data)
        assert status == 400 and message in _alert(page), message
        assert data["password"] not in page and data["password2"] not in page
    assert ledger.store.user_by_name("cy") is None
    # A user for tokens only cannot log in.
    status, _ = _admin_post(client, USERS, name="ci-bot", role="editor", tokens_only="1")
    assert status == 303 and ledger.store.user_by_name("ci-bot") is not None
    assert auth.authenticate(ledger.store, "ci-bot", "") is None


def test_disabling_ends_sessions_and_tokens_at_once(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    ed_id = _id(ledger, "ed")
    token = {"Authorization": f"Bearer {auth.create_token(ledger.store, 'ed', 'ci')}"}
    ed = browser(client)
    _login(ed, "ed")
    assert ed.get("/experiments").status_code == 200
    assert ed.get("/api/v1/whoami", headers=token).status_code == 200

    _login(client, "ada")
    status, page = _admin_post(client, f"/admin/users/{ed_id}/disable")
    assert status == 303 and "Disabled ed" in _text(page)
    r = ed.get("/experiments", follow_redirects=False)  # the very next request
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert ed.get("/api/v1/whoami").status_code == 401
    assert ed.get("/api/v1/whoami", headers=token).status_code == 401
    assert ed.post("/login", data={"name": "ed", "password": PASSWORD}).status_code == 401
    # A session is refused whenever its user is disabled, however that happened.
    _login(ed, "vera")
    ledger.store.update("user", _id(ledger, "vera"), disabled=True)
    assert ed.get("/api/v1/whoami").status_code == 401
    ledger.store.update("user", _id(ledger, "vera"), disabled=False)
    status, page = _admin_post(client, f"/admin/users/{ed_id}/tokens", label="late")
    assert status == 400 and "is disabled" in _alert(page)

    status, page = _admin_post(client, f"/admin/users/{ed_id}/enable")
    assert status == 303 and "Enabled ed." in _text(page)
    _login(ed, "ed")
    assert ed.get("/api/v1/whoami").json()["name"] == "ed"
    assert ed.get("/api/v1/whoami", headers=token).status_code == 200  # not revoked

    # A new role holds from the next request on.
    status, _ = _admin_post(client, f"/admin/users/{ed_id}/role", role="viewer")
    assert status == 303 and ed.get("/api/v1/whoami").json()["role"] == "viewer"
    status, page = _admin_post(client, f"/admin/users/{ed_id}/role", role="boss")
    assert status == 400 and "Unknown role 'boss'" in _alert(page)
    gone = post_form(client, USERS, "/admin/users/usr_nope/disable", {})
    assert gone.status_code == 404 and "usr_nope" in gone.text


def test_a_token_is_shown_once_works_and_can_be_revoked(
    server: tuple[Ledger, TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ledger, client = server
    ed_id = _id(ledger, "ed")
    _login(client, "ada")
    r = post_form(client, USERS, f"/admin/users/{ed_id}/tokens", {"label": "nightly"})
    assert r.status_code == 303 and r.headers["location"].startswith("/admin/tokens/new/")
    assert "hs_" not in r.headers["location"]  # the secret never travels in a URL
    shown = client.get(r.headers["location"])
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    (token,) = re.findall(r"hs_[A-Za-z0-9_-]{40,}", shown.text)
    assert "it will not be shown again" in _text(shown.text)
    # Only once: reloading, or another admin with the link, gets nothing.
    again = client.get(r.headers["location"])
    assert again.status_code == 410 and "hs_" not in again.text
    assert "already shown" in _text(again.text)

    headers = {"Authorization": f"Bearer {token}"}
    api = browser(client)
    assert api.get("/api/v1/whoami", headers=headers).json() == {
        "name": "ed", "role": "editor", "via": "token"
    }
    page = client.get(USERS).text
    assert "nightly" in page and token not in page
    assert hashlib.sha256(token.encode()).hexdigest() not in page
    assert "$argon2" not in page
    (row,) = ledger.store.list_tokens(ed_id)
    assert row["last_used_at"] is not None

    status, page = _admin_post(client, f"/admin/tokens/{row['id']}/revoke")
    assert status == 303 and "Revoked the token 'nightly' of ed" in _text(page)
    assert api.get("/api/v1/whoami", headers=headers).status_code == 401
    assert ledger.store.list_tokens(ed_id)[0]["revoked_at"] is not None
    status, page = _admin_post(client, f"/admin/users/{ed_id}/tokens", label="  ")
    assert status == 400 and "label must have 1 to 200 characters" in _alert(page)
    assert token not in caplog.text and PASSWORD not in caplog.text


def test_a_ticket_is_only_for_the_admin_who_made_it(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    auth.create_user(ledger.store, "bo", role="admin", password=PASSWORD)
    _login(client, "ada")
    r = post_form(client, USERS, f"/admin/users/{_id(ledger, 'ed')}/tokens", {"label": "x"})
    other = browser(client)
    _login(other, "bo")
    assert other.get(r.headers["location"]).status_code == 410
    assert client.get(r.headers["location"]).status_code == 200


def test_nobody_demotes_or_disables_themself(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    ada = _id(ledger, "ada")
    auth.create_user(ledger.store, "bo", role="admin")  # so the last-admin rule is not why
    _login(client, "ada")
    page = client.get(USERS).text
    assert f'action="/admin/users/{ada}/role"' not in page  # not offered
    status, page = _admin_post(client, f"/admin/users/{ada}/role", role="editor")
    assert status == 400 and "You cannot change your own role" in _alert(page)
    status, page = _admin_post(client, f"/admin/users/{ada}/disable")
    assert status == 400 and "You cannot disable yourself" in _alert(page)
    user = ledger.store.user_by_name("ada")
    assert user is not None and user["role"] == "admin" and not user["disabled"]
    assert client.get(USERS).status_code == 200  # still logged in, still admin


def test_the_last_enabled_admin_stays(any_ledger: Ledger) -> None:
    store = any_ledger.store
    ada = auth.create_user(store, "ada", role="admin", password=PASSWORD)
    bo = auth.create_user(store, "bo", role="admin", password=PASSWORD)
    store.set_user_disabled(bo, True)  # a disabled admin does not count
    with pytest.raises(ConfigError, match="last enabled admin"):
        store.set_user_role(ada, "editor")
    with pytest.raises(ConfigError, match="last enabled admin"):
        store.set_user_disabled(ada, True)
    user = store.user_by_id(ada)
    assert user is not None and user["role"] == "admin" and not user["disabled"]
    store.set_user_disabled(bo, False)
    store.set_user_role(ada, "editor")  # now bo remains
    with pytest.raises(ConfigError, match="last enabled admin"):
        store.set_user_disabled(bo, True)
    store.set_user_role(ada, "admin")

    # Two admins demoting each other at once: one wins, one is refused, never both.
    def demote(target: str, barrier: threading.Barrier, results: dict[str, str]) -> None:
        barrier.wait()
        try:
            store.set_user_role(target, "viewer")
            results[target] = "done"
        except ConfigError:
            results[target] = "refused"

    for _ in range(5):
        barrier, results = threading.Barrier(2), dict[str, str]()
        threads = [threading.Thread(target=demote, args=(who, barrier, results))
                   for who in (bo, ada)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
        assert sorted(results.values()) == ["done", "refused"], results
        admins = [u for u in store.list_users() if u["role"] == "admin" and not u["disabled"]]
        assert len(admins) == 1
        store.set_user_role(ada if admins[0]["id"] == bo else bo, "admin")


def test_a_password_reset_ends_the_users_sessions(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    ed = browser(client)
    _login(ed, "ed")
    _login(client, "ada")
    status, page = _admin_post(client, f"/admin/users/{_id(ledger, 'ed')}/password",
                               password="ed's new password", password2="ed's new password")
    assert status == 303 and "Set a new password for ed" in _text(page)
    assert "ed's new password" not in page
    assert ed.get("/api/v1/whoami").status_code == 401
    assert auth.authenticate(ledger.store, "ed", PASSWORD) is None
    assert auth.authenticate(ledger.store, "ed", "ed's new password") is not None
    status, page = _admin_post(client, f"/admin/users/{_id(ledger, 'ed')}/password",
                               password="tiny", password2="tiny")
    assert status == 400 and "at least 8 characters" in _alert(page)
    # An admin changing their own password stays logged in (their other sessions end).
    elsewhere = browser(client)
    _login(elsewhere, "ada")
    status, _ = _admin_post(client, f"/admin/users/{_id(ledger, 'ada')}/password",
                            password="adas new password", password2="adas new password")
    assert status == 303 and client.get(USERS).status_code == 200
    assert elsewhere.get("/api/v1/whoami").status_code == 401


def test_the_page_lists_users_and_tokens_without_secrets(
    server: tuple[Ledger, TestClient],
) -> None:
    ledger, client = server
    auth.create_token(ledger.store, "ed", "nightly")
    old = auth.create_token(ledger.store, "vera", "laptop")
    (row,) = ledger.store.list_tokens(_id(ledger, "vera"))
    auth.revoke_token(ledger.store, row["id"])
    ada = auth.Principal(_id(ledger, "ada"), "ada", "admin", "session")
    auth.set_disabled(ledger.store, ada, _id(ledger, "vera"), True)
    _login(client, "ada")
    page = client.get(USERS).text
    text = _text(page)
    for name in ("vera", "ed", "ada", "nightly", "laptop"):
        assert f">{name}" in page or f" {name}" in text, name
    vera = page[page.index(f'id="{_id(ledger, "vera")}"'):]
    vera = vera[:vera.index("</section>")]
    assert "disabled" in vera and "revoked" in vera and "never" in vera
    assert old not in page and "$argon2" not in page
    for t in ledger.store.list_tokens():
        assert t["id"] in page
