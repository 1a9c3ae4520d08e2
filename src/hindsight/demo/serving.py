"""The demo's last act: the hybrid recommender goes live behind a guarded service.

The service answers with the hybrid model, falls back to the collaborative-filtering
baseline, then to the most popular items, all within 50 ms. A short outage of the
hybrid shows the fallback and its circuit breaker opening and closing. Then a
teammate's retrain ("hybrid-2", which lost the side-feature map, so new users get
popular items) is canaried during a sign-up campaign, when half the requests come from
new users: simulated users click (a click is a held-out item of the
user in the top 10), the canary's click rate is compared with the baseline's as the
rewards arrive, and the canary rolls itself back and lands in the ledger as a failed
experiment. Time is simulated (one interval per batch of requests) so this takes seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hindsight.demo.recsys import RecsysData
from hindsight.demo.recsys.factors import top_k
from hindsight.ledger import Ledger
from hindsight.serving import CallableBackend, CircuitBreaker, ModelOutput, RulesBackend, Tier
from hindsight.serving.rollout.canary import Canary
from hindsight.serving.service import Service

__all__ = ["ServingResult", "run_serving_demo"]

Say = Callable[[str], None]


@dataclass
class ServingResult:
    """What the serving act recorded."""

    service: str
    requests: int = 0
    tiers: dict[str, int] = field(default_factory=dict)
    breaker_opened: bool = False
    breaker_closed_again: bool = False
    rollout_id: str | None = None
    canary_status: str | None = None
    canary_reason: str = ""
    canary_experiment: str | None = None
    canary_failure: str | None = None
    intervals: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _recommender(
    model: Any, name: str, version: str, outage: list[bool] | None = None
) -> CallableBackend:
    def predict(inputs: Mapping[str, Any]) -> ModelOutput:
        if outage is not None and outage[0]:
            raise ConnectionError(f"{name} feature store timed out")
        items = model.recommend(int(inputs["user_id"]), 10, new_user=bool(inputs["new_user"]))
        return ModelOutput([int(i) for i in items])

    return CallableBackend(predict, name=name, version=version)


def run_serving_demo(
    ledger: Ledger,
    data: RecsysData,
    hybrid: Any,
    baseline: Any,
    worse: Any,
    *,
    project: str | None = None,
    seed: int = 7,
    say: Say = print,
) -> ServingResult:
    """Serve ``hybrid`` (falling back to ``baseline``, then popularity) and canary ``worse``."""
    result = ServingResult("recommend")
    popular = [int(i) for i in top_k(data.item_popularity().astype(np.float64), 10)]
    outage = [False]
    breaker = CircuitBreaker(window=20, min_calls=10, error_rate=0.5, open_for_s=0.05)
    service = Service(
        "recommend",
        [
            Tier(_recommender(hybrid, "hybrid", "hybrid-1", outage), breaker=breaker),
            _recommender(baseline, "cf", "cf-1"),
            RulesBackend([], popular, name="popular", version="1"),
        ],
        deadline_ms=50,
        store=ledger.store,
        ledger=ledger,
        project=project,
    )
    # Who clicks what: the held-out clicks of existing and new users.
    clicks: dict[tuple[int, bool], set[int]] = {}
    for users, items, new in (
        (data.test_users, data.test_items, False),
        (data.new_test_users, data.new_test_items, True),
    ):
        for u, i in zip(users.tolist(), items.tolist(), strict=True):
            clicks.setdefault((u, new), set()).add(i)
    known = sorted(k for k in clicks if not k[1])
    fresh = sorted(k for k in clicks if k[1])
    rng = np.random.default_rng(seed)
    # New users' share of requests: as many as in the data, and during the sign-up
    # campaign the canary runs in, half of all requests (where the retrain falls short).
    everyday = len(fresh) / len(clicks)
    campaign = 0.5

    async def traffic(n: int, new_share: float) -> list[tuple[Any, bool]]:
        is_new = rng.random(n) < new_share
        picks = np.where(is_new, rng.integers(0, len(fresh), n), rng.integers(0, len(known), n))
        out = []
        for p, picked_new in zip(picks.tolist(), is_new.tolist(), strict=True):
            user, new = (fresh if picked_new else known)[p]
            r = await service.predict({"user_id": user, "new_user": new}, key=f"{int(new)}:{user}")
            result.requests += 1
            result.tiers[r.tier] = result.tiers.get(r.tier, 0) + 1
            out.append((r, bool(clicks[(user, new)] & set(r.output))))
        return out

    try:
        say("\n[9] serving: hybrid -> cf-baseline -> popular items, 50 ms deadline")
        asyncio.run(traffic(300, everyday))
        say(f"  300 requests: {_tiers(result.tiers)}")
        outage[0] = True
        asyncio.run(traffic(60, everyday))
        result.breaker_opened = breaker.snapshot()["state"] == "open"
        say(f"  the hybrid's feature store goes down for 60 requests: breaker "
            f"{breaker.snapshot()['state']} ({breaker.reason}); cf-baseline answers")  # fmt: skip
        outage[0] = False
        time.sleep(0.06)  # the breaker's open period; then half-open probes succeed
        asyncio.run(traffic(100, everyday))
        result.breaker_closed_again = breaker.snapshot()["state"] == "closed"
        say(f"  recovered: breaker {breaker.snapshot()['state']}; so far {_tiers(result.tiers)}")

        say(
            "\n[10] canary: hybrid-2, a retrain that lost the side-feature map, during a "
            "sign-up campaign (half the requests from new users)"
        )
        clock = _Clock()
        canary = Canary(
            _recommender(worse, "hybrid", "hybrid-2"),
            steps=[5, 25, 50, 100], interval_s=60, min_requests=20, min_labels=50,
            tick_s=None, clock=clock, salt="recsys-demo",  # the same users on the canary each run
        )  # fmt: skip
        service.start_rollout(canary)
        result.rollout_id = canary.id
        for interval in range(12):
            share = canary.share
            answered = asyncio.run(traffic(800, campaign))
            # Clicks come back as rewards (here at once; in production, later).
            service.record_outcomes(
                [{"prediction_id": r.id, "reward": 1.0 if hit else 0.0} for r, hit in answered]
            )
            clock.now += 61
            canary.tick()
            result.intervals = interval + 1
            last = canary.analyses[-1] if canary.analyses else None
            decision = last["decision"] if last else "waiting for data"
            say(f"  interval {interval + 1}: canary at {share:.0%} -> {decision}")
            if not canary.active:
                break
        result.canary_status = canary.status_name
        result.canary_reason = canary.reason
        result.canary_experiment = canary.experiment.id if canary.experiment else None
        result.canary_failure = canary.failure_id
        say(f"  {canary.status_name}: {canary.reason}")
        if canary.failure_id:
            say(f"  recorded as failed experiment {result.canary_experiment}, failure "
                f"{canary.failure_id}")  # fmt: skip
    finally:
        service.close()
    return result


def _tiers(counts: Mapping[str, int]) -> str:
    total = sum(counts.values()) or 1
    return ", ".join(f"{t} {n / total:.0%}" for t, n in sorted(counts.items(), key=lambda x: -x[1]))
