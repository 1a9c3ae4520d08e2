"""The Services pages and API: per-tier shares, rates and latency percentiles aggregated in
SQL, and real rollouts with their analyses, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import event

from hindsight.ledger import Ledger
from hindsight.serving import MockBackend, RulesBackend
from hindsight.serving.log import PredictionRecord
from hindsight.serving.rollout.base import Rollout
from hindsight.serving.service import Service
from hindsight.store.listing_services import service_summaries
from hindsight.web import auth
from hindsight.web.app import create_app

PASSWORD = "correct horse battery"
TIERS = ("model", "rules", "cache")
HOUR = 3600.0


@pytest.fixture
def server(any_ledger: Ledger) -> Iterator[tuple[Ledger, TestClient]]:
    auth.create_user(any_ledger.store, "vera", role="viewer", password=PASSWORD)
    app = create_app(any_ledger)
    with TestClient(app) as client:
        yield any_ledger, client


def _login(client: TestClient) -> None:
    r = client.post("/login", data={"name": "vera", "password": PASSWORD},
                    follow_redirects=False)
    assert r.status_code == 303, r.text


def _bearer(ledger: Ledger) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.create_token(ledger.store, 'vera', 'ci')}"}


def _log_loans(ledger: Ledger, seed: int = 7) -> list[dict[str, Any]]:
    """Prediction-log rows of a "loans" service, written with the log's own record type and
    the store's batch insert: 600 over the last 20 hours and 80 between 30 and 40 hours ago."""
    rng = np.random.default_rng(seed)
    now = time.time()
    ages = np.concatenate([rng.uniform(60, 20 * HOUR, 600), rng.uniform(30 * HOUR, 40 * HOUR, 80)])
    records = []
    for i, age in enumerate(ages):
        tier = str(rng.choice(TIERS, p=[0.7, 0.2, 0.1]))
        abstained = tier == "rules" and rng.random() < 0.5
        reason = "model: abstained (confidence 0.41 < 0.7)" if abstained else (
            "model: timeout" if tier != "model" else ""
        )
        records.append(PredictionRecord(
            service="loans", version=str(rng.choice(["3", "4"], p=[0.8, 0.2])),
            arm="baseline", tier=tier, reason=reason, inputs={"amount": i},
            output="approve", confidence=float(rng.uniform(0.3, 1.0)),
            latency_ms=float(rng.lognormal(2.0, 0.6)), fell_back=tier != "model",
            review_ticket=f"rev_{i}" if abstained or rng.random() < 0.05 else None,
            created_at=now - float(age),
        ).to_row())
    for k in range(0, len(records), 250):
        ledger.store.append_predictions(records[k:k + 250])
    return records


def _expected(rows: list[dict[str, Any]], hours: float) -> dict[str, Any]:
    """The numbers the pages should show, computed here with NumPy from the rows."""
    at = np.array([r["created_at"] for r in rows])
    keep = at >= time.time() - hours * HOUR
    tier = np.array([r["tier"] for r in rows])[keep]
    reason = np.array([r["reason"] for r in rows])[keep]
    ticket = np.array([r["review_ticket"] is not None for r in rows])[keep]
    version = np.array([r["version"] for r in rows])[keep]
    latency = np.array([r["latency_ms"] for r in rows])[keep]
    names, counts = np.unique(tier, return_counts=True)
    vnames, vcounts = np.unique(version, return_counts=True)
    return {
        "requests": int(keep.sum()),
        "tiers": {str(k): int(n) for k, n in zip(names, counts, strict=True)},
        "tier_shares": {str(k): float(n / keep.sum()) for k, n in zip(names, counts, strict=True)},
        "abstained_rate": float((np.char.find(np.char.lower(reason.astype(str)), "abstained") >= 0).mean()),
        "reviewed_rate": float(ticket.mean()),
        "versions": {str(k): int(n) for k, n in zip(vnames, vcounts, strict=True)},
        "p50_ms": float(np.percentile(latency, 50)),
        "p95_ms": float(np.percentile(latency, 95)),
        "hours_of": np.floor((at[keep] - (time.time() - hours * HOUR)) / HOUR).astype(int),
        "tier_array": tier,
    }


