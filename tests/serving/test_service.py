"""The Service: routing through the chain, abstention to the fail-safe, review routing,
the prediction log, outcomes and reviewer decisions as labels, service.yaml."""

from __future__ import annotations

import doctest
from collections.abc import Iterator
from pathlib import Path

import pytest

import hindsight.serving.config as config_module
import hindsight.serving.service as service_module
from hindsight.errors import ConfigError, FallbackExhausted, ReviewError, ServingError
from hindsight.review.queue import ReviewQueue
from hindsight.serving import AbstentionPolicy, MockBackend, RulesBackend
from hindsight.serving.backend import ModelBackend, ModelOutput
from hindsight.serving.config import load_service, service_from_dict
from hindsight.serving.service import Service
from hindsight.store import Store, open_store


def test_doctests() -> None:
    for module in (service_module, config_module):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def _rules() -> RulesBackend:
    return RulesBackend([(lambda x: x.get("amount", 0) > 1000, "decline", 1.0)], "approve")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    yield s
    s.close()


def test_primary_answers_and_is_logged(store: Store) -> None:
    with Service("loans", [MockBackend("approve", name="model", confidence=0.9), _rules()],
                 store=store) as svc:  # fmt: skip
        r = svc.predict_sync({"amount": 10}, request_id="req-1")
        assert (r.output, r.tier, r.arm, r.fell_back, r.abstained) == (
            "approve", "model", "baseline", False, False,
        )  # fmt: skip
        assert r.reason == "model"
        svc.log.flush()
    rows = store.list_predictions(service="loans")
    assert [(x["id"], x["request_id"], x["tier"]) for x in rows] == [(r.id, "req-1", "model")]


def test_failing_primary_falls_back_and_says_why() -> None:
    with Service("loans", [MockBackend(name="model", fail_every=1), _rules()]) as svc:
        r = svc.predict_sync({"amount": 5000})
    assert (r.output, r.tier, r.fell_back) == ("decline", "rules", True)
    assert "model: error (RuntimeError" in r.reason
    assert svc.counters.snapshot()["fallbacks"] == 1


class _Boom(ModelBackend):
    name = "boom"

    def predict(self, inputs):  # type: ignore[no-untyped-def]
        raise RuntimeError("down")


def test_every_tier_failing_raises_and_counts() -> None:
    svc = Service("x", [MockBackend(name="model", fail_every=1), _Boom()])
    with pytest.raises(FallbackExhausted):
        svc.predict_sync({})
    assert svc.counters.snapshot()["exhausted"] == 1
    svc.close()


def test_low_confidence_abstains_to_the_fail_safe_and_routes_to_review() -> None:
    svc = Service(
        "loans",
        [MockBackend("approve", name="model", confidence=0.4),
         MockBackend("previous-answer", name="previous", confidence=0.99), _rules()],
        abstention=AbstentionPolicy(min_confidence=0.7),
    )  # fmt: skip
    r = svc.predict_sync({"amount": 5})
    # Abstention skips the middle tier: the fail-safe answers.
    assert (r.output, r.tier, r.abstained) == ("approve", "rules", True)
    assert [a.outcome for a in r.answer.attempts] == ["abstained", "answered"]
    assert r.review_ticket is not None
    item = svc.review.get(r.review_ticket)
    assert item.prediction_id == r.id and item.proposed_output == "approve"
    assert "confidence 0.4 < 0.7" in item.reason
    # The breaker counted the abstention.
    assert svc.chain.tiers[0].breaker.snapshot()["abstained"] == 1
    svc.close()


def test_risk_rule_routes_even_when_the_primary_failed() -> None:
    svc = Service(
        "loans", [MockBackend(name="model", fail_every=1), _rules()],
        abstention=AbstentionPolicy(risk_rules=["amount > 10000"]),
    )  # fmt: skip
    r = svc.predict_sync({"amount": 20000})
    assert r.tier == "rules" and r.abstained and r.review_ticket is not None
    assert "abstained: risk rule matched: amount > 10000" in r.reason
    svc.close()


