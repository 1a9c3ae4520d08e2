"""Monitoring scenarios with generated, seeded data (the demo's and the tests' ground truth).

Fraud during a festive sale. A card issuer scores transactions hourly. Every year a
festive sale week lifts what genuine customers spend and how often they buy. Last year's
model took the sale in its stride. This year's model leans on the amount, so during
this year's sale it blocks many more verified (genuine) customers. Against last year's
sale, the same relative hour (an :class:`~hindsight.monitor.windows.EventReference`),
the spending swing is expected and raises no drift alarm; against the trailing day it
looks like drift. The block rate on verified accounts rises either way, and that is
the alert.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

__all__ = ["FraudScenario", "fraud_during_sale"]

HOUR = 3600
DAY = 24 * HOUR


@dataclass(frozen=True)
class FraudScenario:
    """The generated log and the calendar it follows."""

    table: pa.Table  # ts, amount, tx_per_day, channel, account, decision, score
    events: dict[str, tuple[float, float]]  # "sale-2025", "sale-2026": (start, end)
    sale_start: float  # this year's
    normal_until: float  # the end of the ordinary weeks before this year's sale


def _hourly(
    rng: np.random.Generator, start: float, hours: int, *, sale: bool, eager_model: bool, n: int
) -> dict[str, np.ndarray]:
    size = hours * n
    ts = start + np.repeat(np.arange(hours) * HOUR, n) + rng.uniform(0, HOUR, size)
    fraud = rng.random(size) < 0.02
    verified = ~fraud & (rng.random(size) < 0.7)
    lift = 1.8 if sale else 1.0
    amount = np.where(
        fraud, rng.lognormal(5.2, 0.6, size), rng.lognormal(3.6 + np.log(lift), 0.5, size)
    )
    tx_per_day = np.where(fraud, rng.poisson(9, size), rng.poisson(2 * lift, size)).astype(float)
    channel = rng.choice(np.array(["web", "app", "store"]), size, p=[0.5, 0.35, 0.15])
    # Last year's model weighs spending against the customer's usual pattern (frequency
    # rises with amount in a sale, so the score barely moves); this year's leans on the
    # amount alone.
    if eager_model:
        z = 1.6 * (np.log(amount) - 4.4) + 0.15 * (tx_per_day - 2.0)
    else:
        z = 1.6 * (np.log(amount) - 4.4 - np.log(lift)) + 0.4 * (tx_per_day - 2.0 * lift)
    score = 1.0 / (1.0 + np.exp(-(z + rng.normal(0, 0.6, size))))
    decision = np.where(score > 0.8, "block", np.where(score > 0.6, "review", "approve"))
    return {
        "ts": ts,
        "amount": amount,
        "tx_per_day": tx_per_day,
        "channel": channel,
        "account": np.where(verified, "verified", "unverified"),
        "decision": decision,
        "score": score,
    }


def fraud_during_sale(
    seed: int = 11, per_hour: int = 150, ordinary_days: int = 21
) -> FraudScenario:
    """Last year's sale week, ``ordinary_days`` ordinary days, then this year's sale week."""
    rng = np.random.default_rng(seed)
    last_sale = 1_764_547_200.0  # 2025-12-01 00:00 UTC
    this_sale = last_sale + 364 * DAY  # 2026-11-30, the same weekday
    ordinary = this_sale - ordinary_days * DAY
    parts = [
        _hourly(rng, last_sale, 7 * 24, sale=True, eager_model=False, n=per_hour),
        _hourly(rng, ordinary, ordinary_days * 24, sale=False, eager_model=True, n=per_hour),
        _hourly(rng, this_sale, 7 * 24, sale=True, eager_model=True, n=per_hour),
    ]
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return FraudScenario(
        table=pa.table(cols),
        events={
            "sale-2025": (last_sale, last_sale + 7 * DAY),
            "sale-2026": (this_sale, this_sale + 7 * DAY),
        },
        sale_start=this_sale,
        normal_until=this_sale,
    )
