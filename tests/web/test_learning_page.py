"""The learning page and its API: per-bucket learning metrics, as charts and tables.

Records are written straight into the store at chosen times, relative to W = Monday 00:00
UTC of the current week (the buckets of the page and the API end now, so the fixture must
sit in the past weeks of real time). Project "recsys":

=====  ====  =================  ==========================  ==========  ==========
exp    name  started            status                      outcome     tags
=====  ====  =================  ==========================  ==========  ==========
e1     mf    W-14D+1H  (+1H)    finished                    success     mf
e2     mf    W-13D     (+1H)    crashed -> f1 (fpX)         failure     mf
e3     mf    W-12D     (+1H)    finished                    success     mf, bpr
e4     mf    W-7D      (+1H)    crashed -> f2 (fpX)         failure     mf
e5     tt    W-5D      (+1H)    finished                    success     tt
=====  ====  =================  ==========================  ==========  ==========

e4 starts exactly on the boundary between week -2 and week -1. Lessons: l1 at W-13D+2H
from f1, applied by e3 at W-12D; l2 at W-11D from e1, never applied. Project "vision":
v1 resnet at W-6D, success, [resnet].

By hand, per week of recsys (weeks=4: week -3, -2, -1 and the current one):

- week -3: nothing: 0 experiments, no recovery, no lesson, 0 repeats, no innovation.
- week -2: e1, e2, e3 = 3 experiments; recovery e2 ends W-13D+1H -> e3 ends W-12D+1H =
  24 H; lessons l1 (applied), l2 -> 1 of 2; failure f1 is no repeat (0 of 1); e1 (mf)
  and e3 (bpr) bring a new tag -> 2 of 3.
- week -1: e4 (on the boundary: here, not in week -2), e5 = 2; e4's streak is not
  recovered in the week -> no median, 1 unrecovered; no lesson; f2 (fpX) repeats f1,
  which had l1 -> 1 of 1; e5 (tt) is new, e4 (mf) is not -> 1 of 2.
- this week: nothing.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hindsight.ledger import Ledger, learning_metrics
from hindsight.store.schema import SCHEMA_VERSION
from hindsight.web import auth, create_app
from hindsight.web.pages_learning import bucket_spans, learning_series

PASSWORD = "correct horse battery"
H = 3600.0
D = 24 * H
CHARTS = ("experiments", "recovery", "lessons", "repeats", "innovation")


def _week_start(now: float) -> float:
    day = dt.datetime.fromtimestamp(now, tz=dt.UTC).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return (day - dt.timedelta(days=day.weekday())).timestamp()


def _exp(ledger: Ledger, exp_id: str, name: str, started: float, status: str,
         outcome: str | None, tags: list[str], *, project: str = "recsys",
         failure_id: str | None = None) -> None:
    ledger.store.insert("experiment", {
        "id": exp_id, "project": project, "name": name, "hypothesis": "", "approach": "",
        "tags": tags, "config": {}, "criteria": {}, "status": status, "outcome": outcome,
        "verdicts": [], "summary": {}, "started_at": started, "ended_at": started + H,
        "duration_s": H, "failure_id": failure_id, "schema_version": SCHEMA_VERSION,
    })


def _failure(ledger: Ledger, failure_id: str, fp: str, created: float, exp_id: str) -> None:
    ledger.store.insert("failure", {
        "id": failure_id, "experiment_id": exp_id, "project": "recsys",
        "source": "experiment", "created_at": created, "exc_type": "ValueError",
        "message": fp, "frames": [], "log_tail": None, "exit_code": None,
        "fingerprint": fp, "masked_message": fp, "tokens": fp.lower(),
        "category": "code.error", "diagnosis": {}, "evidence": {},
        "schema_version": SCHEMA_VERSION,
    })


def _lesson(ledger: Ledger, lesson_id: str, created: float, source: str) -> None:
    ledger.store.insert("lesson", {
        "id": lesson_id, "project": "recsys", "text": f"lesson {lesson_id}", "tags": [],
        "created_at": created, "schema_version": SCHEMA_VERSION,
    })
    ledger.store.link_lesson(lesson_id, source, "source", created)


def _fill(ledger: Ledger, w: float) -> None:
    ok, crashed = ("finished", "success"), ("crashed", "failure")
    _exp(ledger, "exp_e1", "mf", w - 14 * D + H, *ok, ["mf"])
    _exp(ledger, "exp_e2", "mf", w - 13 * D, *crashed, ["mf"], failure_id="fail_f1")
    _exp(ledger, "exp_e3", "mf", w - 12 * D, *ok, ["mf", "bpr"])
    _exp(ledger, "exp_e4", "mf", w - 7 * D, *crashed, ["mf"], failure_id="fail_f2")
    _exp(ledger, "exp_e5", "tt", w - 5 * D, *ok, ["tt"])
    _exp(ledger, "exp_v1", "resnet", w - 6 * D, *ok, ["resnet"], project="vision")
    _failure(ledger, "fail_f1", "fpX", w - 13 * D + H, "exp_e2")
    _failure(ledger, "fail_f2", "fpX", w - 7 * D + H, "exp_e4")
    _lesson(ledger, "les_l1", w - 13 * D + 2 * H, "fail_f1")
    ledger.store.link_lesson("les_l1", "exp_e3", "applied", w - 12 * D)
    _lesson(ledger, "les_l2", w - 11 * D, "exp_e1")


#: By hand (see the module docstring), per week of recsys with weeks=4.
EXPECTED: dict[str, list[Any]] = {
    "experiments": [0, 3, 2, 0],
    "recovery_hours_median": [None, 24.0, None, None],
    "recoveries": [0, 1, 0, 0],
    "unrecovered": [0, 0, 1, 0],
    "lessons": [0, 2, 0, 0],
    "lessons_applied": [0, 1, 0, 0],
    "lesson_application_rate": [None, 0.5, None, None],
    "failures": [0, 1, 1, 0],
    "repeat_failures": [0, 0, 1, 0],
    "repeat_failure_rate": [None, 0.0, 1.0, None],
    "innovative_experiments": [0, 2, 1, 0],
    "innovation_index": [None, 2 / 3, 0.5, None],
}


def _check_against_learning_metrics(ledger: Ledger, points: list[dict[str, Any]],
                                    project: str | None) -> None:
    """Each point is learning_metrics over [start, end) of its bucket ([start, now] last)."""
    for i, p in enumerate(points):
        last = i == len(points) - 1
        assert p["until"] == (p["end"] if last else math.nextafter(p["end"], -math.inf))
        m = learning_metrics(ledger, project=project, since=p["start"], until=p["until"])
        for key in EXPECTED:
            assert p[key] == getattr(m, key), (p["start_iso"], key)


@pytest.fixture
def server(any_ledger: Ledger) -> Iterator[tuple[Ledger, TestClient, float]]:
    auth.create_user(any_ledger.store, "vera", role="viewer", password=PASSWORD)
    w = _week_start(time.time())
    _fill(any_ledger, w)
    with TestClient(create_app(any_ledger)) as client:
        yield any_ledger, client, w


def _viewer(ledger: Ledger) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.create_token(ledger.store, 'vera', 'ci')}"}


# -- the pure bucketing --------------------------------------------------------------


def test_bucket_spans_are_utc_weeks_or_days_ending_now() -> None:
    now = dt.datetime(2023, 11, 15, 12, 30, tzinfo=dt.UTC).timestamp()  # a Wednesday
    mon = dt.datetime(2023, 11, 13, tzinfo=dt.UTC).timestamp()
    assert bucket_spans(now, 2, "week") == [(mon - 7 * D, mon), (mon, now)]
    days = bucket_spans(now, 1, "day")
    assert len(days) == 7 and days[-1] == (now - 12.5 * H, now)
    assert days[0][0] == now - 12.5 * H - 6 * D
    assert all(b[0] == a[1] for a, b in itertools.pairwise(days))
    with pytest.raises(ValueError):
        bucket_spans(now, 0, "week")
    with pytest.raises(ValueError):
        bucket_spans(now, 1, "month")  # type: ignore[arg-type]


def test_series_by_hand_and_against_learning_metrics(
    any_ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = dt.datetime(2023, 11, 13, tzinfo=dt.UTC).timestamp()
    _fill(any_ledger, w)
    spans = bucket_spans(w + 2 * D, 4, "week")
    reads: list[dict[str, Any]] = []
    real = any_ledger.experiments

    def counted(**kwargs: Any) -> Any:
        reads.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(any_ledger, "experiments", counted)
    points = learning_series(any_ledger, spans, project="recsys")
    assert len(reads) == 1  # one read of the experiments for all four buckets
    monkeypatch.undo()
    assert [p["start"] for p in points] == [w - 21 * D, w - 14 * D, w - 7 * D, w]
    for key, values in EXPECTED.items():
        got = [p[key] for p in points]
        assert got == [pytest.approx(v) if v is not None else None for v in values], key
    _check_against_learning_metrics(any_ledger, points, "recsys")
    # All projects: v1 adds an innovative experiment to week -1.
    every = learning_series(any_ledger, spans)
    assert [p["experiments"] for p in every] == [0, 3, 3, 0]
    assert every[2]["innovation_index"] == pytest.approx(2 / 3)
    _check_against_learning_metrics(any_ledger, every, None)
    # By day, the counts add up to the same experiments, each in one bucket only.
    days = learning_series(any_ledger, bucket_spans(w + 2 * D, 4, "day"), project="recsys")
    assert len(days) == 28 and sum(p["experiments"] for p in days) == 5
    assert [p["experiments"] for p in days if p["start"] == w - 7 * D] == [1]


# -- the API ---------------------------------------------------------------------------


def test_api_points_match_learning_metrics(server: tuple[Ledger, TestClient, float]) -> None:
    ledger, client, w = server
    r = client.get("/api/v1/learning", params={"project": "recsys", "weeks": 4},
                   headers=_viewer(ledger))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["bucket"] == "week" and len(body["points"]) == 4
    points = body["points"]
    assert [p["start"] for p in points] == [w - 21 * D, w - 14 * D, w - 7 * D, w]
    for key, values in EXPECTED.items():
        got = [p[key] for p in points]
        assert got == [pytest.approx(v) if v is not None else None for v in values], key
    _check_against_learning_metrics(ledger, points, "recsys")
    totals = body["totals"]
    direct = learning_metrics(ledger, project="recsys", since=points[0]["start"],
                              until=totals["until"]).to_dict()
    assert totals == direct and totals["experiments"] == 5
    # Default: 12 weeks of all projects.
    r = client.get("/api/v1/learning", headers=_viewer(ledger))
    assert len(r.json()["points"]) == 12 and r.json()["totals"]["experiments"] == 6
    # By day.
    r = client.get("/api/v1/learning", params={"bucket": "day", "weeks": 3},
                   headers=_viewer(ledger))
    days = r.json()["points"]
    assert len(days) == 21 and all(p["end"] - p["start"] <= D + 1 for p in days)
    _check_against_learning_metrics(ledger, days, None)


def test_anonymous_and_bad_params(server: tuple[Ledger, TestClient, float]) -> None:
    ledger, client, _ = server
    r = client.get("/api/v1/learning")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    page = client.get("/learning?weeks=4", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
    viewer = _viewer(ledger)
    for params in ({"weeks": 0}, {"weeks": 105}, {"bucket": "month"}, {"weeks": "x"}):
        assert client.get("/api/v1/learning", params=params,
                          headers=viewer).status_code == 422, params
        assert client.get("/learning", params=params, headers=viewer).status_code == 422
    assert "learning" in client.get("/api/openapi.json").json()["paths"][
        "/api/v1/learning"]["get"]["tags"]


# -- the page --------------------------------------------------------------------------


def _section(html: str, key: str) -> str:
    m = re.search(rf'<section id="{key}">(.*?)</section>', html, re.S)
    assert m is not None, key
    return m.group(1)


def _rows(section: str) -> list[list[str]]:
    body = re.search(r"<tbody>(.*?)</tbody>", section, re.S)
    assert body is not None
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr)
            for tr in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)]


def test_page_has_a_chart_and_a_table_per_metric(
    server: tuple[Ledger, TestClient, float],
) -> None:
    _, client, _ = server
    r = client.post("/login", data={"name": "vera", "password": PASSWORD},
                    follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/learning", params={"project": "recsys", "weeks": 4})
    assert page.status_code == 200, page.text
    html = page.text
    assert html.count("<svg") == len(CHARTS)
    assert "<option selected>recsys</option>" in html and "vision" in html
    points = client.get("/api/v1/learning", params={"project": "recsys", "weeks": 4}).json()[
        "points"]
    labels = [p["start_iso"][:10] for p in points]
    labels[-1] += " (so far)"

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{100 * v:.0f}%"

    want = {
        "experiments": [[str(p["experiments"])] for p in points],
        "recovery": [["—" if p["recovery_hours_median"] is None
                      else f"{p['recovery_hours_median']:.1f}",
                      str(p["recoveries"]), str(p["unrecovered"])] for p in points],
        "lessons": [[pct(p["lesson_application_rate"]), str(p["lessons_applied"]),
                     str(p["lessons"])] for p in points],
        "repeats": [[str(p["repeat_failures"]), str(p["failures"]),
                     pct(p["repeat_failure_rate"])] for p in points],
        "innovation": [[pct(p["innovation_index"]), str(p["innovative_experiments"]),
                        str(p["experiments"])] for p in points],
    }
    assert want["experiments"] == [["0"], ["3"], ["2"], ["0"]]
    assert want["recovery"][1] == ["24.0", "1", "0"] and want["lessons"][1][0] == "50%"
    assert want["innovation"][1][0] == "67%" and want["repeats"][2] == ["1", "1", "100%"]
    for key in CHARTS:
        section = _section(html, key)
        assert section.count("<svg") == 1 and 'role="img"' in section
        assert re.search(r'aria-label="[^"]+"', section)
        rows = _rows(section)
        assert [row[0] for row in rows] == labels, key
        assert [row[1:] for row in rows] == want[key], key
        svg = section[section.index("<svg"):section.index("</svg>")]
        assert "nan" not in svg.lower() and "none" not in svg.lower() and "inf" not in svg
    # Empty buckets are gaps where the metric is undefined: the recovery chart has one
    # value (a dot, no line); innovation has two neighbouring values (one line); counts
    # are 0 in empty weeks, so velocity is one line over all four.
    def svg_of(key: str) -> str:
        s = _section(html, key)
        return s[s.index("<svg"):s.index("</svg>")]

    assert svg_of("recovery").count('class="cur"') == 0
    assert svg_of("recovery").count("<circle") == 1
    assert svg_of("innovation").count('class="cur"') == 1
    assert svg_of("innovation").count("<circle") == 2
    assert svg_of("experiments").count("<circle") == 4
    assert "that week alone" in html
    # Offline: every src and href stays on this server.
    for attr, url in re.findall(r'\b(src|href)="([^"]*)"', html):
        assert url.startswith(("/", "#")) and not url.startswith("//"), (attr, url)
    assert "http://" not in html and "https://" not in html
    # An empty store still renders a chart per metric, with a table.
    empty = client.get("/learning", params={"project": "nothing-here", "weeks": 1,
                                            "bucket": "day"})
    assert empty.status_code == 200 and empty.text.count("<svg") == len(CHARTS)
    assert "No value in this window." in empty.text
