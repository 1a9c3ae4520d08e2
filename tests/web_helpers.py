"""What the team server's tests share: the test password, logging in, CSRF and tokens."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from hindsight.ledger import Ledger
from hindsight.web import auth

PASSWORD = "correct horse battery"


def login(client: TestClient, name: str) -> str:
    """Log ``name`` in with :data:`PASSWORD`; returns where the login redirected."""
    r = client.post("/login", data={"name": name, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def csrf_in(page: str) -> str:
    """The CSRF token a page's forms carry."""
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m is not None
    return m.group(1)


def csrf(client: TestClient, path: str) -> str:
    """The CSRF token of the page at ``path``."""
    return csrf_in(client.get(path).text)


def bearer(ledger: Ledger, name: str) -> dict[str, str]:
    """An Authorization header with a new API token of ``name``."""
    return {"Authorization": f"Bearer {auth.create_token(ledger.store, name, 'ci')}"}


def post_form(client: TestClient, page: str, action: str, data: dict[str, str]) -> Any:
    """Post a form of the page at ``page`` to ``action`` with that page's CSRF token, as a
    browser would (the redirect is not followed)."""
    return client.post(action, data={**data, "csrf": csrf(client, page)}, follow_redirects=False)


def browser(client: TestClient) -> TestClient:
    """Another browser (its own cookies) on the same server as ``client``."""
    return TestClient(client.app)
