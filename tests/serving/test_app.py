"""The HTTP API over real services: serving, outcomes, review, rollouts, auth, health, metrics."""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from hindsight.errors import ConfigError
from hindsight.serving import AbstentionPolicy, CircuitBreaker, MockBackend, RulesBackend, Tier
from hindsight.serving.app import create_app, serve
from hindsight.serving.log import PredictionLog
from hindsight.serving.service import Service
from hindsight.store import Store, open_store

with warnings.catch_warnings():
    # Starlette nags when its test client runs on httpx rather than httpx2; nothing to fix here.
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

MakeService = Callable[..., Service]


def _rules() -> RulesBackend:
    return RulesBackend([(lambda x: x.get("amount", 0) > 1000, "decline", 1.0)], "approve")


@pytest.fixture
def make_service(tmp_path: Path) -> Iterator[MakeService]:
    """Builds services (a fresh SQLite store each with ``store=True``); closes them all after."""
    services: list[Service] = []
    stores: list[Store] = []

    def make(*tiers: Any, store: bool = False, name: str = "loans", **kw: Any) -> Service:
        if store:
            s = open_store(f"sqlite:///{tmp_path / f'h{len(stores)}.db'}")
            stores.append(s)
            kw["store"] = s
        if not tiers:
            tiers = (MockBackend("approve", name="model", confidence=0.9), _rules())
        svc = Service(name, list(tiers), **kw)
        services.append(svc)
        return svc

    yield make
    for svc in services:
        svc.close()
    for s in stores:
        s.close()


@contextmanager
def _client(service: Service, token: str = TOKEN) -> Iterator[TestClient]:
    with TestClient(create_app(service, token=token)) as client:
        yield client