def test_full_queue_sends_abstentions_to_rules_only() -> None:
    queue = ReviewQueue(capacity=1, sla_s=60, service="loans")
    svc = Service(
        "loans", [MockBackend("approve", name="model", confidence=0.1), _rules()],
        abstention=AbstentionPolicy(min_confidence=0.5), review=queue,
    )  # fmt: skip
    first = svc.predict_sync({"amount": 1})
    second = svc.predict_sync({"amount": 1})
    assert first.review_ticket is not None and second.review_ticket is None
    assert second.tier == "rules"
    assert "not sent for review: the review queue is full" in second.reason
    counts = svc.counters.snapshot()
    assert (counts["reviews"], counts["review_refused"]) == (1, 1)
    svc.close()


def test_audit_sample_reviews_served_answers_at_its_rate() -> None:
    svc = Service(
        "loans", [MockBackend("approve", name="model", confidence=0.99), _rules()],
        abstention=AbstentionPolicy(audit_rate=0.2, seed=3),
        review=ReviewQueue(capacity=10_000, service="loans"),
        # Audits, not latency: a loaded CI machine must not push a call past the deadline
        # and onto the rules tier.
        deadline_ms=60_000.0,
    )  # fmt: skip
    n = 2000
    audited = [svc.predict_sync({"amount": 1}) for _ in range(n)]
    k = sum(r.audited for r in audited)
    # Binomial(2000, 0.2): mean 400, sd ~17.9; 5 sd either way.
    assert 310 < k < 490
    assert all(r.tier == "model" for r in audited)  # audits keep the model's answer
    assert all((r.review_ticket is not None) == r.audited for r in audited)
    svc.close()


def test_decision_overrides_and_becomes_a_label(store: Store) -> None:
    svc = Service(
        "loans", [MockBackend("approve", name="model", confidence=0.2), _rules()],
        abstention=AbstentionPolicy(min_confidence=0.5), store=store,
    )  # fmt: skip
    assert svc.review is not None and svc.review.store is store  # store-backed by default
    r = svc.predict_sync({"amount": 3})
    svc.review.claim(r.review_ticket, "ana")
    with pytest.raises(ReviewError):
        svc.review.claim(r.review_ticket, "bo")
    d = svc.decide(r.review_ticket, "ana", "decline", note="fraud ring")
    assert d.overridden
    svc.log.flush()
    rows = store.predictions_with_outcomes(service="loans")
    assert [(x["id"], x["label"]) for x in rows] == [(r.id, "decline")]
    item = store.get("review_item", r.review_ticket)
    assert (item["status"], item["decision"], item["note"]) == ("decided", "decline", "fraud ring")
    snap = svc.counters.snapshot()
    assert (snap["decisions"], snap["overrides"]) == (1, 1)
    svc.close()


def test_store_backed_queue_is_shared_between_processes_views(store: Store) -> None:
    now = [1000.0]
    a = ReviewQueue(capacity=2, sla_s=60, store=store, service="s", clock=lambda: now[0])
    b = ReviewQueue(capacity=2, sla_s=60, store=store, service="s", clock=lambda: now[0])
    item = a.submit("pred_1", {"x": 1}, "yes", ["low confidence"])
    assert item is not None
    assert [i.id for i in b.list("pending")] == [item.id]
    b.claim(item.id, "bo")
    with pytest.raises(ReviewError, match="claimed"):
        a.claim(item.id, "ana")
    # Capacity counts the pending backlog: two more fit, the third is refused.
    assert a.submit("pred_2", {}, "yes", "x") is not None
    assert a.submit("pred_3", {}, "yes", "x") is not None
    assert a.submit("pred_4", {}, "yes", "x") is None
    assert "full (2 pending" in (b.refusal_reason or "")
    assert (a.stats()["pending"], a.stats()["claimed"]) == (2, 1)


def test_store_backed_queue_refuses_past_sla(store: Store) -> None:
    now = [1000.0]
    q = ReviewQueue(capacity=10, sla_s=60, store=store, service="s", clock=lambda: now[0])
    q.submit("pred_1", {}, "yes", "x")
    now[0] = 1061.0
    assert not q.accepting and "past its SLA" in (q.refusal_reason or "")
    assert [i.status for i in q.expire_overdue()] == ["expired"]
    assert q.accepting


def test_outcomes_need_a_label_or_reward(store: Store) -> None:
    svc = Service("s", [MockBackend(name="m"), _rules()], store=store)
    with pytest.raises(ConfigError, match="needs a label, a reward or both"):
        svc.record_outcomes([{"prediction_id": "pred_1"}])
    assert svc.record_outcome("pred_1", reward=1.0) is not None
    svc.close()


