"""The team server's post-mortem pages and API, on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hindsight.ledger import Ledger, draft_postmortem, experiment, update_postmortem
from hindsight.ledger.postmortem import SECTIONS
from hindsight.web import auth, pages_postmortems
from hindsight.web.app import create_app
from web_helpers import PASSWORD
from web_helpers import csrf_in as _csrf
from web_helpers import login as _login


@pytest.fixture
def server(any_ledger: Ledger) -> Iterator[tuple[Ledger, TestClient]]:
    store = any_ledger.store
    for name, role in (("vera", "viewer"), ("ed", "editor")):
        auth.create_user(store, name, role=role, password=PASSWORD)
    with TestClient(create_app(any_ledger)) as client:
        yield any_ledger, client


def _failure(ledger: Ledger, name: str = "crashy") -> tuple[str, str]:
    """(experiment id, failure id) of a run that crashed."""
    exp = experiment(name, ledger=ledger, quiet=True, hypothesis="it will not crash")
    with pytest.raises(ValueError), exp:
        raise ValueError("shapes (3,4) and (5,6) not aligned")
    failure_id = ledger.experiment_record(exp.id).failure_id
    assert failure_id is not None
    return exp.id, failure_id


def _postmortem(ledger: Ledger) -> tuple[str, str]:
    """(experiment id, post-mortem id) of a draft with two action items."""
    exp_id, failure_id = _failure(ledger)
    pm = draft_postmortem(ledger, failure_id)
    update_postmortem(ledger, pm.id, sections={"action_items": [
        {"text": "Check shapes at config load", "owner": "", "status": "open"},
        {"text": "Add a shape test", "owner": "sam", "status": "open"},
    ]})
    return exp_id, pm.id


def _headers(ledger: Ledger, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.create_token(ledger.store, name, 'ci')}"}


def _edit_form(page: str) -> dict[str, str]:
    """The edit form's fields as the browser would send them (inputs, textareas, selects)."""
    data: dict[str, str] = {}
    for m in re.finditer(r'<input (?:type="hidden" )?name="([^"]+)" value="([^"]*)"', page):
        data[m.group(1)] = m.group(2)
    for m in re.finditer(r'<textarea name="([^"]+)"[^>]*>(.*?)</textarea>', page, re.S):
        data[m.group(1)] = m.group(2)
    for m in re.finditer(r'<select name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r"<option selected>([^<]+)</option>", m.group(2))
        assert chosen is not None, m.group(1)
        data[m.group(1)] = chosen.group(1)
    return {k: html.unescape(v) for k, v in data.items()}


def test_nothing_is_readable_or_writable_anonymously(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    _, pm_id = _postmortem(ledger)
    before = ledger.postmortem(pm_id)
    failure_id = before.failure_id
    for path in ("/api/v1/postmortems", f"/api/v1/postmortems/{pm_id}"):
        r = client.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert client.put(f"/api/v1/postmortems/{pm_id}", json={"impact": "x"}).status_code == 401
    assert client.post(f"/api/v1/failures/{failure_id}/postmortem").status_code == 401
    for path in ("/postmortems", f"/postmortems/{pm_id}", f"/postmortems/{pm_id}/edit"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    for path in (f"/postmortems/{pm_id}/edit", f"/failures/{failure_id}/postmortem"):
        r = client.post(path, data={"impact": "x", "csrf": "guess"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
    assert ledger.postmortem(pm_id) == before
    assert len(ledger.store.list_postmortems()) == 1


def test_viewers_read_but_cannot_write(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    exp_id, pm_id = _postmortem(ledger)
    before = ledger.postmortem(pm_id)
    viewer = _headers(ledger, "vera")
    assert client.get(f"/api/v1/postmortems/{pm_id}", headers=viewer).json() == before.to_dict()
    r = client.put(f"/api/v1/postmortems/{pm_id}", json={"impact": "none"}, headers=viewer)
    assert r.status_code == 403 and "editor role" in r.json()["detail"]
    r = client.post(f"/api/v1/failures/{before.failure_id}/postmortem", headers=viewer)
    assert r.status_code == 403 and "editor role" in r.json()["detail"]

    _login(client, "vera")
    page = client.get(f"/postmortems/{pm_id}")
    assert page.status_code == 200
    assert "Edit this post-mortem" not in page.text and f"/postmortems/{pm_id}/edit" not in page.text
    assert f'href="/experiments/{exp_id}"' in page.text
    assert client.get(f"/postmortems/{pm_id}/edit").status_code == 403
    csrf = _csrf(page.text)  # the viewer's own, valid token: the role still refuses
    r = client.post(f"/postmortems/{pm_id}/edit", data={"impact": "none", "csrf": csrf})
    assert r.status_code == 403
    r = client.post(f"/failures/{before.failure_id}/postmortem", data={"csrf": csrf})
    assert r.status_code == 403
    assert ledger.postmortem(pm_id) == before
    assert len(ledger.store.list_postmortems()) == 1


def test_the_view_shows_every_section_and_the_action_items(
    server: tuple[Ledger, TestClient],
) -> None:
    ledger, client = server
    _, pm_id = _postmortem(ledger)
    pm = ledger.postmortem(pm_id)
    _login(client, "vera")
    page = client.get(f"/postmortems/{pm_id[:8]}").text  # a unique prefix works
    for heading in [*SECTIONS.values(), "Timeline", "Action items", "Lessons"]:
        assert f">{heading}</h2>" in page, heading
    assert "Check shapes at config load" in page and ">sam<" in page
    assert pm.body["timeline"][0]["event"].split(" (")[0] in page
    assert client.get("/postmortems/pm_nope").status_code == 404


def test_an_editor_edits_through_the_form(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    _, pm_id = _postmortem(ledger)
    before = ledger.postmortem(pm_id)
    _login(client, "ed")
    view = client.get(f"/postmortems/{pm_id}").text
    assert f'href="/postmortems/{pm_id}/edit"' in view
    form = _edit_form(client.get(f"/postmortems/{pm_id}/edit").text)
    assert form["action-1-owner"] == "sam" and form["action-2-text"] == ""  # a new row
    assert form["summary"] == before.body["summary"]

    # Without the CSRF token nothing changes.
    bad = {**form, "impact": "Two GPU-hours lost."}
    del bad["csrf"]
    assert client.post(f"/postmortems/{pm_id}/edit", data=bad).status_code == 403
    assert client.post(f"/postmortems/{pm_id}/edit",
                       data={**bad, "csrf": "x" * 43}).status_code == 403
    assert ledger.postmortem(pm_id) == before

    form.update({
        "impact": "Two GPU-hours lost.",
        "status": "reviewed",
        "action-0-owner": "ana", "action-0-status": "done",
        "action-1-text": "",  # cleared: removed
        "action-1-owner": "",
        "action-2-text": "Pin the data loader version", "action-2-owner": "lee",
        "new_lessons": "Validate tensor shapes when the config is loaded.",
    })
    r = client.post(f"/postmortems/{pm_id}/edit", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/postmortems/{pm_id}"
    after = ledger.postmortem(pm_id)
    assert after.status == "reviewed" and after.body["impact"] == "Two GPU-hours lost."
    assert after.body["summary"] == before.body["summary"]
    assert after.body["timeline"] == before.body["timeline"]  # round-trips through the form
    assert after.body["action_items"] == [
        {"text": "Check shapes at config load", "owner": "ana", "status": "done"},
        {"text": "Pin the data loader version", "owner": "lee", "status": "open"},
    ]
    (lesson,) = [les for les in after.body["lessons"] if les["text"].startswith("Validate")]
    assert lesson["id"].startswith("les_")  # recorded in the ledger
    page = client.get(f"/postmortems/{pm_id}").text
    assert "Two GPU-hours lost." in page and ">ana<" in page and "Add a shape test" not in page
    assert "Pin the data loader version" in page and ">reviewed<" in page
    listing = client.get("/postmortems").text
    assert re.search(r"<td>1</td>\s*</tr>", listing)  # one open action item left

    # An unknown status names the field and changes nothing.
    form = _edit_form(client.get(f"/postmortems/{pm_id}/edit").text)
    r = client.post(f"/postmortems/{pm_id}/edit", data={**form, "action-0-status": "maybe"})
    assert r.status_code == 422 and "action-0-status" in r.text
    r = client.post(f"/postmortems/{pm_id}/edit", data={**form, "status": "meh"})
    assert r.status_code == 422 and "status" in r.text
    assert ledger.postmortem(pm_id).body == after.body


def test_an_editor_drafts_from_a_failure(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    _, failure_id = _failure(ledger)
    _login(client, "ed")
    csrf = _csrf(client.get("/postmortems").text)
    assert client.post(f"/failures/{failure_id}/postmortem").status_code == 403  # no CSRF
    assert ledger.store.list_postmortems() == []
    r = client.post(f"/failures/{failure_id}/postmortem", data={"csrf": csrf},
                    follow_redirects=False)
    (row,) = ledger.store.list_postmortems()
    assert r.status_code == 303 and r.headers["location"] == f"/postmortems/{row['id']}/edit"
    assert row["failure_id"] == failure_id
    assert client.post("/failures/fail_nope/postmortem", data={"csrf": csrf}).status_code == 404

    editor = _headers(ledger, "ed")
    r = client.post(f"/api/v1/failures/{failure_id}/postmortem", headers=editor)
    assert r.status_code == 201 and r.json()["failure_id"] == failure_id
    assert r.json()["status"] == "draft" and len(ledger.store.list_postmortems()) == 2


def test_an_editor_edits_through_the_api(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    _, pm_id = _postmortem(ledger)
    before = ledger.postmortem(pm_id)
    editor = _headers(ledger, "ed")
    body: dict[str, Any] = {
        "root_cause": "The config's hidden size did not match the checkpoint.",
        "status": "final",
        "action_items": [{"text": "Check shapes at config load", "owner": "ana",
                          "status": "done"}],
    }
    r = client.put(f"/api/v1/postmortems/{pm_id}", json=body, headers=editor)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got == ledger.postmortem(pm_id).to_dict()
    assert got["status"] == "final" and got["body"]["root_cause"] == body["root_cause"]
    assert got["body"]["action_items"] == body["action_items"]
    assert got["body"]["impact"] == before.body["impact"]  # left out: kept
    (row,) = client.get("/api/v1/postmortems", headers=editor).json()["items"]
    assert row["id"] == pm_id and row["open_action_items"] == 0 and row["status"] == "final"
    _login(client, "vera")
    page = client.get(f"/postmortems/{pm_id}").text
    assert body["root_cause"].replace("'", "&#39;") in page and ">ana<" in page

    # Bad input is refused with the field named, and nothing changes.
    now = ledger.postmortem(pm_id)
    for bad, field in (
        ({"action_items": [{"text": "x", "status": "maybe"}]}, "status"),
        ({"status": "meh"}, "status"),
        ({"whatever": "x"}, "whatever"),
        ({"action_items": [{"text": "x", "priority": 1}]}, "priority"),
        ({"action_items": [{"text": ""}]}, "text"),
    ):
        r = client.put(f"/api/v1/postmortems/{pm_id}", json=bad, headers=editor)
        assert r.status_code == 422, bad
        assert any(err["loc"][-1] == field for err in r.json()["detail"]), r.json()
    assert ledger.postmortem(pm_id) == now
    r = client.put("/api/v1/postmortems/pm_nope", json={"impact": "x"}, headers=editor)
    assert r.status_code == 404


def test_the_input_model_covers_every_text_section() -> None:
    assert set(SECTIONS) <= set(pages_postmortems.PostMortemIn.model_fields)


def test_postmortems_paginate(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    exp_id, failure_id = _failure(ledger)
    ids = [draft_postmortem(ledger, failure_id).id for _ in range(60)]
    viewer = _headers(ledger, "vera")

    def get(**params: int) -> dict[str, Any]:
        r = client.get("/api/v1/postmortems", params=params, headers=viewer)
        assert r.status_code == 200, r.text
        got: dict[str, Any] = r.json()
        return got

    first = get()
    assert first["total"] == 60 and first["pages"] == 2 and first["page_size"] == 50
    items = first["items"]
    assert isinstance(items, list) and len(items) == 50
    assert items[0]["id"] == ids[-1]  # newest first
    assert items[0]["failure_id"] == failure_id and items[0]["failure_experiment_id"] == exp_id
    assert "ValueError" in items[0]["failure_title"]
    second = get(page=2)
    assert isinstance(second["items"], list) and len(second["items"]) == 10
    seen = [p["id"] for page in (1, 2) for p in get(page=page)["items"]]
    assert sorted(seen) == sorted(ids)  # pages neither overlap nor skip
    assert get(page=3)["items"] == []
    assert client.get("/api/v1/postmortems", params={"page": 0}, headers=viewer).status_code == 422

    _login(client, "vera")
    page = client.get("/postmortems").text
    assert page.count('<a href="/postmortems/pm_') == 50
    assert 'rel="next"' in page and 'rel="prev"' not in page and "page 1 of 2" in page
    assert f'href="/experiments/{exp_id}"' in page and "ValueError" in page
    page = client.get("/postmortems", params={"page": 2}).text
    assert page.count('<a href="/postmortems/pm_') == 10
    assert 'rel="prev"' in page and 'rel="next"' not in page and "page 2 of 2" in page
    assert re.search(r'href="/postmortems\?page=1" rel="prev"', page)
