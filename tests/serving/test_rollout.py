"""Canary, shadow and A/B rollouts on a real Service, driven by a fake clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hindsight.alerts import MemoryChannel
from hindsight.errors import ConfigError, ServingError
from hindsight.ledger.core import Ledger
from hindsight.serving import MockBackend, RulesBackend
from hindsight.serving.rollout.ab import ABTest
from hindsight.serving.rollout.base import unit_hash
from hindsight.serving.rollout.canary import Canary
from hindsight.serving.rollout.shadow import Shadow
from hindsight.serving.service import Service
from hindsight.store import Store, open_store


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    yield s
    s.close()


def _service(store: Store | None, primary: MockBackend | None = None, **kw: object) -> Service:
    rules = RulesBackend([], "popular")
    # A generous deadline: on a loaded CI machine a thread hop can take tens of ms, and a
    # timeout would count as the arm's error.
    kw.setdefault("deadline_ms", 2000.0)
    return Service(
        "recs", [primary or MockBackend("a", name="model", version="1"), rules], store=store,
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def _drive(svc: Service, n: int, start: int = 0) -> list:  # type: ignore[type-arg]
    async def go() -> list:  # type: ignore[type-arg]
        out = []
        for i in range(start, start + n):
            out.append(await svc.predict({"i": i}, key=f"user-{i}"))
        return out

    return asyncio.run(go())


def test_unit_hash_is_stable_and_uniform() -> None:
    keys = [f"user-{i}" for i in range(20_000)]
    u = [unit_hash(k, "roll_1") for k in keys]
    assert u == [unit_hash(k, "roll_1") for k in keys]
    assert u != [unit_hash(k, "roll_2") for k in keys]
    # Uniform on [0, 1): Kolmogorov-Smirnov against the uniform distribution.
    from scipy import stats

    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_a_failing_canary_rolls_back_and_is_recorded(store: Store) -> None:
    clock = Clock()
    channel = MemoryChannel()
    svc = _service(store, alerts=[channel])
    bad = MockBackend("a", name="model-v2", version="2", fail_every=2)
    canary = svc.start_canary(
        bad, steps=[10, 50, 100], interval_s=60, min_requests=30, tick_s=None, clock=clock
    )
    assert isinstance(canary, Canary) and canary.active and canary.share == 0.10
    intervals = 0
    while canary.active and intervals < 6:
        _drive(svc, 600, start=intervals * 600)
        clock.now += 61
        canary.tick()
        intervals += 1
    assert canary.status_name == "rolled_back"
    assert intervals <= 2  # the first full interval (or the sequential test) catches it
    assert "error_rate" in canary.reason
    assert canary.share == 0.0
    # All traffic is back on the baseline.
    assert {r.arm for r in _drive(svc, 200)} == {"baseline"}
    # The ledger holds a failed experiment with the evidence, and a canary failure.
    ledger = Ledger(store=store)
    exp = ledger.experiment_record(canary.experiment.id)  # type: ignore[union-attr]
    assert exp.outcome == "failure" and "canary" in exp.tags
    assert exp.outcome_reason.startswith("canary 2 rolled back")
    failure = ledger.failure_record(canary.failure_id)  # type: ignore[arg-type]
    assert failure.source == "canary" and failure.experiment_id == exp.id
    assert failure.evidence["analyses"][-1]["decision"] == "fail"
    row = store.get("rollout", canary.id)
    assert (row["status"], row["failure_id"]) == ("rolled_back", failure.id)
    # And it was alerted, once.
    assert [a.title for a in channel.alerts] == ["Canary 2 of recs rolled back"]
    assert channel.alerts[0].severity == "critical"
    svc.close()


def test_an_equal_canary_is_promoted(store: Store) -> None:
    clock = Clock()
    svc = _service(store)
    same = MockBackend("a", name="model-v2", version="2")
    canary = svc.start_canary(
        same, steps=[20, 50, 100], interval_s=60, min_requests=30, tick_s=None, clock=clock
    )
    shares = []
    for k in range(8):
        if not canary.active:
            break
        shares.append(canary.share)
        _drive(svc, 300, start=k * 300)
        clock.now += 61
        canary.tick()
    assert canary.status_name == "promoted", [a.get("reasons") for a in canary.analyses]
    assert shares == [0.2, 0.5]  # passing 50 % promotes: 100 % leaves no baseline
    assert [a["decision"] for a in canary.analyses] == ["pass", "pass"]
    assert svc.version == "2"  # the candidate now serves as the primary
    exp = Ledger(store=store).experiment_record(canary.experiment.id)  # type: ignore[union-attr]
    assert exp.outcome == "success" and exp.status == "finished"
    svc.close()


def test_a_canary_without_enough_traffic_extends_its_interval(store: Store) -> None:
    clock = Clock()
    svc = _service(store)
    canary = svc.start_canary(
        MockBackend("a", name="v2", version="2"), steps=[1, 100], interval_s=10,
        min_requests=50, tick_s=None, clock=clock,
    )  # fmt: skip
    _drive(svc, 300)  # ~3 canary requests at 1 %
    clock.now += 11
    canary.tick()
    assert canary.active and canary.step == 0 and canary.analyses == []
    svc.close()


def test_wrong_answers_fail_the_canary_once_labels_arrive(store: Store) -> None:
    clock = Clock()
    svc = _service(store)
    wrong = MockBackend("b", name="v2", version="2")  # labels say "a"
    canary = svc.start_canary(
        wrong, steps=[50, 100], interval_s=60, min_requests=30, min_labels=50,
        tick_s=None, clock=clock,
    )  # fmt: skip
    responses = _drive(svc, 400)
    svc.record_outcomes([{"prediction_id": r.id, "label": "a"} for r in responses])
    canary.tick()  # the always-valid test sees accuracy 0 vs 1 without waiting
    assert canary.status_name == "rolled_back"
    assert "accuracy" in canary.reason and canary.analyses[-1]["early"] is True
    svc.close()


def test_sequential_test_catches_errors_early(store: Store) -> None:
    clock = Clock()
    svc = _service(store)
    canary = svc.start_canary(
        MockBackend("a", name="v2", version="2", fail_every=1), steps=[50, 100],
        interval_s=3600, min_requests=30, tick_s=None, clock=clock,
    )  # fmt: skip
    _drive(svc, 200)
    canary.tick()  # long before the interval ends
    assert canary.status_name == "rolled_back"
    assert canary.reason.count("always-valid test on error_rate") == 1
    svc.close()


def test_canary_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="increasing percentages"):
        Canary(MockBackend(), steps=[50, 10])
    with pytest.raises(ConfigError, match="alpha"):
        Canary(MockBackend(), alpha=2.0)
    with pytest.raises(ConfigError, match="ModelBackend"):
        Canary("model")  # type: ignore[arg-type]


def test_one_rollout_at_a_time_and_stop(store: Store) -> None:
    svc = _service(store, candidates={"v2": MockBackend("a", name="v2", version="2")})
    canary = svc.start_canary("v2", tick_s=None)
    with pytest.raises(ServingError, match="already runs a canary"):
        svc.start_shadow("v2")
    svc.stop_rollout("enough")
    assert canary.status_name == "stopped" and canary.reason == "enough"
    assert store.get("rollout", canary.id)["status"] == "stopped"
    shadow = svc.start_shadow("v2")  # a new one may start now
    history = store.list_rollouts(service="recs")
    assert [(r["id"], r["kind"], r["status"]) for r in history] == [
        (shadow.id, "shadow", "running"), (canary.id, "canary", "stopped"),
    ]  # fmt: skip
    assert store.list_rollouts(service="recs", status="stopped", limit=5)[0]["id"] == canary.id
    svc.close()


def test_a_rollout_experiment_is_background_work_and_ends_with_the_service(
    store: Store,
) -> None:
    from hindsight.ledger.experiment import current_experiment

    svc = _service(store)
    canary = svc.start_canary(MockBackend("a", name="v2", version="2"), tick_s=None)
    assert canary.experiment is not None
    # Not the "current" experiment of code that happens to run in the same process.
    assert current_experiment() is None
    svc.close()
    assert canary.status_name == "stopped"
    assert canary.reason == "the service shut down while the rollout ran"
    exp = Ledger(store=store).experiment_record(canary.experiment.id)
    assert exp.status == "finished"
    assert store.get("rollout", canary.id)["status"] == "stopped"


def test_ticker_thread_runs_the_analysis(store: Store) -> None:
    svc = _service(store)
    canary = svc.start_canary(
        MockBackend("a", name="v2", version="2", fail_every=1), steps=[50, 100],
        interval_s=3600, min_requests=20, tick_s=0.05,
    )  # fmt: skip
    _drive(svc, 200)
    deadline = time.monotonic() + 10
    while canary.active and time.monotonic() < deadline:
        time.sleep(0.02)
    assert canary.status_name == "rolled_back"
    svc.close()


# -- shadow ------------------------------------------------------------------------------


def test_shadow_mirrors_off_the_request_path_and_compares_pairs(store: Store) -> None:
    svc = _service(store, primary=MockBackend(["a", "b"], name="model"))
    shadow_model = MockBackend(["a", "a"], name="shadow-model", version="2")
    shadow = svc.start_shadow(shadow_model)
    assert isinstance(shadow, Shadow)
    responses = _drive(svc, 200)
    assert {r.arm for r in responses} == {"baseline"}
    deadline = time.monotonic() + 10
    while shadow.status()["pairs"] < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    status = shadow.status()
    assert status["pairs"] == 200 and status["mirrored"] == 200
    # The primary alternates a/b, the shadow always says a: half agree.
    assert status["agreement"]["rate"] == pytest.approx(0.5)
    low, high = status["agreement"]["ci"]
    assert low < 0.5 < high
    # Labels: the truth is "a", so the shadow is right where the primary said "b".
    svc.record_outcomes([{"prediction_id": r.id, "label": "a"} for r in responses])
    status = shadow.status()
    assert status["labelled"] == 200
    assert status["baseline_accuracy"] == pytest.approx(0.5)
    assert status["candidate_accuracy"] == pytest.approx(1.0)
    assert status["mcnemar"]["p_value"] < 1e-10
    svc.log.flush()  # type: ignore[union-attr]
    arms = [r["arm"] for r in store.list_predictions(service="recs")]
    assert arms.count("shadow") == 200 and arms.count("baseline") == 200
    svc.close()


def test_a_hanging_shadow_never_delays_users(store: Store) -> None:
    svc = _service(store)
    hang = MockBackend("a", name="shadow-model", version="2", hang=True)
    shadow = svc.start_shadow(Shadow(hang, max_in_flight=4).candidate.backend, max_in_flight=4)
    t0 = time.perf_counter()
    responses = _drive(svc, 50)
    elapsed = time.perf_counter() - t0
    hang.release()
    assert all(r.tier == "model" for r in responses)
    assert elapsed < 5  # nothing waited on the hung shadow (it would take forever)
    status = shadow.status()
    assert status["mirrored"] == 4 and status["skipped"] == 46
    svc.close()


# -- A/B ---------------------------------------------------------------------------------


def test_ab_assignment_is_sticky_and_lift_has_an_interval(store: Store) -> None:
    svc = _service(store)
    ab = svc.start_ab({"treatment": MockBackend("b", name="model-b", version="2")})
    assert isinstance(ab, ABTest)

    async def go() -> list:  # type: ignore[type-arg]
        out = []
        for i in range(4000):
            out.append(await svc.predict({"i": i}, key=f"user-{i % 1000}"))
        return out

    responses = asyncio.run(go())
    by_user: dict[str, set[str]] = {}
    for i, r in enumerate(responses):
        by_user.setdefault(f"user-{i % 1000}", set()).add(r.arm)
    assert all(len(arms) == 1 for arms in by_user.values())  # sticky
    assert {r.arm for r in responses} == {"control", "treatment"}
    assert all(r.output == ("b" if r.arm == "treatment" else "a") for r in responses)
    assert res_units(ab) == 1000
    # Clicks: 10 % on control, 15 % on treatment (deterministic by index).
    outcomes = []
    for i, r in enumerate(responses):
        rate = 15 if r.arm == "treatment" else 10
        outcomes.append({"prediction_id": r.id, "reward": 1.0 if i % 100 < rate else 0.0})
    svc.record_outcomes(outcomes)
    res = ab.results()
    c, t = res["arms"]["control"], res["arms"]["treatment"]
    assert c["assigned"] + t["assigned"] == 4000
    assert res["srm"]["significant"] is False
    lift = res["lift"]["treatment"]
    assert lift["lift"] == pytest.approx(t["rate"] / c["rate"] - 1)
    assert lift["lift_ci"][0] < lift["lift"] < lift["lift_ci"][1]
    ab.stop()
    assert ab.analyses[-1]["decision"] == "report"
    svc.close()


def test_a_salt_makes_assignment_reproducible_across_rollouts() -> None:
    def arms(rollout: Canary | ABTest, svc: Service) -> list[str]:
        svc.start_rollout(rollout)
        try:
            return [r.arm for r in _drive(svc, 400)]
        finally:
            svc.stop_rollout("done")

    svc = _service(None)
    try:
        make = lambda **kw: Canary(  # noqa: E731
            MockBackend("b", name="v2", version="2"), steps=[50, 100], tick_s=None,
            record=False, **kw,
        )  # fmt: skip
        first, again = arms(make(salt="launch"), svc), arms(make(salt="launch"), svc)
        assert first == again and set(first) == {"baseline", "canary"}
        # Without a salt each rollout hashes with its own id: users are reshuffled.
        assert arms(make(), svc) != arms(make(), svc)
        ab = lambda salt: ABTest(  # noqa: E731
            {"t": MockBackend("b", name="v2", version="2")}, salt=salt, record=False
        )
        assert arms(ab("launch"), svc) == arms(ab("launch"), svc)
        assert make(salt="launch").config()["salt"] == "launch"
        with pytest.raises(ConfigError, match="salt"):
            make(salt="")
    finally:
        svc.close()


def res_units(ab: ABTest) -> int:
    return sum(a["units"] for a in ab.results()["arms"].values())


def test_ab_sample_ratio_mismatch_is_flagged(store: Store) -> None:
    svc = _service(store)
    ab = ABTest(
        {"treatment": MockBackend("b", name="model-b", version="2")},
        weights={"control": 1, "treatment": 1},
    )
    svc.start_rollout(ab)
    # A broken assigner: pretend 1,000 extra users all went to control.
    ab._units["control"].update(float(i) for i in range(1000))
    res = ab.results()
    assert res["srm"]["significant"] is True
    svc.close()


def test_ab_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="at least one treatment"):
        ABTest({})
    with pytest.raises(ConfigError, match="do not list it"):
        ABTest({"control": MockBackend()})
    with pytest.raises(ConfigError, match="positive weight"):
        ABTest({"b": MockBackend()}, weights={"b": 1.0})
