"""The team server's services pages: the prediction log and rollouts, aggregated in SQL.

Every number here is computed by the database (``GROUP BY`` and window functions); no
function loads the window's prediction rows into Python. What comes back is a few rows
per service: one per (service, tier), per (service, version), per (service, hour, tier).

Latency percentiles are **exact**, computed in SQL that runs unchanged on SQLite (3.25+)
and PostgreSQL: ``ROW_NUMBER()`` and ``COUNT(*)`` over each service's window, ordered by
latency, select the few rows around the ranks ``(n - 1) * q``; Python then interpolates
between the two neighbours exactly as NumPy's default (``method="linear"``) does, so
``p95_ms`` equals ``numpy.percentile(latencies, 95)``. The database sorts each service's
window once for this; only a handful of rows per service and percentile travel back.

Each service's circuit breakers (``breakers``: how many tiers of its latest chain are
closed, open or half-open now) come from each tier's newest ``breaker_events`` row, found
with a window function too (:func:`hindsight.store.breakers.newest_breaker_events`).

A request counts as *abstained* when its logged ``reason`` says so (case-insensitive) (the serving layer
writes ``"…: abstained (…)"`` or ``"…; abstained: …"``; the monitors' prediction-log
source uses the same test), and as *sent for review* when it has a ``review_ticket``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, case, cast, func, or_, select, union

from hindsight.store import schema as t
from hindsight.store.base import Row, StoreBase, _dicts
from hindsight.store.breakers import BREAKER_STATES, newest_breaker_events

__all__ = [
    "PERCENTILES",
    "breaker_counts",
    "known_services",
    "page_rollouts",
    "service_summaries",
    "tier_hours",
]

#: The latency percentiles reported, as fractions.
PERCENTILES: tuple[float, ...] = (0.50, 0.95)

# Rows within this many ranks of (n - 1) * q are fetched: the two neighbours NumPy
# interpolates between, with room for the product rounding differently in the database.
_RANK_BAND = 1.5

# The columns of a rollout a summary carries (not its config or analyses).
_ROLLOUT_BRIEF = ("id", "kind", "baseline", "candidate", "status", "step", "share", "reason",
                  "experiment_id", "failure_id", "created_at", "updated_at", "ended_at")


def _abstained() -> ColumnElement[bool]:
    return func.lower(t.predictions.c.reason).contains("abstained", autoescape=True)


def _ones(cond: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((cond, 1), else_=0))


def _window(since: float, until: float, service: str | None) -> list[ColumnElement[bool]]:
    p = t.predictions
    where = [p.c.created_at >= since, p.c.created_at <= until]
    if service is not None:
        where.append(p.c.service == service)
    return where


def known_services(store: StoreBase, *, service: str | None = None) -> dict[str, float | None]:
    """Every service in the prediction log (at any time), with a rollout or with a recorded
    circuit-breaker state, by name, with the time of its last logged request (``None``:
    none logged)."""
    p, r, b = t.predictions, t.rollouts, t.breaker_events
    logged = select(p.c.service, func.max(p.c.created_at).label("last")).group_by(p.c.service)
    rolled_q, broke_q = select(r.c.service), select(b.c.service)
    if service is not None:
        logged = logged.where(p.c.service == service)
        rolled_q = rolled_q.where(r.c.service == service)
        broke_q = broke_q.where(b.c.service == service)
    rolled = union(rolled_q, broke_q)
    with store.read() as conn:
        out: dict[str, float | None] = {
            str(s): float(last) for s, last in conn.execute(logged).all()
        }
        for (s,) in conn.execute(rolled).all():
            out.setdefault(str(s), None)
    return dict(sorted(out.items()))


def _percentiles(conn: Any, where: Sequence[ColumnElement[bool]]) -> dict[str, dict[str, float]]:
    """Exact latency percentiles per service (see the module's docstring)."""
    p = t.predictions
    ranked = (
        select(
            p.c.service,
            p.c.latency_ms,
            func.row_number()
            .over(partition_by=p.c.service, order_by=(p.c.latency_ms, p.c.id))
            .label("rn"),
            func.count().over(partition_by=p.c.service).label("cnt"),
        )
        .where(*where)
        .subquery()
    )
    near = [
        and_(
            ranked.c.rn - 1 > (ranked.c.cnt - 1) * q - _RANK_BAND,
            ranked.c.rn - 1 < (ranked.c.cnt - 1) * q + _RANK_BAND,
        )
        for q in PERCENTILES
    ]
    query = select(ranked.c.service, ranked.c.rn, ranked.c.cnt, ranked.c.latency_ms).where(
        or_(*near)
    )
    ranks: dict[str, tuple[int, dict[int, float]]] = {}
    for s, rn, cnt, ms in conn.execute(query).all():
        ranks.setdefault(str(s), (int(cnt), {}))[1][int(rn) - 1] = float(ms)
    out: dict[str, dict[str, float]] = {}
    for s, (n, at) in ranks.items():
        values: dict[str, float] = {}
        for q in PERCENTILES:
            h = (n - 1) * q
            lo, hi = math.floor(h), math.ceil(h)
            values[f"p{round(q * 100)}_ms"] = at[lo] + (h - lo) * (at[hi] - at[lo])
        out[s] = values
    return out


def _latest_rollouts(conn: Any, service: str | None) -> dict[str, Row]:
    """Each service's newest rollout (its brief columns), by service."""
    r = t.rollouts
    ranked = select(
        *(r.c[name] for name in _ROLLOUT_BRIEF),
        r.c.service,
        func.row_number()
        .over(partition_by=r.c.service, order_by=(r.c.created_at.desc(), r.c.id.desc()))
        .label("rn"),
    )
    if service is not None:
        ranked = ranked.where(r.c.service == service)
    sub = ranked.subquery()
    query = select(*(sub.c[name] for name in (*_ROLLOUT_BRIEF, "service"))).where(sub.c.rn == 1)
    return {str(row["service"]): row for row in _dicts(conn.execute(query))}


def _breaker_counts(conn: Any, service: str | None) -> dict[str, dict[str, int]]:
    newest = newest_breaker_events(service).subquery()
    current = or_(newest.c.configured_at.is_(None), newest.c.at >= newest.c.configured_at)
    query = (
        select(newest.c.service, newest.c.state, func.count().label("n"))
        .where(current)
        .group_by(newest.c.service, newest.c.state)
    )
    out: dict[str, dict[str, int]] = {}
    for s, state, n in conn.execute(query).all():
        counts = out.setdefault(str(s), {**dict.fromkeys(BREAKER_STATES, 0), "tiers": 0})
        counts[str(state)] = counts.get(str(state), 0) + int(n)
        counts["tiers"] += int(n)
    return out


def breaker_counts(store: StoreBase, *, service: str | None = None) -> dict[str, dict[str, int]]:
    """Per service (or just ``service``): how many tiers of its latest chain have their
    breaker ``closed``, ``open`` or ``half_open`` now, and ``tiers`` in all. A service
    without a recorded breaker state is left out."""
    with store.read() as conn:
        return _breaker_counts(conn, service)


def service_summaries(
    store: StoreBase, *, since: float, until: float, service: str | None = None
) -> list[Row]:
    """One row per known service (or just ``service``), over ``[since, until]``.

    Each row: ``service``, ``last_seen`` (its newest request at any time), ``requests``,
    ``tiers`` (requests per tier, most first) and ``tier_shares``, ``fell_back``,
    ``abstained``, ``reviewed`` with their ``…_rate``, ``p50_ms`` and ``p95_ms`` (``None``
    without requests), ``versions`` (requests per model version, most first),
    ``latest_rollout`` (its kind, versions, status, step, share…; or ``None``) and
    ``breakers`` (see :func:`breaker_counts`; ``None`` without a recorded state).
    """
    p = t.predictions
    where = _window(since, until, service)
    tiers_q = (
        select(
            p.c.service,
            p.c.tier,
            func.count().label("n"),
            _ones(p.c.fell_back.is_(True)).label("fell_back"),
            _ones(_abstained()).label("abstained"),
            _ones(p.c.review_ticket.is_not(None)).label("reviewed"),
        )
        .where(*where)
        .group_by(p.c.service, p.c.tier)
    )
    versions_q = (
        select(p.c.service, p.c.version, func.count().label("n"))
        .where(*where)
        .group_by(p.c.service, p.c.version)
    )
    known = known_services(store, service=service)
    with store.read() as conn:
        tier_rows = conn.execute(tiers_q).all()
        version_rows = conn.execute(versions_q).all()
        percentiles = _percentiles(conn, where)
        latest = _latest_rollouts(conn, service)
        breakers = _breaker_counts(conn, service)
    rows: dict[str, Row] = {}
    for name, last in known.items():
        rows[name] = {
            "service": name, "last_seen": last, "requests": 0, "tiers": {}, "versions": {},
            "fell_back": 0, "abstained": 0, "reviewed": 0,
        }
    for s, tier, n, fell_back, abstained, reviewed in tier_rows:
        row = rows[str(s)]
        row["tiers"][str(tier)] = int(n)
        row["requests"] += int(n)
        row["fell_back"] += int(fell_back or 0)
        row["abstained"] += int(abstained or 0)
        row["reviewed"] += int(reviewed or 0)
    for s, version, n in version_rows:
        rows[str(s)]["versions"][str(version)] = int(n)
    for name, row in rows.items():
        n = row["requests"]
        row["tiers"] = _most_first(row["tiers"])
        row["versions"] = _most_first(row["versions"])
        row["tier_shares"] = {k: v / n for k, v in row["tiers"].items()}
        for key in ("fell_back", "abstained", "reviewed"):
            row[f"{key}_rate"] = row[key] / n if n else None
        for q in PERCENTILES:
            key = f"p{round(q * 100)}_ms"
            row[key] = percentiles.get(name, {}).get(key)
        row["latest_rollout"] = latest.get(name)
        row["breakers"] = breakers.get(name)
    return list(rows.values())


def _most_first(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _floor(store: StoreBase, value: ColumnElement[Any]) -> ColumnElement[Any]:
    """``floor(value)`` for a value >= 0 on both backends (SQLite may lack ``floor``;
    its ``CAST(… AS INTEGER)`` truncates, which is the floor of a non-negative number;
    PostgreSQL's cast rounds, so it gets ``floor``)."""
    if store.backend == "postgresql":
        return cast(func.floor(value), Integer)
    return cast(value, Integer)


def tier_hours(
    store: StoreBase, service: str, *, since: float, until: float
) -> list[tuple[int, str, int]]:
    """Requests per (hour, tier) of one service: ``(hour, tier, count)`` rows, where hour
    ``i`` is ``[since + 3600 i, since + 3600 (i + 1))``; only hours with traffic appear."""
    p = t.predictions
    hour = _floor(store, (p.c.created_at - since) / 3600.0).label("hour")
    query = (
        select(hour, p.c.tier, func.count().label("n"))
        .where(*_window(since, until, service))
        .group_by(hour, p.c.tier)
        .order_by(hour, p.c.tier)
    )
    with store.read() as conn:
        return [(int(h), str(tier), int(n)) for h, tier, n in conn.execute(query).all()]


def page_rollouts(
    store: StoreBase, *, service: str | None = None, offset: int = 0, limit: int = 50
) -> tuple[list[Row], int]:
    """One page of rollouts (every column), newest first, and how many there are."""
    r = t.rollouts
    where = [] if service is None else [r.c.service == service]
    page = (
        select(r)
        .where(*where)
        .order_by(r.c.created_at.desc(), r.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    rows, total = store.page_and_count(page, r, where)
    return rows, total
