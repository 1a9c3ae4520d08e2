"""The Monitors & alerts and Data pages and API, on SQLite and PostgreSQL.

The monitor is the demo's (a month of a self-reinforcing recommender judged daily, with
an incident and its post-mortem draft); the profile is a real one saved with
``hindsight.data``. What the pages show is checked against the store's own rows.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from hindsight.data import DatasetProfile, profile, save_profile
from hindsight.demo.monitor_act import MonitorResult, run_monitor_demo
from hindsight.ledger import Ledger, experiment
from hindsight.ledger.failures import record_failure
from hindsight.ledger.ids import new_id
from hindsight.ledger.records import iso as _iso
from hindsight.store import schema as t
from hindsight.store.listing_monitors import RECENT_WINDOWS, window_page
from hindsight.web import auth
from hindsight.web.app import create_app
from hindsight.web.context import PAGE_SIZE
from web_helpers import PASSWORD
from web_helpers import bearer as _bearer
from web_helpers import login as _login

MONITOR = "recommend-live"


@pytest.fixture
def server(any_ledger: Ledger) -> Iterator[tuple[Ledger, TestClient]]:
    store = any_ledger.store
    for name, role in (("vera", "viewer"), ("ed", "editor")):
        auth.create_user(store, name, role=role, password=PASSWORD)
    with TestClient(create_app(any_ledger)) as client:
        yield any_ledger, client


@pytest.fixture
def demo(server: tuple[Ledger, TestClient]) -> tuple[Ledger, TestClient, MonitorResult]:
    ledger, client = server
    result = run_monitor_demo(ledger, say=lambda _s: None)
    assert result.incident and result.postmortem
    return ledger, client, result


def _findings(ledger: Ledger, project: str, monitor: str) -> list[dict[str, Any]]:
    f = t.monitor_findings
    q = select(f.c.window_start, f.c.check_name, f.c.key, f.c.value, f.c.flagged).where(
        f.c.project == project, f.c.monitor == monitor
    )
    with ledger.store.read() as conn:
        rows = conn.execute(q).all()
    return [
        {"window_start": float(r[0]), "check": r[1], "key": r[2],
         "value": None if r[3] is None else float(r[3]), "flagged": bool(r[4])}
        for r in rows
    ]


def _sample_profile() -> DatasetProfile:
    rng = np.random.default_rng(7)
    n = 500
    ages = rng.normal(40, 12, n)
    table = pa.table({
        "age": pa.array([None if i % 25 == 0 else float(a) for i, a in enumerate(ages)]),
        "clicks": pa.array(rng.poisson(3, n).astype("int64")),
        "country": pa.array([("fr", "de", "<us>", "jp")[i % 4] for i in range(n)]),
    })
    return profile(table)


def iso(ts: float) -> str:
    text = _iso(ts)
    assert text is not None
    return text


def _svgs(page: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", page, flags=re.S)


def test_nothing_is_readable_anonymously(demo: tuple[Ledger, TestClient, MonitorResult]) -> None:
    ledger, client, _ = demo
    project = ledger.settings.project
    save_profile(_sample_profile(), "train", ledger=ledger)
    for path in ("/api/v1/monitors", f"/api/v1/monitors/{project}/{MONITOR}",
                 "/api/v1/profiles", f"/api/v1/profiles/{project}/train"):
        r = client.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
    for path in ("/monitors", f"/monitors/{project}/{MONITOR}?page=1", "/data",
                 f"/data/{project}/train"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path


def test_the_monitor_list_matches_the_store(demo: tuple[Ledger, TestClient, MonitorResult]
                                            ) -> None:
    ledger, client, result = demo
    project = ledger.settings.project
    rows = _findings(ledger, project, MONITOR)
    starts = sorted({r["window_start"] for r in rows})
    assert len(starts) == result.days == 21
    recent = set(starts[-RECENT_WINDOWS:])
    flagged_recent = sum(1 for r in rows if r["flagged"] and r["window_start"] in recent)
    assert flagged_recent > 0

    body = client.get("/api/v1/monitors", headers=_bearer(ledger, "vera")).json()
    (item,) = body["items"]
    assert (item["project"], item["monitor"]) == (project, MONITOR)
    assert item["windows_judged"] == 21 and item["windows_stored"] == 28
    assert item["last_window"] == starts[-1] and item["last_window_iso"] == iso(starts[-1])
    assert item["flagged_recent"] == flagged_recent
    assert item["checks"] == ["exposure", "holdout"]
    assert (item["open_incidents"], item["incidents"]) == (1, 1)

    _login(client, "vera")
    page = client.get("/monitors").text
    assert f'href="/monitors/{project}/{MONITOR}"' in page
    row = page.split(f'href="/monitors/{project}/{MONITOR}"', 1)[1].split("</tr>", 1)[0]
    assert "21 of 28" in row and iso(starts[-1]) in row
    assert f'<span class="pill warn">{flagged_recent}</span>' in row
    assert '<span class="pill bad">1</span>' in row


def test_the_monitor_page_shows_every_verdict_charts_and_the_incident(
    demo: tuple[Ledger, TestClient, MonitorResult],
) -> None:
    ledger, client, result = demo
    project = ledger.settings.project
    rows = _findings(ledger, project, MONITOR)
    viewer = _bearer(ledger, "vera")

    body = client.get(f"/api/v1/monitors/{project}/{MONITOR}", headers=viewer).json()
    assert (body["total"], body["page"], body["pages"], body["page_size"]) == (21, 1, 1, PAGE_SIZE)
    got = [
        {"window_start": w["window_start"], "check": f["check"], "key": f["key"],
         "value": f["value"], "flagged": f["flagged"]}
        for w in body["windows"] for f in w["findings"]
    ]
    key = lambda r: (r["window_start"], r["check"], r["key"])  # noqa: E731
    assert sorted(got, key=key) == sorted(rows, key=key)
    starts = [w["window_start"] for w in body["windows"]]
    assert starts == sorted(starts, reverse=True)  # newest first
    assert all(w["n_rows"] and w["n_rows"] > 0 for w in body["windows"])
    (incident,) = body["incidents"]
    assert incident["id"] == result.incident and incident["open"] is True
    assert incident["check"] == "holdout" and incident["severity"] == "critical"
    assert incident["postmortems"] == [{"id": result.postmortem, "status": "draft"}]

    # An incident that belongs to an experiment links to its page.
    with experiment("retrain", ledger=ledger, quiet=True) as exp:
        pass
    linked = record_failure(ledger, "exposure alert on the retrained model", source="monitor",
                            experiment_id=exp.id, extra={"monitor": "exposure"}).failure.id

    _login(client, "ed")
    page = client.get(f"/monitors/{project}/{MONITOR}").text
    # The table: one row per finding, with the window, check, key and verdict.
    table = page.split('id="windows"', 1)[1]
    assert table.count("<td class=\"verdict\">") == len(rows)
    assert table.count(">flagged</td>") == sum(r["flagged"] for r in rows)
    for s in {r["window_start"] for r in rows}:
        assert f"<td rowspan=\"2\">{iso(s)}</td>" in table
    assert "page 1 of 1" in page and 'rel="next"' not in page

    # One chart per check (each has one key), flagged windows as dots; no NaN or None.
    svgs = _svgs(page.split('id="charts"', 1)[1].split('id="windows"', 1)[0])
    assert len(svgs) == 2
    for svg, check in zip(svgs, ("exposure", "holdout"), strict=True):
        assert "NaN" not in svg and "None" not in svg and "nan" not in svg.lower()
        assert svg.count("<circle") == sum(r["flagged"] for r in rows if r["check"] == check)
        assert '<g class="flag">' in svg and 'class="cur"' in svg

    # The incidents, each with the one-click post-mortem form and its CSRF token.
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    for fid in (result.incident, linked):
        form = f'<form method="post" action="/failures/{fid}/postmortem">'
        assert form in page
        after = page.split(form, 1)[1].split("</form>", 1)[0]
        assert f'<input type="hidden" name="csrf" value="{csrf.group(1)}">' in after
        assert "Open post-mortem" in after
    assert f'<a href="/experiments/{exp.id}">' in page
    assert f'<a href="/postmortems/{result.postmortem}">' in page
    assert "2 open of 2" in page
    r = client.post(f"/failures/{linked}/postmortem", data={"csrf": csrf.group(1)},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/postmortems/pm_")

    # Viewers see the incidents but not the form.
    _login(client, "vera")
    page = client.get(f"/monitors/{project}/{MONITOR}").text
    assert result.incident is not None and result.incident in page
    assert 'action="/failures/' not in page


def test_unknown_monitors_and_profiles_are_404(
    server: tuple[Ledger, TestClient],
) -> None:
    ledger, client = server
    project = ledger.settings.project
    viewer = _bearer(ledger, "vera")
    for path in (f"/api/v1/monitors/{project}/nope", f"/api/v1/profiles/{project}/nope",
                 "/api/v1/profiles/elsewhere/nope"):
        r = client.get(path, headers=viewer)
        assert r.status_code == 404 and "nope" in r.json()["detail"], path
    _login(client, "vera")
    for path in (f"/monitors/{project}/nope", f"/data/{project}/nope"):
        r = client.get(path)
        assert r.status_code == 404 and "nope" in r.text
    assert "No monitor has logged a window yet." in client.get("/monitors").text
    assert "No profile stored yet." in client.get("/data").text
    assert client.get(f"/monitors/{project}/x?page=0").status_code == 422


def _synthetic_monitor(ledger: Ledger, project: str, name: str, windows: int) -> list[float]:
    """Findings of ``windows`` hourly windows, two checks each, some values missing."""
    t0, now = 1_767_225_600.0, time.time()
    starts = [t0 + 3600 * i for i in range(windows)]
    rows: list[dict[str, Any]] = [
        {"id": new_id("finding"), "project": project, "monitor": name, "window_start": s,
         "check_name": check, "key": "score", "value": None if check == "drift" and i % 10 == 3
         else float(i % 7) / 7, "flagged": i % 5 == 0, "detail": "", "evidence": {},
         "created_at": now, "schema_version": t.SCHEMA_VERSION}
        for i, s in enumerate(starts) for check in ("drift", "nulls")
    ]
    with ledger.store.write() as conn:
        conn.execute(t.monitor_findings.insert(), rows)
    return starts


def test_pages_of_windows(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    starts = _synthetic_monitor(ledger, "p", "hourly", 120)
    viewer = _bearer(ledger, "vera")

    seen: list[float] = []
    for page in (1, 2, 3):
        body = client.get("/api/v1/monitors/p/hourly", params={"page": page},
                          headers=viewer).json()
        assert (body["total"], body["page"], body["pages"]) == (120, page, 3)
        got = [w["window_start"] for w in body["windows"]]
        assert len(got) == (50 if page < 3 else 20)
        assert got == sorted(got, reverse=True)
        assert all(len(w["findings"]) == 2 and w["n_rows"] is None for w in body["windows"])
        seen += got
    assert seen == sorted(starts, reverse=True)  # no gap, no overlap
    past = client.get("/api/v1/monitors/p/hourly", params={"page": 4}, headers=viewer).json()
    assert past["windows"] == [] and past["total"] == 120

    _login(client, "vera")
    first = client.get("/monitors/p/hourly").text
    assert "page 1 of 3" in first and 'rel="prev"' not in first
    assert 'href="/monitors/p/hourly?page=2" rel="next"' in first
    middle = client.get("/monitors/p/hourly?page=2").text
    assert 'href="/monitors/p/hourly?page=1" rel="prev"' in middle
    assert 'href="/monitors/p/hourly?page=3" rel="next"' in middle
    last = client.get("/monitors/p/hourly?page=3").text
    assert "page 3 of 3" in last and 'rel="next"' not in last
    assert last.count('<td class="verdict">') == 40
    assert iso(starts[0]) in last and iso(starts[-1]) not in last.split('id="windows"', 1)[1]
    # Missing values are left out of the charts, never drawn as NaN or None.
    for svg in _svgs(first):
        assert "NaN" not in svg and "None" not in svg and "nan" not in svg.lower()
    assert len(_svgs(first)) == 2
    assert "No incident" in first


def test_a_window_page_is_one_read_and_one_count(server: tuple[Ledger, TestClient]) -> None:
    ledger, _client = server
    _synthetic_monitor(ledger, "p", "hourly", 60)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        statements.append(sql)

    event.listen(ledger.store.engine, "before_cursor_execute", seen)
    try:
        windows, total = window_page(ledger.store, "p", "hourly", offset=50, limit=50)
    finally:
        event.remove(ledger.store.engine, "before_cursor_execute", seen)
    assert (len(windows), total) == (10, 60)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, statements
    assert any("LIMIT" in s.upper() for s in selects)


def test_the_data_pages_show_the_stored_profile(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    project = ledger.settings.project
    prof = _sample_profile()
    save_profile(profile({"x": np.arange(10.0)}), "train", ledger=ledger)  # an older version
    record_id = save_profile(prof, "train", ledger=ledger)
    save_profile(profile({"y": np.arange(5.0)}), "holdout", ledger=ledger, project="other")
    viewer = _bearer(ledger, "vera")

    items = client.get("/api/v1/profiles", headers=viewer).json()["items"]
    assert [(i["project"], i["name"], i["versions"]) for i in items] == sorted(
        [(project, "train", 2), ("other", "holdout", 1)]
    )
    train = next(i for i in items if i["name"] == "train")
    assert (train["id"], train["n_rows"], train["n_columns"]) == (record_id, 500, 3)
    assert "data" not in train

    body = client.get(f"/api/v1/profiles/{project}/train", headers=viewer).json()
    assert body["id"] == record_id and body["digest"] == prof.digest
    assert body["columns"] == json.loads(json.dumps(prof.describe()["columns"]))
    assert body["columns"]["age"]["missing"] == 20

    _login(client, "vera")
    listing = client.get("/data").text
    assert f'href="/data/{project}/train"' in listing and 'href="/data/other/holdout"' in listing
    row = listing.split(f'href="/data/{project}/train"', 1)[1].split("</tr>", 1)[0]
    assert "<td>500</td>" in row and "<td>3</td>" in row

    page = client.get(f"/data/{project}/train").text
    for col, kind in (("age", "numeric"), ("clicks", "numeric"), ("country", "categorical")):
        assert f"<strong>{col}</strong>" in page
        assert f"<td>{kind}<br>" in page
    age = page.split("<strong>age</strong>", 1)[1].split("</tr>\n", 1)[0]
    assert "<td>500</td>" in age and "<td>20<br>" in age  # count and nulls
    for q, v in prof["age"].quantiles().items():  # type: ignore[union-attr]
        assert f"<th>{q}</th>" in age and v is not None
    median = prof["age"].quantiles()["p50"]  # type: ignore[union-attr]
    assert f"<td>{median:.4g}</td>" in age
    assert "&lt;us&gt;" in page and "<us>" not in page  # category labels are escaped
    for svg in _svgs(page):
        assert "NaN" not in svg and "None" not in svg and "nan" not in svg.lower()
    assert len(_svgs(page)) == 3  # two histograms, one bar chart of categories
    assert html.escape(prof.digest) in page