def test_bad_inputs_and_settings_are_named() -> None:
    with pytest.raises(ConfigError, match="name"):
        Service("bad name!", [_rules()])
    with pytest.raises(ConfigError, match="at least two tiers"):
        Service("s", [_rules()], abstention=AbstentionPolicy(min_confidence=0.5))
    svc = Service("s", [_rules()])
    with pytest.raises(ConfigError, match="mapping"):
        svc.predict_sync([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ServingError, match="no candidate 'v9'"):
        svc.start_canary("v9")
    with pytest.raises(ServingError, match="no rollout"):
        svc.stop_rollout()
    svc.close()


def test_hung_primary_is_answered_within_the_deadline() -> None:
    hang = MockBackend(name="model", hang=True)
    svc = Service("s", [hang, _rules()], deadline_ms=30)
    r = svc.predict_sync({"amount": 1})
    hang.release()
    assert r.tier == "rules" and "model: timeout" in r.reason
    # The hung call was cut off at the deadline less the fail-safe's reserve (no wall
    # clock asserted here: benchmarks/serving measures the latency itself).
    first = r.answer.attempts[0]
    assert first.outcome == "timeout"
    assert float(first.detail.removeprefix("no answer in ").removesuffix(" ms")) <= 30
    svc.close()


# -- service.yaml ------------------------------------------------------------------------

_YAML = """
name: recommend
deadline_ms: 40
store: none
tiers:
  - {name: model, kind: python, ref: "mymodel:score", version: "7"}
  - {name: rules, kind: rules, default: popular,
     rules: [{when: "age < 18", output: kids, confidence: 1.0}]}
candidates:
  v8: {kind: mock, outputs: fresh, version: "8"}
abstention: {min_confidence: 0.5, risk_rules: ["age > 120"], audit_rate: 0.0}
review: {capacity: 5, sla_s: 30}
"""


def test_service_yaml(tmp_path: Path) -> None:
    (tmp_path / "mymodel.py").write_text(
        "def score(x):\n    return ('item-' + str(x['age']), 0.9 if x['age'] > 30 else 0.3)\n"
    )
    path = tmp_path / "service.yaml"
    path.write_text(_YAML)
    svc = load_service(path)
    try:
        assert svc.name == "recommend" and svc.deadline_ms == 40 and svc.log is None
        assert [t.name for t in svc.chain.tiers] == ["model", "rules"]
        assert svc.version == "7"
        assert svc.predict_sync({"age": 40}).output == "item-40"
        low = svc.predict_sync({"age": 12})
        assert (low.output, low.tier, low.abstained) == ("kids", "rules", True)
        assert svc.review is not None and svc.review.capacity == 5
        assert svc.candidate("v8").version == "8"
    finally:
        svc.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\n", "'tiers' is missing"),
        ("name: x\ntiers: []\n", "non-empty list"),
        ("name: x\ntiers:\n  - {kind: magic}\n", "kind must be one of"),
        ("name: x\ntiers:\n  - {kind: rules, default: a, colour: red}\n", "unknown keys"),
        ("name: x\nstore: none\nspeed: 3\ntiers:\n  - {kind: rules, default: a}\n", "unknown keys"),
        ("name: x\ntiers:\n  - {kind: python, ref: nomodule_here:f}\n", "cannot import"),
        (
            "name: x\ntiers:\n  - {kind: rules, default: a, rules: [{when: 'a ~ 3', output: b}]}\n",
            "a ~ 3",
        ),
        ("[1, 2", "not valid YAML"),
    ],
)
def test_service_yaml_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "service.yaml"
    path.write_text(
        text if "store" in text else text.replace("name: x\n", "name: x\nstore: none\n", 1)
    )
    with pytest.raises(ConfigError, match=message):
        load_service(path)


def test_service_from_dict_rejects_a_missing_file() -> None:
    with pytest.raises(ConfigError, match="No service file"):
        load_service("/nonexistent/service.yaml")
    with pytest.raises(ConfigError, match="mapping"):
        service_from_dict({"name": "x", "tiers": [3]}, store=None)


class _Echo(ModelBackend):
    name = "echo"

    def predict(self, inputs):  # type: ignore[no-untyped-def]
        return ModelOutput(inputs.get("v"), 1.0)