def _service(ledger: Ledger, name: str) -> Service:
    return Service(
        name, [MockBackend("a", name="model", version="1"), RulesBackend([], "popular")],
        store=ledger.store, ledger=ledger, deadline_ms=2000.0,
    )


def _drive(svc: Service, n: int, start: int = 0, users: int | None = None) -> list[Any]:
    async def go() -> list[Any]:
        return [await svc.predict({"i": i}, key=f"user-{i % (users or n + start)}")
                for i in range(start, start + n)]

    return asyncio.run(go())


def _failed_canary(ledger: Ledger) -> tuple[Rollout, list[dict[str, Any]]]:
    """A real canary of "recs" whose candidate is slower: its first interval fails."""
    clock = [1_000_000.0]
    svc = _service(ledger, "recs")
    canary = svc.start_canary(
        MockBackend("a", name="model-v2", version="2", latency_ms=4.0), steps=[20, 50, 100],
        interval_s=60, min_requests=30, tick_s=None, clock=lambda: clock[0],
    )
    intervals = 0
    while canary.active and intervals < 4:
        _drive(svc, 300, start=intervals * 300)
        clock[0] += 61
        canary.tick()
        intervals += 1
    assert canary.status_name == "rolled_back"
    svc.close()  # flushes the prediction log
    return canary, ledger.store.list_predictions(service="recs")


def _ab_test(ledger: Ledger) -> Rollout:
    """A real A/B test of "shop" with clicks (10 % control, 20 % treatment), stopped."""
    svc = _service(ledger, "shop")
    ab = svc.start_ab({"treatment": MockBackend("b", name="model-b", version="2")})
    responses = _drive(svc, 1200, users=300)
    svc.record_outcomes([
        {"prediction_id": r.id,
         "reward": 1.0 if i % 10 < (2 if r.arm == "treatment" else 1) else 0.0}
        for i, r in enumerate(responses)
    ])
    ab.stop()
    svc.close()
    return ab


def _leaves(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, str(k))
    elif isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
        for x in value:
            yield from _leaves(x, key)
    else:
        yield key, value


