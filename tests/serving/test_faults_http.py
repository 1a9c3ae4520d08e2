"""Fault injection over real HTTP: uvicorn on loopback, httpx as the client.

The primary raises, hangs, is slow or returns NaN; every request must still get a 200
from the fallback within the deadline (checked on the service's own clock, with a margin
for a loaded machine), breakers must open and close again, a worse canary must roll back
within a bounded number of intervals and an equal one must be promoted, and the review
flow must work end to end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from hindsight.serving import AbstentionPolicy, CircuitBreaker, MockBackend, RulesBackend, Tier
from hindsight.serving.app import create_app
from hindsight.serving.backend import ModelBackend, ModelOutput
from hindsight.serving.service import Service
from hindsight.store import Store, open_store
from live_server import live_server

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEADLINE_MS = 50.0
#: What a loaded two-core CI machine may add on top of the deadline (event loop, threads).
#: Generous on purpose (tests do not time the machine; benchmarks/serving does, to 5 ms),
#: yet far below what a missed deadline costs: the slow primary takes 500 ms, the hung
#: one 30 s.
MARGIN_MS = 250.0


@contextmanager
def running(service: Service) -> Iterator[httpx.Client]:
    """Serve ``service`` with uvicorn in a thread; yield a client; shut down cleanly."""
    with live_server(create_app(service, token=TOKEN)) as url, httpx.Client(
        base_url=url, timeout=10
    ) as client:
        yield client


class Flaky(ModelBackend):
    """A primary whose failure mode can be switched while the server runs."""

    name = "primary"
    version = "1"

    def __init__(self) -> None:
        self.mode = "ok"
        self.release = threading.Event()

    def predict(self, inputs: Any) -> ModelOutput:
        mode = self.mode
        if mode == "raise":
            raise RuntimeError("model server down")
        if mode == "hang":
            self.release.wait(30)
        if mode == "slow":
            time.sleep(0.5)
        if mode == "nan":
            return ModelOutput(float("nan"), 0.9)
        return ModelOutput("model-answer", 0.9)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    yield s
    s.close()


def _predict(client: httpx.Client, n: int, **extra: Any) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        r = client.post("/predict", json={"inputs": {"amount": 10, "i": i}, **extra})
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


@pytest.mark.parametrize("mode", ["raise", "hang", "slow", "nan"])
def test_every_request_is_answered_within_the_deadline(store: Store, mode: str) -> None:
    primary = Flaky()
    breaker = CircuitBreaker(window=20, min_calls=10, error_rate=0.5, open_for_s=0.3,
                             half_open_probes=2)  # fmt: skip
    service = Service(
        "faults", [Tier(primary, breaker=breaker), RulesBackend([], "rules-answer")],
        deadline_ms=DEADLINE_MS, store=store,
    )  # fmt: skip
    with running(service) as client:
        healthy = _predict(client, 20)
        assert {r["tier"] for r in healthy} == {"primary"}
        primary.mode = mode
        faulty = _predict(client, 40)
        assert all(r["output"] == "rules-answer" and r["tier"] == "rules" for r in faulty)
        assert all(r["latency_ms"] <= DEADLINE_MS + MARGIN_MS for r in faulty), max(
            r["latency_ms"] for r in faulty
        )
        expected = {"raise": "error", "hang": "timeout", "slow": "timeout", "nan": "invalid"}[mode]
        first = faulty[0]["attempts"][0]
        assert first["tier"] == "primary" and first["outcome"] == expected
        if expected == "timeout":  # cut off at the deadline less the fail-safe's reserve
            budget = float(first["detail"].removeprefix("no answer in ").removesuffix(" ms"))
            assert budget <= DEADLINE_MS
        # The breaker opened: later requests skip the primary without calling it.
        assert any(r["attempts"][0]["outcome"] == "circuit_open" for r in faulty[-10:])
        health = client.get("/health").json()
        assert health["status"] == "degraded"
        # Recovery: after the open period, half-open probes succeed and it closes.
        primary.mode = "ok"
        primary.release.set()
        time.sleep(0.35)
        recovered = _predict(client, 10)
        assert recovered[-1]["tier"] == "primary", [(r["tier"], r["attempts"]) for r in recovered]
        assert client.get("/health").json()["status"] == "ok"
        metrics = client.get("/metrics").text
        assert 'hindsight_requests_total{arm="baseline",service="faults",tier="rules"}' in metrics


def test_review_flow_end_to_end_over_http(store: Store) -> None:
    service = Service(
        "loans",
        [MockBackend("approve", name="model", confidence=0.4), RulesBackend([], "refer")],
        abstention=AbstentionPolicy(min_confidence=0.7), store=store,
    )  # fmt: skip
    with running(service) as client:
        answer = client.post("/predict", json={"inputs": {"amount": 9000}}).json()
        assert answer["abstained"] and answer["tier"] == "rules" and answer["review_ticket"]
        ticket = answer["review_ticket"]
        assert client.get("/review").status_code == 401
        items = client.get("/review", headers=AUTH).json()["items"]
        assert [i["id"] for i in items] == [ticket]
        r = client.post(f"/review/{ticket}/claim", json={"reviewer": "ana"}, headers=AUTH)
        assert r.status_code == 200 and r.json()["status"] == "claimed"
        again = client.post(f"/review/{ticket}/claim", json={"reviewer": "bo"}, headers=AUTH)
        assert again.status_code == 409
        decided = client.post(
            f"/review/{ticket}/decide",
            json={"reviewer": "ana", "output": "decline", "note": "income unverified"},
            headers=AUTH,
        )
        assert decided.status_code == 200 and decided.json()["overridden"] is True
    # The server shut down: the log was flushed, and the decision is the label.
    rows = store.predictions_with_outcomes(service="loans")
    assert [(r["id"], r["label"]) for r in rows] == [(answer["id"], "decline")]


def _canary_run(client: httpx.Client, candidate: str, seconds: float) -> dict[str, Any]:
    r = client.post(
        "/rollout/canary",
        json={"candidate": candidate, "steps": [25, 50, 100], "interval_s": 0.5,
              "min_requests": 20},
        headers=AUTH,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    end = time.monotonic() + seconds
    status: dict[str, Any] = {}
    i = 0
    while time.monotonic() < end:
        client.post("/predict", json={"inputs": {"i": i}, "key": f"user-{i}"})
        i += 1
        if i % 50 == 0:
            status = client.get("/rollout", headers=AUTH).json()
            if status["status"] != "running":
                break
    return client.get("/rollout", headers=AUTH).json()


def test_a_worse_canary_rolls_back_over_http(store: Store) -> None:
    service = Service(
        "recs", [MockBackend("a", name="model"), RulesBackend([], "popular")],
        deadline_ms=1000, store=store,
        candidates={"v2": MockBackend("a", name="model-v2", version="2", fail_every=3)},
    )  # fmt: skip
    with running(service) as client:
        status = _canary_run(client, "v2", seconds=30)
    assert status["status"] == "rolled_back", status
    # Bounded: caught in the first interval or two (or earlier, by the sequential test).
    assert status["interval"] <= 2
    assert status["failure_id"] and status["experiment_id"]


def test_an_equal_canary_is_promoted_over_http(store: Store) -> None:
    service = Service(
        "recs", [MockBackend("a", name="model"), RulesBackend([], "popular")],
        deadline_ms=1000, store=store,
        candidates={"v2": MockBackend("a", name="model-v2", version="2")},
    )  # fmt: skip
    with running(service) as client:
        status = _canary_run(client, "v2", seconds=30)
        assert status["status"] == "promoted", status
        after = client.post("/predict", json={"inputs": {}}).json()
    assert after["version"] == "2"
