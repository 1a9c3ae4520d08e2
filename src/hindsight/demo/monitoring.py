"""Monitoring scenarios with generated, seeded data (the demo's and the tests' ground truth).

Fraud during a festive sale. A card issuer scores transactions hourly. Every year a
festive sale week lifts what genuine customers spend and how often they buy. Last year's
model took the sale in its stride. This year's model leans on the amount, so during
this year's sale it blocks many more verified (genuine) customers. Against last year's
sale, the same relative hour (an :class:`~hindsight.monitor.windows.EventReference`),
the spending swing is expected and raises no drift alarm; against the trailing day it
looks like drift. The block rate on verified accounts rises either way, and that is
the alert.

Resume screening. A screening model sees a day of applications at a time. From the
second week, applicants list skills the model never saw and stuff job-ad keywords into
their resumes; experience and education stay as they were. Against the training data's
profile, input drift is found in exactly the features that changed.

A recommender reinforcing itself. Each day the ranking policy leans harder on what was
clicked before, so exposure concentrates on fewer items (the Gini coefficient of item
exposure climbs) and treated users click less, while a random holdout slice keeps its
click rate: treated quality falls behind the holdout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

__all__ = [
    "FeedbackScenario",
    "FraudScenario",
    "ResumeScenario",
    "fraud_during_sale",
    "recommender_feedback_loop",
    "resume_screening",
]

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


@dataclass(frozen=True)
class ResumeScenario:
    """Training applications, the daily log, and when the change began."""

    training: pa.Table
    table: pa.Table  # ts, years_experience, education, top_skill, n_skills, keyword_density, ...
    change_start: float
    changed: tuple[str, ...]  # the features that drift


_SKILLS = np.array(["python", "sql", "excel", "java", "statistics", "spark", "aws", "tableau"])
_NEW_SKILLS = np.array(["llm-ops", "rag", "prompt-engineering"])


def _applications(rng: np.random.Generator, n: int, *, changed: bool) -> dict[str, np.ndarray]:
    skills = rng.choice(_SKILLS, n)
    if changed:
        new = rng.random(n) < 0.3
        skills = np.where(new, rng.choice(_NEW_SKILLS, n), skills)
    stuffed = changed & (rng.random(n) < 0.4)
    density = np.clip(rng.beta(2, 30, n) + np.where(stuffed, rng.uniform(0.08, 0.2, n), 0), 0, 1)
    years = np.round(rng.gamma(3.0, 2.0, n), 1)
    education = rng.choice(
        np.array(["bachelor", "master", "phd", "none"]), n, p=[0.55, 0.3, 0.05, 0.1]
    )
    score = 1 / (1 + np.exp(-(0.15 * years + 25 * density - 3.0 + rng.normal(0, 0.5, n))))
    return {
        "years_experience": years,
        "education": education,
        "top_skill": skills,
        "n_skills": rng.poisson(6, n).astype(float),
        "keyword_density": density,
        "score": score,
        "decision": np.where(score > 0.5, "interview", "reject"),
    }


def resume_screening(seed: int = 5, per_day: int = 400, days: int = 14) -> ResumeScenario:
    """``days`` daily windows of applications; the second half brings the change."""
    rng = np.random.default_rng(seed)
    start = 1_767_225_600.0  # 2026-01-01
    change = start + (days // 2) * DAY
    parts = []
    for d in range(days):
        cols = _applications(rng, per_day, changed=start + d * DAY >= change)
        cols["ts"] = start + d * DAY + rng.uniform(0, DAY, per_day)
        parts.append(cols)
    table = pa.table({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    training = pa.table(_applications(rng, 5000, changed=False))
    return ResumeScenario(training, table, change, ("top_skill", "keyword_density"))


@dataclass(frozen=True)
class FeedbackScenario:
    """The recommendation log: one recommended item per row, its slice and the click."""

    table: pa.Table  # ts, slice, prediction (item), clicked
    start: float
    days: int


def recommender_feedback_loop(
    seed: int = 3, per_day: int = 8000, days: int = 28, items: int = 300, holdout: float = 0.15
) -> FeedbackScenario:
    """``days`` days of a ranking policy that feeds on its own clicks, with a holdout."""
    rng = np.random.default_rng(seed)
    start = 1_767_225_600.0
    base = rng.dirichlet(np.full(items, 2.0))  # items' appeal
    parts = []
    for d in range(days):
        sharp = 1.0 + 0.12 * d  # the policy leans harder on past popularity each day
        weights = base**sharp
        weights /= weights.sum()
        is_holdout = rng.random(per_day) < holdout
        item = np.where(
            is_holdout, rng.integers(0, items, per_day), rng.choice(items, per_day, p=weights)
        )
        # Treated users tire of the same few items; the holdout's random items do not.
        p_click = np.where(is_holdout, 0.08, max(0.12 - 0.003 * d, 0.01))
        parts.append(
            {
                "ts": start + d * DAY + rng.uniform(0, DAY, per_day),
                "slice": np.where(is_holdout, "holdout", "treated"),
                "prediction": np.char.add("item-", item.astype(str)),
                "clicked": rng.random(per_day) < p_click,
            }
        )
    table = pa.table({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    return FeedbackScenario(table, start, days)
