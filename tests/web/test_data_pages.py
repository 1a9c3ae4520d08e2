"""The Data pages' stored drift reports and their API, on SQLite and PostgreSQL.

The reports are real ones from ``hindsight.drift_report``; what the pages and the API show
is checked against the report's own figures. (The profile half of the Data pages is
covered in ``test_monitor_pages.py``.)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from hindsight.data import profile, save_profile
from hindsight.drift import DriftReport, drift_report, save_drift_report
from hindsight.ledger import Ledger
from hindsight.web import auth
from hindsight.web.app import create_app
from hindsight.web.context import PAGE_SIZE
from web_helpers import PASSWORD
from web_helpers import bearer as _bearer
from web_helpers import login as _login


@pytest.fixture
def server(any_ledger: Ledger) -> Iterator[tuple[Ledger, TestClient]]:
    store = any_ledger.store
    for name, role in (("vera", "viewer"), ("ed", "editor")):
        auth.create_user(store, name, role=role, password=PASSWORD)
    with TestClient(create_app(any_ledger)) as client:
        yield any_ledger, client


@pytest.fixture(scope="module")
def reports() -> tuple[DriftReport, DriftReport]:
    """Two of four columns drift (a number and a category with a new, '<b>'-ish label),
    and a schema change; and a report in which nothing drifts."""
    rng = np.random.default_rng(11)
    n = 2500
    plans = ["basic", "pro", "<team>"]
    ref = {"age": rng.normal(40, 10, n), "plan": rng.choice(plans, n),
           "y": rng.exponential(1, n), "clicks": rng.poisson(3, n).astype(float),
           "gone": np.zeros(n)}
    cur = {"age": rng.normal(47, 10, n), "plan": rng.choice([*plans, "<b>new</b>"], n),
           "y": rng.exponential(1, n), "clicks": rng.poisson(3, n).astype(float)}
    drifted = drift_report(ref, cur)
    assert sorted(drifted.drifted_columns) == ["age", "plan"]
    same = {k: np.array(v, copy=True) for k, v in ref.items()}
    stable = drift_report(ref, same)
    assert not stable.drift_detected
    return drifted, stable


def _doc(report: DriftReport) -> dict[str, Any]:
    return json.loads(report.to_json())


def _svgs(html: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", html, flags=re.S)


def _figure(page: str, column: str) -> str:
    """The distributions figure of one column."""
    for fig in re.findall(r'<figure class="dist".*?</figure>', page, flags=re.S):
        if f"<figcaption><strong>{column}</strong>" in fig:
            return str(fig)
    raise AssertionError(f"no figure for {column}")


def test_nothing_is_readable_or_writable_anonymously(
    server: tuple[Ledger, TestClient], reports: tuple[DriftReport, DriftReport]
) -> None:
    ledger, client = server
    report_id = save_drift_report(reports[0], "nightly", ledger=ledger)
    for path in ("/api/v1/drift-reports", f"/api/v1/drift-reports/{report_id}"):
        r = client.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
    r = client.post("/api/v1/drift-reports", params={"name": "sneaky"}, json=_doc(reports[0]))
    assert r.status_code == 401
    for path in ("/data", f"/data/drift/{report_id}", "/data?drifted=yes"):
        page = client.get(path, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login?next="), path
    assert ledger.store.list_drift_reports()[1] == 1


def test_editors_post_reports_and_viewers_cannot(
    server: tuple[Ledger, TestClient], reports: tuple[DriftReport, DriftReport]
) -> None:
    ledger, client = server
    doc = _doc(reports[0])
    viewer, editor = _bearer(ledger, "vera"), _bearer(ledger, "ed")

    r = client.post("/api/v1/drift-reports", params={"name": "ci"}, json=doc, headers=viewer)
    assert r.status_code == 403 and "editor role" in r.json()["detail"]
    assert ledger.store.list_drift_reports()[1] == 0

    r = client.post("/api/v1/drift-reports", params={"name": "ci", "project": "shop"}, json=doc,
                    headers=editor)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["id"].startswith("drf_") and made["url"] == f"/data/drift/{made['id']}"
    assert (made["project"], made["name"], made["n_columns"], made["n_drifted"]) == (
        "shop", "ci", 4, 2)
    assert made["drift_detected"] is True and "report" not in made
    got = client.get(f"/api/v1/drift-reports/{made['id']}", headers=viewer).json()
    assert got["report"] == doc and got["project"] == "shop"
    # Without a project the report goes to the server's.
    r = client.post("/api/v1/drift-reports", params={"name": "ci"}, json=doc, headers=editor)
    assert r.status_code == 201 and r.json()["project"] == ledger.settings.project


def _without(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != key}


def test_malformed_posts_are_422_with_a_message(
    server: tuple[Ledger, TestClient], reports: tuple[DriftReport, DriftReport]
) -> None:
    ledger, client = server
    editor = _bearer(ledger, "ed")
    doc = _doc(reports[0])
    nan_stat = json.loads(json.dumps(doc))
    nan_stat["columns"][0]["statistic"] = math.nan
    nan_detail = json.loads(json.dumps(doc))
    nan_detail["columns"][0]["details"]["null_level"] = math.inf
    bad_plot = json.loads(json.dumps(doc))
    bad_plot["columns"][0]["plot"] = {"type": "violin"}
    cases: list[tuple[Any, dict[str, str], list[Any], str]] = [
        ({"hello": "world"}, {"name": "x"}, ["body", "schema"], "Field required"),
        ({**doc, "schema": "hindsight.check_report/1"}, {"name": "x"}, ["body", "schema"],
         "'hindsight.drift_report/1'"),
        (_without(doc, "columns"), {"name": "x"}, ["body", "columns"], "Field required"),
        ({**doc, "drift_detected": "yes"}, {"name": "x"}, ["body", "drift_detected"],
         "valid boolean"),
        (nan_stat, {"name": "x"}, ["body", 0], "NaN is not JSON"),
        (bad_plot, {"name": "x"}, ["body", "columns", 0, "plot"], "'violin'"),
        (nan_detail, {"name": "x"}, ["body", 0], "Infinity is not JSON"),
        (doc, {"name": "   "}, ["query", "name"], "should match pattern"),
        (doc, {"name": "x", "project": "a\tb"}, ["query", "project"], "should match pattern"),
        (doc, {}, ["query", "name"], "Field required"),
        ([doc], {"name": "x"}, ["body"], "valid dictionary"),
    ]
    for body, params, loc, message in cases:
        # Python's json writes NaN and Infinity as bare words, as some clients do.
        r = client.post("/api/v1/drift-reports", params=params, content=json.dumps(body),
                        headers={**editor, "content-type": "application/json"})
        assert r.status_code == 422, (message, r.text)
        errors = r.json()["detail"]
        assert any(e["loc"] == loc and message in f"{e['msg']} {e.get('ctx')}" for e in errors), (
            message, errors)
    r = client.post("/api/v1/drift-reports", params={"name": "x"}, content=b"{not json",
                    headers={**editor, "content-type": "application/json"})
    assert r.status_code == 422
    assert ledger.store.list_drift_reports() == ([], 0)  # nothing stored


def test_a_posted_summary_is_taken_from_its_columns(
    server: tuple[Ledger, TestClient], reports: tuple[DriftReport, DriftReport]
) -> None:
    ledger, client = server
    lying = {**_doc(reports[0]), "drifted_columns": [], "n_columns_tested": 1}
    r = client.post("/api/v1/drift-reports", params={"name": "x"}, json=lying,
                    headers=_bearer(ledger, "ed"))
    assert r.status_code == 201 and r.json()["n_drifted"] == 2
    stored = ledger.store.get_drift_report(r.json()["id"])["report"]
    assert sorted(stored["drifted_columns"]) == ["age", "plan"] and stored["n_columns_tested"] == 4


def test_the_report_page_shows_verdict_columns_and_distributions(
    server: tuple[Ledger, TestClient], reports: tuple[DriftReport, DriftReport]
) -> None:
    ledger, client = server
    drifted, _ = reports
    report_id = save_drift_report(drifted, "nightly", ledger=ledger, project="shop")
    _login(client, "vera")
    page = client.get(f"/data/drift/{report_id}").text

    verdict = page.split('id="verdict"', 1)[1].split("</div>", 1)[0]
    assert '<span class="pill bad">drift detected</span>' in verdict
    assert "2 of 4 columns drifted" in verdict
    assert "Benjamini-Hochberg" in verdict and "below 0.05" in verdict  # the rule

    changes = page.split('id="schema-changes"', 1)[1].split("</table>", 1)[0]
    assert "<td>gone</td><td>missing from current</td><td>numeric</td>" in changes

    table = page.split('class="drift-columns"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr class=\"(drifted|stable)\">(.*?)</tr>", table, flags=re.S)
    assert len(rows) == 4
    assert [k for k, _ in rows].count("drifted") == len(drifted.drifted_columns) == 2
    assert table.count('<span class="pill bad">drift</span>') == 2
    by_name = {re.search(r"<strong>(.*?)</strong>", r).group(1): r for _, r in rows}  # type: ignore[union-attr]
    assert set(by_name) == {"age", "plan", "y", "clicks"}
    age = drifted["age"]
    assert "<td>ks</td>" in by_name["age"] and f"{age.statistic:.4g}" in by_name["age"]
    assert f"{age.p_value:.2e}" in by_name["age"] and f"{age.effect_size:.4g}" in by_name["age"]
    assert "<td>chi_square</td>" in by_name["plan"]
    assert '<span class="pill good">ok</span>' in by_name["y"]

    # Distributions: a histogram (reference area, current line) for the drifted number,
    # paired bars for the drifted category, the new label escaped.
    age_fig = _figure(page, "age")
    assert '<path class="ref"' in age_fig and '<path class="cur"' in age_fig
    plan_fig = _figure(page, "plan")
    ref_bars = re.findall(r'<rect class="ref" [^>]*width="([0-9.]+)"', plan_fig)
    cur_bars = re.findall(r'<rect class="curbar" [^>]*width="([0-9.]+)"', plan_fig)
    labels = drifted["plan"].plot["labels"]
    assert len(ref_bars) == len(cur_bars) == len(labels) == 4
    assert sum(float(w) > 0 for w in cur_bars) == 4  # every category is seen now
    assert sum(float(w) > 0 for w in ref_bars) == 3  # the new one was not before
    assert "&lt;b&gt;new&lt;/b&gt; (new)" in plan_fig and "<b>new</b>" not in page
    assert "&lt;team&gt;" in plan_fig and "<team>" not in page
    assert len(_svgs(page)) == 4
    for svg in _svgs(page):
        assert "NaN" not in svg and "None" not in svg and "nan" not in svg.lower()


def test_the_listing_pages_and_filters(
    server: tuple[Ledger, TestClient], reports: tuple[DriftReport, DriftReport]
) -> None:
    ledger, client = server
    drifted, stable = reports
    ids = [save_drift_report(drifted if i % 4 == 0 else stable, "hourly", ledger=ledger,
                             project="shop") for i in range(PAGE_SIZE + 5)]
    other = save_drift_report(drifted, "<weekly>", ledger=ledger, project="ads")
    newest_first = [other, *reversed(ids)]
    viewer = _bearer(ledger, "vera")

    seen: list[str] = []
    for page in (1, 2):
        body = client.get("/api/v1/drift-reports", params={"page": page}, headers=viewer).json()
        assert (body["total"], body["page"], body["pages"], body["page_size"]) == (
            PAGE_SIZE + 6, page, 2, PAGE_SIZE)
        assert len(body["items"]) == (PAGE_SIZE if page == 1 else 6)
        assert all("report" not in i for i in body["items"])
        seen += [i["id"] for i in body["items"]]
    assert seen == newest_first
    yes = client.get("/api/v1/drift-reports", params={"drifted": "yes"}, headers=viewer).json()
    assert yes["total"] == 14 + 1 and all(i["n_drifted"] == 2 for i in yes["items"])
    no = client.get("/api/v1/drift-reports", params={"drifted": "no", "project": "shop"},
                    headers=viewer).json()
    assert no["total"] == PAGE_SIZE + 5 - 14 and all(not i["drift_detected"] for i in no["items"])
    named = client.get("/api/v1/drift-reports", params={"name": "<weekly>"}, headers=viewer)
    assert [i["id"] for i in named.json()["items"]] == [other]
    assert client.get("/api/v1/drift-reports", params={"drifted": "maybe"},
                      headers=viewer).status_code == 422

    _login(client, "vera")
    first = client.get("/data").text
    listed = first.split('class="drift-reports"', 1)[1].split("</table>", 1)[0]
    assert listed.count('href="/data/drift/drf_') == PAGE_SIZE
    assert f'href="/data/drift/{other}"' in listed and "&lt;weekly&gt;" in listed
    assert "<weekly>" not in first
    row = listed.split(f'href="/data/drift/{other}"', 1)[1].split("</tr>", 1)[0]
    assert '<span class="pill bad">drift</span>' in row and "2 of 4" in row
    assert "page 1 of 2" in first and 'href="/data?page=2" rel="next"' in first
    last = client.get("/data?page=2").text
    assert last.split('class="drift-reports"', 1)[1].split("</table>", 1)[0].count(
        'href="/data/drift/drf_') == 6
    assert 'href="/data?page=1" rel="prev"' in last and 'rel="next"' not in last

    filtered = client.get("/data", params={"project": "shop", "drifted": "yes"}).text
    listed = filtered.split('class="drift-reports"', 1)[1].split("</table>", 1)[0]
    assert listed.count('href="/data/drift/drf_') == 14 and other not in listed
    assert "Drift reports <span class=\"muted\">(14)</span>" in filtered
    assert '<option selected>shop</option>' in filtered
    assert '<option value="yes" selected>' in filtered
    none = client.get("/data", params={"name": "nope"}).text
    assert "No drift report matches." in none and "No profile stored yet." in none


def test_profiles_share_the_page_and_unknown_reports_are_404(
    server: tuple[Ledger, TestClient], reports: tuple[DriftReport, DriftReport]
) -> None:
    ledger, client = server
    save_profile(profile({"x": np.arange(30.0)}), "train", ledger=ledger, project="shop")
    # A profile in a project called "drift" still has its page.
    save_profile(profile({"z": np.arange(5.0)}), "holdout", ledger=ledger, project="drift")
    save_drift_report(reports[1], "nightly", ledger=ledger, project="shop")
    viewer = _bearer(ledger, "vera")
    r = client.get("/api/v1/drift-reports/drf_0000nope", headers=viewer)
    assert r.status_code == 404 and "drf_0000nope" in r.json()["detail"]

    _login(client, "vera")
    page = client.get("/data").text
    assert 'href="/data/shop/train"' in page and 'href="/data/drift/holdout"' in page
    assert '<span class="pill good">no drift</span>' in page
    only_shop = client.get("/data?project=shop").text
    assert 'href="/data/shop/train"' in only_shop and "/data/drift/holdout" not in only_shop
    assert "<strong>z</strong>" in client.get("/data/drift/holdout").text
    missing = client.get("/data/drift/drf_0000nope")
    assert missing.status_code == 404 and "drf_0000nope" in missing.text
    assert client.get("/data?page=0").status_code == 422
    empty = client.get("/data?project=elsewhere").text
    assert "No drift report matches." in empty and "No profile matches" in empty
