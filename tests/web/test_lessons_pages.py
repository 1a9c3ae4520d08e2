"""The Lessons pages and API: auth, CSRF, filters and paging in SQL, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from hindsight.ledger import Ledger, add_lesson, experiment
from hindsight.store.listing_lessons import search_lessons
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
    for name, role in (("vera", "viewer"), ("ed", "editor")):
        auth.create_user(store, name, role=role, password=PASSWORD)
    with TestClient(create_app(any_ledger)) as client:
        yield any_ledger, client


def _run(ledger: Ledger, name: str = "run") -> str:
    with experiment(name, ledger=ledger, quiet=True) as exp:
        pass
    return exp.id


def _failed_run(ledger: Ledger, name: str = "crashy") -> tuple[str, str]:
    exp = experiment(name, ledger=ledger, quiet=True, hypothesis="it will not crash")
    with pytest.raises(ValueError), exp:
        raise ValueError("shapes (3,4) and (5,6) not aligned")
    failure_id = ledger.experiment_record(exp.id).failure_id
    assert failure_id
    return exp.id, failure_id


def _applied_by(ledger: Ledger, lesson_id: str) -> list[str]:
    return ledger.lessons_by_id([lesson_id])[0].applied_by


def test_nothing_is_readable_or_writable_anonymously(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    lesson = add_lesson(ledger, "Check shapes at config load.", tags=["shapes"])
    exp_id = _run(ledger)
    for path in ("/api/v1/lessons", f"/api/v1/lessons/{lesson.id}"):
        r = client.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
    r = client.post(f"/api/v1/lessons/{lesson.id}/apply", json={"experiment": exp_id})
    assert r.status_code == 401
    for path in ("/lessons", f"/lessons/{lesson.id}", "/lessons?tag=shapes"):
        page = client.get(path, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
    r = client.post(f"/lessons/{lesson.id}/apply", data={"experiment": exp_id, "csrf": "guess"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert _applied_by(ledger, lesson.id) == []


def test_viewers_cannot_apply_and_editors_can(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    lesson = add_lesson(ledger, "Warm up the learning rate.", tags=["lr"])
    exp_id = _run(ledger)
    viewer, editor = _bearer(ledger, "vera"), _bearer(ledger, "ed")

    r = client.post(f"/api/v1/lessons/{lesson.id}/apply", json={"experiment": exp_id},
                    headers=viewer)
    assert r.status_code == 403 and "editor role" in r.json()["detail"]
    assert _applied_by(ledger, lesson.id) == []
    # Viewers can read.
    assert client.get(f"/api/v1/lessons/{lesson.id}", headers=viewer).json()["applied_by"] == []

    # An editor applies it, by a prefix of the lesson's id; applying twice is one link.
    for _ in range(2):
        r = client.post(f"/api/v1/lessons/{lesson.id[:-2]}/apply", json={"experiment": exp_id},
                        headers=editor)
        assert r.status_code == 201, r.text
        assert r.json()["id"] == lesson.id and r.json()["applied_by"] == [exp_id]
    assert _applied_by(ledger, lesson.id) == [exp_id]
    got = client.get(f"/api/v1/lessons/{lesson.id}", headers=viewer).json()
    assert got == {**lesson.to_dict(), "applied_by": [exp_id]}

    # Unknown ids are 404s; an empty experiment (a prefix of every id) is refused.
    r = client.post(f"/api/v1/lessons/{lesson.id}/apply", json={"experiment": "exp_nope"},
                    headers=editor)
    assert r.status_code == 404 and "exp_nope" in r.json()["detail"]
    r = client.post("/api/v1/lessons/les_nope/apply", json={"experiment": exp_id},
                    headers=editor)
    assert r.status_code == 404
    for blank in ("", "   "):
        r = client.post(f"/api/v1/lessons/{lesson.id}/apply", json={"experiment": blank},
                        headers=editor)
        assert r.status_code == 422
    assert client.get("/api/v1/lessons/les_nope", headers=viewer).status_code == 404
    assert _applied_by(ledger, lesson.id) == [exp_id]


def test_the_form_needs_an_editor_and_the_csrf_token(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    lesson = add_lesson(ledger, "Pin the tokenizer version.")
    exp_id = _run(ledger)

    _login(client, "vera")
    page = client.get(f"/lessons/{lesson.id}").text
    assert "Applied by experiment" not in page  # no form offered to a viewer
    csrf = _csrf(client, f"/lessons/{lesson.id}")
    r = client.post(f"/lessons/{lesson.id}/apply", data={"experiment": exp_id, "csrf": csrf})
    assert r.status_code == 403 and _applied_by(ledger, lesson.id) == []

    _login(client, "ed")
    assert "Applied by experiment" in client.get(f"/lessons/{lesson.id}").text
    r = client.post(f"/lessons/{lesson.id}/apply", data={"experiment": exp_id})
    assert r.status_code == 403 and _applied_by(ledger, lesson.id) == []
    r = client.post(f"/lessons/{lesson.id}/apply",
                    data={"experiment": exp_id, "csrf": "x" * 43})
    assert r.status_code == 403 and _applied_by(ledger, lesson.id) == []
    csrf = _csrf(client, f"/lessons/{lesson.id}")
    r = client.post(f"/lessons/{lesson.id}/apply", data={"experiment": "", "csrf": csrf})
    assert r.status_code == 422 and _applied_by(ledger, lesson.id) == []
    r = client.post(f"/lessons/{lesson.id}/apply", data={"experiment": exp_id, "csrf": csrf},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/lessons/{lesson.id}#applied"
    assert _applied_by(ledger, lesson.id) == [exp_id]
    assert f'href="/experiments/{exp_id}"' in client.get(f"/lessons/{lesson.id}").text


def test_the_lesson_page_shows_sources_and_who_applied_it(
    server: tuple[Ledger, TestClient],
) -> None:
    ledger, client = server
    exp_id, failure_id = _failed_run(ledger)
    applier = _run(ledger, "fixed")
    lesson = add_lesson(ledger, "Check <shapes> when the config loads.",
                        tags=["shapes", "config"], sources=[exp_id, failure_id])
    with experiment("later", ledger=ledger, quiet=True, applies=[lesson.id]) as later:
        pass
    client.post(f"/api/v1/lessons/{lesson.id}/apply", json={"experiment": applier},
                headers=_bearer(ledger, "ed"))
    _login(client, "vera")

    r = client.get(f"/lessons/{lesson.id[:-3]}")  # a unique prefix resolves
    assert r.status_code == 200
    page = r.text
    assert "Check &lt;shapes&gt; when the config loads." in page  # escaped
    assert f'<a href="/experiments/{exp_id}">{exp_id}</a>' in page
    assert failure_id in page and f'href="/experiments/{failure_id}"' not in page
    for x in (applier, later.id):
        assert f'<a href="/experiments/{x}">{x}</a>' in page
    for t in ("shapes", "config"):
        assert f'href="/lessons?tag={t}"' in page
    assert client.get("/lessons/les_nope").status_code == 404

    # The list shows the counts: 2 sources, 2 experiments applied it.
    listing = client.get("/lessons").text
    row = listing.split(f'href="/lessons/{lesson.id}"', 1)[1].split("</tr>", 1)[0]
    assert re.findall(r'<td class="muted">(\d+)</td>', row) == ["2", "2"]
    item = client.get("/api/v1/lessons").json()["items"][0]
    assert item["id"] == lesson.id
    assert (item["source_count"], item["applied_count"]) == (2, 2)


def test_search_by_text_tag_and_project(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    a = add_lesson(ledger, "Lower the LEARNING rate after warmup.", tags=["lr", "optim"],
                   project="vision")
    b = add_lesson(ledger, "The learning curve flattens at 100% data.", tags=["lr-schedule"],
                   project="nlp")
    c = add_lesson(ledger, "Shard the dataset by host.", tags=["data_loading"], project="nlp")
    viewer = _bearer(ledger, "vera")

    def ids(**params: str) -> list[str]:
        r = client.get("/api/v1/lessons", params=params, headers=viewer)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == len(body["items"])
        return sorted(x["id"] for x in body["items"])

    assert ids() == sorted([a.id, b.id, c.id])
    assert ids(q="learning") == sorted([a.id, b.id])  # case-insensitive
    assert ids(q="Learning Rate") == [a.id]
    assert ids(q="%") == [b.id]  # LIKE wildcards are literal
    assert ids(q="data_") == []
    assert ids(q="_") == []
    assert ids(tag="lr") == [a.id]  # whole tags only, not "lr-schedule"
    assert ids(tag="l") == []
    assert ids(tag="data_loading") == [c.id]
    assert ids(tag="data%") == []
    assert ids(project="nlp") == sorted([b.id, c.id])
    assert ids(project="nlp", q="learning") == [b.id]
    assert ids(project="nlp", tag="lr") == []
    assert ids(project="nope") == []

    _login(client, "vera")
    page = client.get("/lessons", params={"q": "LEARNING", "project": "nlp"}).text
    assert f'href="/lessons/{b.id}"' in page
    assert f'href="/lessons/{a.id}"' not in page and f'href="/lessons/{c.id}"' not in page
    assert 'value="LEARNING"' in page and "<option selected>nlp</option>" in page
    page = client.get("/lessons", params={"tag": "nothing-has-this"}).text
    assert "No lesson matches." in page and "page 1 of 1" in page


def test_pages_of_120_lessons(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    made = [add_lesson(ledger, f"Lesson number {i}.", tags=["even" if i % 2 == 0 else "odd"])
            for i in range(120)]
    viewer = _bearer(ledger, "vera")

    seen: list[str] = []
    for page in (1, 2, 3):
        body = client.get("/api/v1/lessons", params={"page": page}, headers=viewer).json()
        assert (body["total"], body["page"], body["page_size"], body["pages"]) == (
            120, page, PAGE_SIZE, 3
        )
        assert len(body["items"]) == (50 if page < 3 else 20)
        stamps = [x["created_at"] for x in body["items"]]
        assert stamps == sorted(stamps, reverse=True)  # newest first
        seen += [x["id"] for x in body["items"]]
    assert len(seen) == len(set(seen)) == 120  # no overlap
    assert set(seen) == {les.id for les in made}  # no gap
    assert seen[0] == made[-1].id
    past = client.get("/api/v1/lessons", params={"page": 4}, headers=viewer).json()
    assert past["items"] == [] and past["total"] == 120
    assert client.get("/api/v1/lessons", params={"page": 0}, headers=viewer).status_code == 422

    odd = client.get("/api/v1/lessons", params={"tag": "odd", "page": 2}, headers=viewer).json()
    assert (odd["total"], odd["pages"], len(odd["items"])) == (60, 2, 10)

    _login(client, "vera")
    first = client.get("/lessons").text
    assert "page 1 of 3" in first and 'rel="prev"' not in first
    assert 'href="/lessons?page=2" rel="next"' in first
    middle = client.get("/lessons?page=2").text
    assert 'href="/lessons?page=1" rel="prev"' in middle
    assert 'href="/lessons?page=3" rel="next"' in middle and "page 2 of 3" in middle
    last = client.get("/lessons?page=3").text
    assert "page 3 of 3" in last and 'rel="next"' not in last
    assert len(re.findall(r'<a href="/lessons/les_', last)) == 20
    tagged = client.get("/lessons", params={"tag": "even"}).text
    assert "page 1 of 2" in tagged and 'href="/lessons?tag=even&amp;page=2" rel="next"' in tagged


def test_a_page_is_one_read_and_one_count_in_sql(server: tuple[Ledger, TestClient]) -> None:
    ledger, _client = server
    for i in range(60):
        add_lesson(ledger, f"Lesson {i} about caching.", tags=["cache"], project="p")
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        statements.append(sql)

    event.listen(ledger.store.engine, "before_cursor_execute", seen)
    try:
        rows, total = search_lessons(ledger.store, text="CACHING", tag="cache", project="p",
                                     offset=50, limit=50)
    finally:
        event.remove(ledger.store.engine, "before_cursor_execute", seen)
    assert (len(rows), total) == (10, 60)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, statements
    assert any("LIMIT" in s.upper() for s in selects)