def _shown(v: Any) -> str | None:
    """How the page writes an analysis input (None: not checked as one piece)."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, str):
        return str(escape(v))
    return None


# -- tests ---------------------------------------------------------------------------


def test_nothing_is_readable_anonymously(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    _log_loans(ledger)
    for path in ("/api/v1/services", "/api/v1/services/loans", "/api/v1/rollouts"):
        r = client.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
    for path in ("/services", "/services/loans", "/services?hours=3"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path


def test_the_summary_matches_numpy_on_the_same_rows(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    rows = _log_loans(ledger)
    viewer = _bearer(ledger)
    for hours in (24, 48, 1):
        want = _expected(rows, hours)
        body = client.get("/api/v1/services", params={"hours": hours}, headers=viewer).json()
        assert body["hours"] == hours
        (got,) = [x for x in body["items"] if x["service"] == "loans"]
        assert got["requests"] == want["requests"] > 0
        assert got["tiers"] == want["tiers"]
        assert list(got["tiers"].values()) == sorted(want["tiers"].values(), reverse=True)
        assert got["tier_shares"] == pytest.approx(want["tier_shares"], abs=1e-12)
        assert sum(got["tier_shares"].values()) == pytest.approx(1.0)
        assert got["abstained_rate"] == pytest.approx(want["abstained_rate"], abs=1e-12)
        assert got["reviewed_rate"] == pytest.approx(want["reviewed_rate"], abs=1e-12)
        assert got["versions"] == want["versions"]
        # Exact percentiles: NumPy's linear interpolation, computed by the database.
        assert got["p50_ms"] == pytest.approx(want["p50_ms"], rel=1e-9)
        assert got["p95_ms"] == pytest.approx(want["p95_ms"], rel=1e-9)
        assert got["latest_rollout"] is None

        detail = client.get("/api/v1/services/loans", params={"hours": hours},
                            headers=viewer).json()
        assert {k: detail[k] for k in ("requests", "tiers", "p50_ms", "p95_ms")} == {
            k: got[k] for k in ("requests", "tiers", "p50_ms", "p95_ms")
        }
        # Per hour: the same counts NumPy bins the rows into.
        assert len(detail["hourly"]) == hours
        assert sum(h["total"] for h in detail["hourly"]) == want["requests"]
        for i, h in enumerate(detail["hourly"]):
            in_hour = want["tier_array"][np.minimum(want["hours_of"], hours - 1) == i]
            names, counts = np.unique(in_hour, return_counts=True)
            assert h["counts"] == {str(k): int(n) for k, n in zip(names, counts, strict=True)}
            if h["total"]:
                assert sum(h["shares"].values()) == pytest.approx(1.0)

    # The page shows the same numbers, formatted.
    _login(client)
    want = _expected(rows, 24)
    page = client.get("/services").text
    row = page.split('href="/services/loans?hours=24"', 1)[1].split("</tr>", 1)[0]
    cells = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert cells[0] == f"{want['requests']:,}"
    for tier in TIERS:
        assert f"{100 * want['tier_shares'][tier]:.1f}%" in cells
    assert f"{100 * want['abstained_rate']:.1f}%" in cells
    assert f"{100 * want['reviewed_rate']:.1f}%" in cells
    assert f"{want['p50_ms']:.1f} ms" in cells and f"{want['p95_ms']:.1f} ms" in cells
    # Rows logged without a running service have no breaker state: a dash, not "closed".
    assert "<th>Breakers</th>" in page and 'title="no breaker state recorded">—' in row
    detail = client.get("/services/loans").text
    assert "<svg" in detail and 'class="t0"' in detail and 'class="swatch t0"' in detail
    for tier in TIERS:
        assert f"{tier} {100 * want['tier_shares'][tier]:.1f}%" in detail
    for v in want["versions"]:
        assert f"<td>{v}</td>" in detail


def test_a_rolled_back_canary_and_an_ab_test(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    canary, recs_rows = _failed_canary(ledger)
    ab = _ab_test(ledger)
    viewer = _bearer(ledger)

    # The canary's service: numbers from its real prediction log.
    want = _expected(recs_rows, 24)
    got = client.get("/api/v1/services/recs", headers=viewer).json()
    assert got["requests"] == want["requests"] == len(recs_rows) > 0
    assert got["tiers"] == want["tiers"] and set(got["tiers"]) == {"model", "model-v2"}
    assert got["versions"] == want["versions"]
    assert got["p95_ms"] == pytest.approx(want["p95_ms"], rel=1e-9)
    assert got["latest_rollout"]["id"] == canary.id
    assert got["latest_rollout"]["status"] == "rolled_back"
    (ro,) = got["rollouts"]
    stored = ledger.store.get("rollout", canary.id)
    assert ro["analyses"] == stored["analyses"] and ro["analyses"]
    assert ro["experiment_id"] == canary.experiment.id  # type: ignore[union-attr]
    assert ro["failure_id"] == canary.failure_id and ro["lift"] == []

    # The A/B test gives a lift with its interval.
    shop = client.get("/api/v1/services/shop", headers=viewer).json()
    (lift,) = shop["rollouts"][0]["lift"]
    res = ab.analyses[-1]["lift"]["treatment"]
    assert lift["arm"] == "treatment" and lift["lift"] == pytest.approx(res["lift"])
    assert lift["lift_ci"][0] < lift["lift"] < lift["lift_ci"][1]

    # Rollouts, paged and filtered by service.
    everything = client.get("/api/v1/rollouts", headers=viewer).json()
    assert everything["total"] == 2 and [r["id"] for r in everything["items"]] == [ab.id, canary.id]
    only = client.get("/api/v1/rollouts", params={"service": "recs"}, headers=viewer).json()
    assert (only["total"], only["pages"], [r["id"] for r in only["items"]]) == (1, 1, [canary.id])
    assert client.get("/api/v1/rollouts", params={"page": 2}, headers=viewer).json()["items"] == []
    assert client.get("/api/v1/rollouts", params={"page": 0}, headers=viewer).status_code == 422

    _login(client)
    listing = client.get("/services").text
    for name in ("recs", "shop"):
        assert f'href="/services/{name}?hours=24"' in listing
    assert '<span class="pill bad">rolled_back</span>' in listing

    page = client.get("/services/recs").text
    exp_id = canary.experiment.id  # type: ignore[union-attr]
    assert f'<a href="/experiments/{exp_id}">{exp_id}</a>' in page and "Failed experiment" in page
    assert str(escape(canary.reason)) in page
    assert canary.failure_id is not None and canary.failure_id in page
    # Every interval's verdict and every input behind it is on the page.
    for a in stored["analyses"]:
        assert f'<span class="pill bad">{a["decision"]}</span>' in page or a["decision"] != "fail"
        for key, value in _leaves({k: v for k, v in a.items() if k != "at"}):
            text = _shown(value)
            assert key == "decision" or key in page, key  # the decision is its pill
            if text is not None:
                assert text in page, (key, value)

    shop_page = client.get("/services/shop").text
    assert "Lift over control" in shop_page
    assert f"{100 * res['lift']:.1f}%" in shop_page
    assert f"{100 * res['lift_ci'][0]:.1f}% to {100 * res['lift_ci'][1]:.1f}%" in shop_page
    for p in (page, shop_page, listing):
        for url in re.findall(r'(?:src|href|action)="([^"]*)"', p):
            assert not re.match(r"(?i)^(https?:)?//", url), url
            assert url.startswith(("/", "#")), url


def test_unknown_services_and_bad_windows(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    _log_loans(ledger)
    viewer = _bearer(ledger)
    r = client.get("/api/v1/services/nope", headers=viewer)
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    for hours in ("0", "721", "-3", "x"):
        for path in ("/api/v1/services", "/api/v1/services/loans"):
            assert client.get(path, params={"hours": hours}, headers=viewer).status_code == 422
    assert client.get("/api/v1/services", params={"hours": 720}, headers=viewer).status_code == 200
    _login(client)
    r = client.get("/services/nope")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    assert "nope" in r.text
    for hours in ("0", "721"):
        assert client.get("/services", params={"hours": hours}).status_code == 422
        assert client.get("/services/loans", params={"hours": hours}).status_code == 422
    # A window with nothing in it still lists the service, with no rates.
    items = client.get("/api/v1/services", params={"hours": 1}, headers=viewer).json()["items"]
    assert [x["service"] for x in items] == ["loans"]


def test_an_empty_store_and_a_quiet_service(server: tuple[Ledger, TestClient]) -> None:
    ledger, client = server
    viewer = _bearer(ledger)
    assert client.get("/api/v1/services", headers=viewer).json()["items"] == []
    _login(client)
    assert "No service has logged a request" in client.get("/services").text
    # Only old traffic: listed with zero requests and no rates or percentiles.
    old = PredictionRecord(service="quiet", version="1", arm="baseline", tier="model",
                           reason="", inputs=None, output=1, confidence=None, latency_ms=3.0,
                           created_at=time.time() - 100 * HOUR)
    ledger.store.append_predictions([old.to_row()])
    (row,) = client.get("/api/v1/services", headers=viewer).json()["items"]
    assert (row["service"], row["requests"], row["tiers"], row["p50_ms"]) == ("quiet", 0, {}, None)
    assert row["abstained_rate"] is None and row["last_seen"] == pytest.approx(old.created_at)
    page = client.get("/services/quiet")
    assert page.status_code == 200 and "No request in this window." in page.text
    assert not math.isnan(client.get("/api/v1/services/quiet", params={"hours": 200},
                                     headers=viewer).json()["p95_ms"])


def test_the_summary_is_a_few_grouped_queries(server: tuple[Ledger, TestClient]) -> None:
    ledger, _client = server
    _log_loans(ledger)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        statements.append(sql)

    event.listen(ledger.store.engine, "before_cursor_execute", seen)
    try:
        now = time.time()
        service_summaries(ledger.store, since=now - 24 * HOUR, until=now)
    finally:
        event.remove(ledger.store.engine, "before_cursor_execute", seen)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 7, selects  # with one for the breaker states
    assert sum("GROUP BY" in s.upper() for s in selects) >= 3
    # No statement fetches the prediction rows themselves (inputs, outputs).
    assert not any("predictions.inputs" in s for s in selects)