def _reviewed(make_service: MakeService, **kw: Any) -> Service:
    """A service that abstains on every request: the model is never confident enough."""
    return make_service(
        MockBackend("approve", name="model", confidence=0.5),
        _rules(),
        abstention=AbstentionPolicy(min_confidence=0.7),
        **kw,
    )


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of the one sample called ``name`` with exactly these labels."""
    found = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and s.labels == labels
    ]
    assert len(found) == 1, (name, labels, found)
    return float(found[0])


# -- building the app -----------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "   "])
def test_the_app_refuses_to_build_without_a_token(
    make_service: MakeService, token: str | None
) -> None:
    with pytest.raises(ConfigError, match="HINDSIGHT_SERVE_TOKEN"):
        create_app(make_service(), token=token)


def test_importing_hindsight_serving_does_not_import_fastapi() -> None:
    code = "import sys, hindsight.serving; print('fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_openapi_declares_the_bearer_scheme_on_protected_endpoints(
    make_service: MakeService,
) -> None:
    with _client(make_service(), token=TOKEN) as client:
        spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    paths = spec["paths"]
    for path, method in [("/status", "get"), ("/outcomes", "post"), ("/review", "get"),
                         ("/rollout/canary", "post"), ("/review/{item_id}/decide", "post")]:  # fmt: skip
        assert paths[path][method]["security"] == [{"bearer": []}], path
        assert {"401", "403"} <= set(paths[path][method]["responses"]), path
    for path, method in [("/predict", "post"), ("/health", "get"), ("/metrics", "get")]:
        assert "security" not in paths[path][method], path
    body = spec["components"]["schemas"]["PredictRequest"]
    assert body["additionalProperties"] is False
    assert body["properties"]["inputs"]["type"] == "object"
    assert body["properties"]["inputs"]["description"]


# -- /predict -------------------------------------------------------------------------------


def test_predict_answers_from_the_primary(make_service: MakeService) -> None:
    with _client(make_service()) as client:
        r = client.post("/predict", json={"inputs": {"amount": 10}, "request_id": "req-1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["output"], body["tier"], body["arm"], body["fell_back"]) == (
        "approve",
        "model",
        "baseline",
        False,
    )
    assert body["request_id"] == "req-1"
    assert body["id"].startswith("pred_")
    assert body["confidence"] == 0.9
    assert [a["outcome"] for a in body["attempts"]] == ["answered"]


def test_predict_falls_back_to_the_rules_and_says_why(make_service: MakeService) -> None:
    svc = make_service(MockBackend(name="model", fail_every=1), _rules())
    with _client(svc) as client:
        body = client.post("/predict", json={"inputs": {"amount": 5000}}).json()
    assert (body["output"], body["tier"], body["fell_back"]) == ("decline", "rules", True)
    assert "model: error (RuntimeError" in body["reason"]
    assert "failed on purpose" in body["reason"]
    assert [a["outcome"] for a in body["attempts"]] == ["error", "answered"]


def test_predict_is_503_when_every_tier_fails(make_service: MakeService) -> None:
    svc = make_service(
        MockBackend(name="model", fail_every=1), MockBackend(name="last", fail_every=1)
    )
    with _client(svc) as client:
        r = client.post("/predict", json={"inputs": {"amount": 1}})
        status = client.get("/status", headers=AUTH).json()
    assert r.status_code == 503
    assert r.json()["error"] == "fallback_exhausted"
    assert "Every tier failed" in r.json()["detail"]
    assert "last: error" in r.json()["detail"]
    assert status["counters"]["exhausted"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"inputs": [1, 2]}, "body.inputs"),
        ({"inputs": "amount=3"}, "body.inputs"),
        ({}, "body.inputs"),
        ({"inputs": {}, "surprise": 1}, "body.surprise"),
        ({"inputs": {}, "request_id": "r" * 201}, "body.request_id"),
        ({"inputs": {}, "key": 7}, "body.key"),
    ],
)
def test_bad_predict_bodies_are_422_naming_the_field(
    make_service: MakeService, body: dict[str, Any], field: str
) -> None:
    with _client(make_service()) as client:
        r = client.post("/predict", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request"
    assert r.json()["detail"].startswith(f"{field}: ")
    assert r.json()["errors"][0]["loc"] == field.split(".")


def test_malformed_json_is_422(make_service: MakeService) -> None:
    with _client(make_service()) as client:
        r = client.post(
            "/predict", content=b'{"inputs": ', headers={"Content-Type": "application/json"}
        )
    assert r.status_code == 422
    assert "JSON decode error" in r.json()["detail"]


# -- auth -----------------------------------------------------------------------------------

PROTECTED = [
    ("GET", "/status", None, 200),
    ("GET", "/rollout", None, 200),
    ("POST", "/outcomes", {"outcomes": [{"prediction_id": "pred_x", "reward": 1.0}]}, 200),
    ("GET", "/review", None, 200),
    ("GET", "/review/rev_missing", None, 404),
    ("POST", "/review/rev_missing/claim", {"reviewer": "ana"}, 404),
    ("POST", "/review/rev_missing/release", {"reviewer": "ana"}, 404),
    ("POST", "/review/rev_missing/decide", {"reviewer": "ana", "output": "x"}, 404),
    ("POST", "/rollout/canary", {"candidate": "nope"}, 404),
    ("POST", "/rollout/shadow", {"candidate": "nope"}, 404),
    ("POST", "/rollout/ab", {"arms": {"B": "nope"}}, 404),
    ("POST", "/rollout/stop", {}, 409),
]


@pytest.mark.parametrize(("method", "path", "body", "ok_status"), PROTECTED)
def test_admin_endpoints_need_the_token(
    make_service: MakeService,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    ok_status: int,
) -> None:
    svc = _reviewed(make_service, store=True)
    with _client(svc) as client:
        missing = client.request(method, path, json=body)
        basic = client.request(method, path, json=body, headers={"Authorization": "Basic YTpi"})
        wrong = client.request(method, path, json=body, headers={"Authorization": "Bearer nope"})
        right = client.request(method, path, json=body, headers=AUTH)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert missing.json()["error"] == "unauthorized"
    assert basic.status_code == 401
    assert wrong.status_code == 403
    assert wrong.json()["error"] == "forbidden"
    assert right.status_code == ok_status, right.text


def test_bad_bodies_without_a_token_are_401_not_422(make_service: MakeService) -> None:
    with _client(make_service()) as client:
        r = client.post("/outcomes", json={"outcomes": "nope"})
    assert r.status_code == 401


def test_serving_health_and_metrics_are_open(make_service: MakeService) -> None:
    with _client(make_service()) as client:
        assert client.post("/predict", json={"inputs": {"amount": 1}}).status_code == 200
        assert client.get("/health").status_code == 200
        assert client.get("/metrics").status_code == 200


# -- /outcomes ------------------------------------------------------------------------------


def test_outcomes_are_written_to_the_store(make_service: MakeService) -> None:
    svc = make_service(store=True)
    with _client(svc) as client:
        p1 = client.post("/predict", json={"inputs": {"amount": 10}}).json()["id"]
        p2 = client.post("/predict", json={"inputs": {"amount": 5000}}).json()["id"]
        r = client.post(
            "/outcomes",
            json={
                "outcomes": [
                    {"prediction_id": p1, "label": "approve"},
                    {"prediction_id": p2, "label": "decline", "reward": 0.5},
                ]
            },
            headers=AUTH,
        )
        assert r.status_code == 200, r.text
        ids = r.json()["ids"]
        assert len(ids) == 2 and all(i.startswith("out_") for i in ids)
        assert svc.log is not None
        svc.log.flush()
        assert svc.store is not None
        rows = svc.store.predictions_with_outcomes(service="loans")
        status = client.get("/status", headers=AUTH).json()
    got = {(row["id"], row["label"], row["reward"], row["outcome_id"]) for row in rows}
    assert got == {(p1, "approve", None, ids[0]), (p2, "decline", 0.5, ids[1])}
    assert status["counters"]["outcomes"] == 2


def test_an_outcome_without_label_or_reward_is_422_naming_its_index(
    make_service: MakeService,
) -> None:
    svc = make_service(store=True)
    with _client(svc) as client:
        r = client.post(
            "/outcomes",
            json={
                "outcomes": [
                    {"prediction_id": "pred_a", "label": 1},
                    {"prediction_id": "pred_b", "label": None, "reward": None},
                ]
            },
            headers=AUTH,
        )
    assert r.status_code == 422
    assert r.json()["detail"].startswith("body.outcomes[1]: ")
    assert "'pred_b' needs a label, a reward or both" in r.json()["detail"]
    assert svc.store is not None
    assert svc.store.predictions_with_outcomes(include_unlabelled=True) == []
    assert svc.counters.snapshot()["outcomes"] == 0


@pytest.mark.parametrize(
    "outcomes",
    [
        [],
        [{"prediction_id": "p", "reward": True}],
        [{"prediction_id": "p", "reward": "1"}],
        [{"prediction_id": "", "label": 1}],
        [{"prediction_id": "p", "label": 1, "at": 5}],
    ],
)
def test_bad_outcomes_are_422(make_service: MakeService, outcomes: list[Any]) -> None:
    with _client(make_service()) as client:
        r = client.post("/outcomes", json={"outcomes": outcomes}, headers=AUTH)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("body.outcomes")


# -- review ---------------------------------------------------------------------------------


def test_review_flow_end_to_end(make_service: MakeService) -> None:
    svc = _reviewed(make_service, store=True)
    with _client(svc) as client:
        served = client.post("/predict", json={"inputs": {"amount": 10}}).json()
        assert served["abstained"] is True and served["tier"] == "rules"
        ticket = served["review_ticket"]
        assert ticket is not None

        listed = client.get("/review", headers=AUTH).json()["items"]
        assert [(i["id"], i["status"], i["prediction_id"]) for i in listed] == [
            (ticket, "pending", served["id"])
        ]
        assert listed[0]["inputs"] == {"amount": 10}
        assert listed[0]["proposed_output"] == "approve"
        assert client.get(f"/review/{ticket}", headers=AUTH).json()["id"] == ticket

        claimed = client.post(f"/review/{ticket}/claim", json={"reviewer": "ana"}, headers=AUTH)
        assert claimed.status_code == 200
        assert (claimed.json()["status"], claimed.json()["reviewer"]) == ("claimed", "ana")

        again = client.post(f"/review/{ticket}/claim", json={"reviewer": "bob"}, headers=AUTH)
        assert again.status_code == 409
        assert again.json()["error"] == "conflict"
        assert "claimed by 'ana'" in again.json()["detail"]
        other = client.post(
            f"/review/{ticket}/decide", json={"reviewer": "bob", "output": "x"}, headers=AUTH
        )
        assert other.status_code == 409

        decided = client.post(
            f"/review/{ticket}/decide",
            json={"reviewer": "ana", "output": "decline", "note": "stolen card"},
            headers=AUTH,
        )
        assert decided.status_code == 200, decided.text
        d = decided.json()
        assert {k: d[k] for k in ("item_id", "prediction_id", "reviewer", "output")} == {
            "item_id": ticket,
            "prediction_id": served["id"],
            "reviewer": "ana",
            "output": "decline",
        }
        assert (d["proposed_output"], d["overridden"], d["note"]) == (
            "approve",
            True,
            "stolen card",
        )
        assert isinstance(d["decided_at"], float)

        twice = client.post(
            f"/review/{ticket}/decide", json={"reviewer": "ana", "output": "x"}, headers=AUTH
        )
        assert twice.status_code == 409
        assert client.get("/review", headers=AUTH).json()["items"] == []
        done = client.get("/review", params={"status": "decided"}, headers=AUTH).json()["items"]
        assert [(i["id"], i["decision"]) for i in done] == [(ticket, "decline")]

        assert svc.log is not None
        svc.log.flush()
        assert svc.store is not None
        rows = svc.store.predictions_with_outcomes(service="loans")
        counters = client.get("/status", headers=AUTH).json()["counters"]
    assert [(r["id"], r["label"]) for r in rows] == [(served["id"], "decline")]
    assert (counters["decisions"], counters["overrides"]) == (1, 1)


def test_release_gives_a_claimed_item_back(make_service: MakeService) -> None:
    svc = _reviewed(make_service)
    with _client(svc) as client:
        ticket = client.post("/predict", json={"inputs": {}}).json()["review_ticket"]
        client.post(f"/review/{ticket}/claim", json={"reviewer": "ana"}, headers=AUTH)
        wrong = client.post(f"/review/{ticket}/release", json={"reviewer": "bob"}, headers=AUTH)
        released = client.post(f"/review/{ticket}/release", json={"reviewer": "ana"}, headers=AUTH)
        pending = client.get("/review", headers=AUTH).json()["items"]
    assert wrong.status_code == 409
    assert released.status_code == 200
    assert (released.json()["status"], released.json()["reviewer"]) == ("pending", None)
    assert [i["id"] for i in pending] == [ticket]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/review/rev_0000", None),
        ("POST", "/review/rev_0000/claim", {"reviewer": "ana"}),
        ("POST", "/review/rev_0000/decide", {"reviewer": "ana", "output": 1}),
    ],
)
def test_an_unknown_review_item_is_404(
    make_service: MakeService, method: str, path: str, body: dict[str, Any] | None
) -> None:
    with _client(_reviewed(make_service)) as client:
        r = client.request(method, path, json=body, headers=AUTH)
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
    assert "rev_0000" in r.json()["detail"]


def test_a_service_without_a_review_queue_answers_404(make_service: MakeService) -> None:
    with _client(make_service()) as client:
        listed = client.get("/review", headers=AUTH)
        decided = client.post(
            "/review/rev_1/decide", json={"reviewer": "ana", "output": 1}, headers=AUTH
        )
    for r in (listed, decided):
        assert r.status_code == 404
        assert r.json()["error"] == "no_review_queue"
        assert "abstention policy" in r.json()["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 1001}, "query.limit"),
        ({"limit": "many"}, "query.limit"),
        ({"status": "lost"}, "query.status"),
    ],
)
def test_bad_review_queries_are_422(
    make_service: MakeService, params: dict[str, Any], field: str
) -> None:
    with _client(_reviewed(make_service)) as client:
        r = client.get("/review", params=params, headers=AUTH)
    assert r.status_code == 422
    assert r.json()["detail"].startswith(f"{field}: ")


def test_review_list_honours_status_and_limit(make_service: MakeService) -> None:
    with _client(_reviewed(make_service)) as client:
        tickets = [
            client.post("/predict", json={"inputs": {"i": i}}).json()["review_ticket"]
            for i in range(3)
        ]
        first_two = client.get("/review", params={"limit": 2}, headers=AUTH).json()["items"]
        client.post(f"/review/{tickets[1]}/claim", json={"reviewer": "ana"}, headers=AUTH)
        claimed = client.get("/review", params={"status": "claimed"}, headers=AUTH).json()
    assert [i["id"] for i in first_two] == tickets[:2]
    assert [i["id"] for i in claimed["items"]] == [tickets[1]]


@pytest.mark.parametrize(
    "body",
    [
        {"reviewer": "ana", "output": None},
        {"reviewer": "ana"},
        {"reviewer": "   ", "output": "x"},
        {"reviewer": "", "output": "x"},
        {"reviewer": "ana", "output": "x", "verdict": "x"},
    ],
)
def test_bad_decisions_are_422_and_leave_the_item_claimed(
    make_service: MakeService, body: dict[str, Any]
) -> None:
    with _client(_reviewed(make_service)) as client:
        ticket = client.post("/predict", json={"inputs": {}}).json()["review_ticket"]
        client.post(f"/review/{ticket}/claim", json={"reviewer": "ana"}, headers=AUTH)
        r = client.post(f"/review/{ticket}/decide", json=body, headers=AUTH)
        item = client.get(f"/review/{ticket}", headers=AUTH).json()
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("body")
    assert item["status"] == "claimed"


def test_non_finite_inputs_come_back_as_null_not_500(make_service: MakeService) -> None:
    with _client(_reviewed(make_service)) as client:
        served = client.post(
            "/predict",
            content=b'{"inputs": {"x": NaN, "y": 1.5}}',
            headers={"Content-Type": "application/json"},
        )
        assert served.status_code == 200, served.text
        items = client.get("/review", headers=AUTH)
    assert items.status_code == 200
    assert items.json()["items"][0]["inputs"] == {"x": None, "y": 1.5}


# -- rollouts -------------------------------------------------------------------------------


def _with_candidate(make_service: MakeService) -> Service:
    return make_service(candidates={"v2": MockBackend("approve", name="model-v2", version="2")})


def test_canary_start_status_and_stop_over_http(make_service: MakeService) -> None:
    svc = _with_candidate(make_service)
    with _client(svc) as client:
        assert client.get("/rollout", headers=AUTH).json() is None
        started = client.post(
            "/rollout/canary",
            json={"candidate": "v2", "steps": [10, 50, 100], "interval_s": 30, "min_requests": 5},
            headers=AUTH,
        )
        assert started.status_code == 201, started.text
        body = started.json()
        assert (body["kind"], body["status"], body["candidate"]) == ("canary", "running", "2")
        canary: Any = svc.rollout
        assert (canary.steps, canary.interval_s, canary.min_requests) == (
            [10.0, 50.0, 100.0],
            30.0,
            5,
        )
        assert canary.max_marginal == 2  # options not given keep their defaults

        busy = client.post("/rollout/shadow", json={"candidate": "v2"}, headers=AUTH)
        assert busy.status_code == 409
        assert "already runs a canary" in busy.json()["detail"]
        now = client.get("/rollout", headers=AUTH).json()
        assert (now["id"], now["status"]) == (body["id"], "running")
        metrics = client.get("/metrics").text
        assert _sample(metrics, "hindsight_rollout_active", service="loans", kind="canary") == 1
        assert _sample(metrics, "hindsight_rollout_share", service="loans", kind="canary") == 0.1
        assert _sample(metrics, "hindsight_rollout_active", service="loans", kind="ab") == 0

        stopped = client.post("/rollout/stop", json={"reason": "enough"}, headers=AUTH)
        assert stopped.status_code == 200
        assert (stopped.json()["status"], stopped.json()["reason"]) == ("stopped", "enough")
        again = client.post("/rollout/stop", headers=AUTH)
        assert again.status_code == 409
        assert "no rollout to stop" in again.json()["detail"]
        last = client.get("/rollout", headers=AUTH).json()
        metrics = client.get("/metrics").text
    assert (last["id"], last["status"]) == (body["id"], "stopped")
    assert _sample(metrics, "hindsight_rollout_active", service="loans", kind="canary") == 0


def test_rollouts_refuse_unknown_candidates_and_bad_settings(make_service: MakeService) -> None:
    svc = _with_candidate(make_service)
    with _client(svc) as client:
        unknown = client.post("/rollout/canary", json={"candidate": "v9"}, headers=AUTH)
        unordered = client.post(
            "/rollout/canary", json={"candidate": "v2", "steps": [50, 10]}, headers=AUTH
        )
        out_of_range = client.post(
            "/rollout/canary", json={"candidate": "v2", "steps": [0, 10]}, headers=AUTH
        )
        sample = client.post("/rollout/shadow", json={"candidate": "v2", "sample": 0}, headers=AUTH)
        control = client.post("/rollout/ab", json={"arms": {"control": "v2"}}, headers=AUTH)
        event = client.post(
            "/rollout/ab", json={"arms": {"B": "v2"}, "event": "click"}, headers=AUTH
        )
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "unknown_candidate"
    assert "'v9'" in unknown.json()["detail"] and "v2" in unknown.json()["detail"]
    assert unordered.status_code == 422
    assert "increasing" in unordered.json()["detail"]
    assert out_of_range.json()["detail"].startswith("body.steps[0]: ")
    assert sample.status_code == 422 and sample.json()["detail"].startswith("body.sample: ")
    assert control.status_code == 422 and "control" in control.json()["detail"]
    assert event.status_code == 422 and event.json()["detail"].startswith("body.event: ")
    assert svc.rollout is None


def test_shadow_and_ab_over_http(make_service: MakeService) -> None:
    svc = _with_candidate(make_service)
    with _client(svc) as client:
        shadow = client.post(
            "/rollout/shadow", json={"candidate": "v2", "sample": 0.5}, headers=AUTH
        )
        assert shadow.status_code == 201, shadow.text
        assert (shadow.json()["kind"], shadow.json()["sample"]) == ("shadow", 0.5)
        metrics = client.get("/metrics").text
        assert _sample(metrics, "hindsight_rollout_share", service="loans", kind="shadow") == 0.5
        assert client.post("/rollout/stop", headers=AUTH).json()["status"] == "stopped"

        ab = client.post(
            "/rollout/ab",
            json={"arms": {"B": "v2"}, "weights": {"control": 1, "B": 3}, "event": "label"},
            headers=AUTH,
        )
        assert ab.status_code == 201, ab.text
        test: Any = svc.rollout
        assert (test.kind, test.weights, test.event) == (
            "ab",
            {"control": 0.25, "B": 0.75},
            "label",
        )
        arms = {
            client.post("/predict", json={"inputs": {"amount": 1}, "key": f"user-{i}"}).json()[
                "arm"
            ]
            for i in range(40)
        }
        sticky = {
            client.post("/predict", json={"inputs": {}, "key": "user-7"}).json()["arm"]
            for _ in range(5)
        }
        metrics = client.get("/metrics").text
        client.post("/rollout/stop", headers=AUTH)
    assert arms == {"control", "B"}
    assert len(sticky) == 1
    assert _sample(metrics, "hindsight_rollout_share", service="loans", kind="ab") == 0.75


# -- health and status ----------------------------------------------------------------------


def test_health_is_degraded_while_the_primary_breaker_is_open(make_service: MakeService) -> None:
    breaker = CircuitBreaker(window=4, min_calls=4, error_rate=0.5, open_for_s=600)
    svc = make_service(
        Tier(MockBackend("a", name="model", version="7", fail_every=1), breaker=breaker),
        _rules(),
    )
    with _client(svc) as client:
        before = client.get("/health").json()
        for _ in range(4):
            assert client.post("/predict", json={"inputs": {}}).json()["tier"] == "rules"
        after = client.get("/health")
        metrics = client.get("/metrics").text
    assert before == {
        "status": "ok",
        "service": "loans",
        "version": "7",
        "tiers": [{"tier": "model", "state": "closed"}, {"tier": "rules", "state": "closed"}],
    }
    assert after.status_code == 200
    assert after.json()["status"] == "degraded"
    assert after.json()["tiers"][0] == {"tier": "model", "state": "open"}
    assert _sample(metrics, "hindsight_breaker_state", service="loans", tier="model") == 2
    assert _sample(metrics, "hindsight_breaker_state", service="loans", tier="rules") == 0


def test_an_open_breaker_on_the_last_tier_alone_is_not_degraded(make_service: MakeService) -> None:
    last = Tier(_rules(), breaker=CircuitBreaker(window=1, min_calls=1))
    last.breaker.record(ok=False, latency_ms=1.0)
    assert last.breaker.state == "open"
    with _client(make_service(MockBackend("a", name="model"), last)) as client:
        assert client.get("/health").json()["status"] == "ok"


def test_status_reports_the_service(make_service: MakeService) -> None:
    svc = _reviewed(make_service, store=True)
    with _client(svc) as client:
        client.post("/predict", json={"inputs": {}})
        status = client.get("/status", headers=AUTH).json()
    assert status["service"] == "loans"
    assert [t["tier"] for t in status["tiers"]] == ["model", "rules"]
    assert status["review"]["pending"] == 1
    assert status["counters"]["requests_total"] == 1


# -- metrics --------------------------------------------------------------------------------


def test_metrics_parse_and_count_the_requests_made(make_service: MakeService) -> None:
    svc = make_service(MockBackend(["a", "b"], name="model", fail_every=2), _rules(), store=True)
    with _client(svc) as client:
        ids = [client.post("/predict", json={"inputs": {"i": i}}).json()["id"] for i in range(6)]
        client.post(
            "/outcomes",
            json={"outcomes": [{"prediction_id": p, "reward": 1} for p in ids[:2]]},
            headers=AUTH,
        )
        r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    labels = {"service": "loans"}
    assert _sample(text, "hindsight_requests_total", arm="baseline", tier="model", **labels) == 3
    assert _sample(text, "hindsight_requests_total", arm="baseline", tier="rules", **labels) == 3
    assert _sample(text, "hindsight_fallbacks_total", **labels) == 3
    assert _sample(text, "hindsight_outcomes_total", **labels) == 2
    assert _sample(text, "hindsight_exhausted_total", **labels) == 0
    assert _sample(text, "hindsight_abstentions_total", **labels) == 0
    assert _sample(text, "hindsight_request_latency_seconds_count", arm="baseline", **labels) == 6
    assert (
        _sample(
            text, "hindsight_request_latency_seconds_bucket", arm="baseline", le="+Inf", **labels
        )
        == 6
    )
    assert _sample(text, "hindsight_prediction_log_dropped_total", **labels) == 0
    assert _sample(text, "hindsight_prediction_log_pending", **labels) >= 0
    assert "hindsight_tier_p99_seconds{" not in text  # 6 calls are too few for a p99
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {
        "hindsight_audits",
        "hindsight_reviews_submitted",
        "hindsight_reviews_refused",
        "hindsight_review_decisions",
        "hindsight_review_overrides",
    } <= names
    assert "hindsight_review_pending" not in names  # no review queue on this service


def test_metrics_of_reviews_and_p99(make_service: MakeService) -> None:
    svc = _reviewed(make_service)
    with _client(svc) as client:
        for i in range(25):
            client.post("/predict", json={"inputs": {"i": i}})
        ticket = client.get("/review", params={"limit": 1}, headers=AUTH).json()["items"][0]["id"]
        client.post(f"/review/{ticket}/claim", json={"reviewer": "ana"}, headers=AUTH)
        client.post(
            f"/review/{ticket}/decide", json={"reviewer": "ana", "output": "approve"}, headers=AUTH
        )
        text = client.get("/metrics").text
    labels = {"service": "loans"}
    assert _sample(text, "hindsight_abstentions_total", **labels) == 25
    assert _sample(text, "hindsight_reviews_submitted_total", **labels) == 25
    assert _sample(text, "hindsight_review_pending", **labels) == 24
    assert _sample(text, "hindsight_review_decisions_total", **labels) == 1
    assert _sample(text, "hindsight_review_overrides_total", **labels) == 0
    p99 = _sample(text, "hindsight_tier_p99_seconds", tier="model", **labels)
    assert 0 <= p99 < 1 and math.isfinite(p99)


def test_each_app_has_its_own_registry(make_service: MakeService) -> None:
    first, second = make_service(name="one"), make_service(name="two")
    with _client(first) as a, _client(second) as b, _client(second) as b2:
        a.post("/predict", json={"inputs": {}})
        b.post("/predict", json={"inputs": {}})
        text_a, text_b, text_b2 = (c.get("/metrics").text for c in (a, b, b2))
    assert 'service="two"' not in text_a and 'service="one"' not in text_b
    count = "hindsight_request_latency_seconds_count"
    assert _sample(text_a, count, service="one", arm="baseline") == 1
    assert _sample(text_b, count, service="two", arm="baseline") == 1
    assert count not in text_b2  # the second app on the same service saw no request itself
    assert (
        _sample(text_b2, "hindsight_requests_total", service="two", arm="baseline", tier="model")
        == 1
    )


# -- errors and life cycle ------------------------------------------------------------------


def test_an_unexpected_error_is_a_logged_500(
    make_service: MakeService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    svc = make_service()

    def broken() -> dict[str, Any]:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(svc, "status", broken)
    with caplog.at_level(logging.ERROR, logger="hindsight.serving.app"), _client(svc) as client:
        r = client.get("/status", headers=AUTH)
    assert r.status_code == 500
    assert r.json()["error"] == "internal_error"
    assert "RuntimeError" in r.json()["detail"]
    assert "disk" not in r.json()["detail"]  # internals stay in the log
    records = [rec for rec in caplog.records if rec.name == "hindsight.serving.app"]
    assert len(records) == 1
    assert "GET /status failed" in records[0].getMessage()
    assert records[0].exc_info is not None and "disk is on fire" in str(records[0].exc_info[1])


def test_unknown_routes_and_methods_answer_json(make_service: MakeService) -> None:
    with _client(make_service()) as client:
        missing = client.get("/nope")
        method = client.get("/predict")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    assert (method.status_code, method.json()["error"]) == (405, "method_not_allowed")


def test_shutdown_closes_the_service_and_flushes_the_log(make_service: MakeService) -> None:
    svc = make_service(store=True)
    store = svc.store
    assert store is not None
    slow = PredictionLog(store, flush_interval_s=3600)
    svc = make_service(store=False, log=slow)
    with _client(svc) as client:
        for i in range(3):
            client.post("/predict", json={"inputs": {"i": i}})
        assert store.list_predictions(service="loans") == []
        assert slow.pending == 3
    assert len(store.list_predictions(service="loans")) == 3
    assert slow.pending == 0
    slow.close()


def test_serve_generates_a_token_and_prints_it_once(
    make_service: MakeService,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ran: dict[str, Any] = {}

    def fake_run(app: Any, **kw: Any) -> None:
        ran.update(kw, app=app)

    monkeypatch.delenv("HINDSIGHT_SERVE_TOKEN", raising=False)
    monkeypatch.setattr(uvicorn, "run", fake_run)
    svc = make_service()
    serve(svc, host="0.0.0.0", port=9123, log_level="warning")
    err = capsys.readouterr().err
    assert (ran["host"], ran["port"], ran["log_level"]) == ("0.0.0.0", 9123, "warning")
    token = err.split("generated the admin token ")[1].split()[0]
    assert len(token) >= 24
    assert err.count(token) == 3  # the token, the header to send and a curl example
    assert f"Authorization: Bearer {token}" in err
    with TestClient(ran["app"]) as client:
        assert (
            client.get("/status", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        )
        assert client.get("/status", headers=AUTH).status_code == 403


def test_serve_uses_the_given_or_configured_token_silently(
    make_service: MakeService,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    apps: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: apps.append(app))
    monkeypatch.setenv("HINDSIGHT_SERVE_TOKEN", "from-env")
    serve(make_service(), port=9)
    serve(make_service(), port=9, token=TOKEN)
    assert capsys.readouterr().err == ""
    with TestClient(apps[0]) as env_client, TestClient(apps[1]) as given_client:
        assert (
            env_client.get("/status", headers={"Authorization": "Bearer from-env"}).status_code
            == 200
        )
        assert given_client.get("/status", headers=AUTH).status_code == 200
