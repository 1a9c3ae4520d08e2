"""Circuit breakers' state changes: record them and read each tier's newest (``Store`` inherits these).

A row of ``breaker_events`` is one state of one tier's breaker in one service: a change
(``previous != state``, with the reason and the breaker's figures at the change), or the
tier's state when its service started or changed its chain (``previous == state``; the
serving layer records every tier of the chain then, all at one time). That time is the
service's *configured_at*: a tier whose newest row is older was not in the chain of the
service's latest start, so it is reported with ``current`` false (and the Services list
does not count it as open now).

Each tier's newest row is found in SQL, with ``ROW_NUMBER()`` over ``(service, tier)``
ordered by time (the ``(service, tier, at)`` index), in one query for all tiers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, func, insert, select

from hindsight.errors import ConfigError
from hindsight.store import schema as t
from hindsight.store.base import Row, StoreBase, _dicts

__all__ = ["BREAKER_STATES", "BreakersMixin", "newest_breaker_events"]

#: The states a breaker can be in.
BREAKER_STATES = ("closed", "open", "half_open")

_COLUMNS = ("service", "tier", "state", "previous", "reason", "snapshot", "at",
            "schema_version")  # fmt: skip


def newest_breaker_events(service: str | None = None) -> Select[Any]:
    """Each (service, tier)'s newest row (every column) with its service's ``configured_at``
    (``None`` if the service never recorded its chain), for one service or all."""
    b = t.breaker_events
    ranked = select(
        b,
        func.row_number()
        .over(partition_by=(b.c.service, b.c.tier), order_by=(b.c.at.desc(), b.c.id.desc()))
        .label("rn"),
    )
    configured = select(b.c.service, func.max(b.c.at).label("configured_at")).where(
        b.c.previous == b.c.state
    )
    if service is not None:
        ranked = ranked.where(b.c.service == service)
        configured = configured.where(b.c.service == service)
    r = ranked.subquery("ranked")
    c = configured.group_by(b.c.service).subquery("configured")
    return (
        select(*(r.c[name] for name in ("id", *_COLUMNS)), c.c.configured_at)
        .select_from(r.outerjoin(c, c.c.service == r.c.service))
        .where(r.c.rn == 1)
    )


def _current(row: Mapping[str, Any]) -> bool:
    configured = row.get("configured_at")
    return configured is None or float(row["at"]) >= float(configured)


class BreakersMixin(StoreBase):
    """Circuit breakers' state changes: record them and read each tier's newest (``Store`` inherits these)."""

    def append_breaker_events(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert a batch of ``breaker_events`` rows (no ``id``): one transaction."""
        if not rows:
            return
        values = []
        for r in rows:
            missing = [c for c in _COLUMNS if c not in r and c != "reason"]
            if missing:
                raise ConfigError(
                    f"A breaker event needs {', '.join(missing)}; got the keys {sorted(r)}."
                )
            values.append({c: r.get(c) for c in _COLUMNS})
        with self.write() as conn:
            conn.execute(insert(t.breaker_events), values)

    def breaker_states(self, service: str) -> list[Row]:
        """Each tier's newest event of ``service`` (every column, plus ``configured_at`` and
        ``current``), the tiers of the service's latest chain first, in chain order."""
        with self.read() as conn:
            rows = _dicts(conn.execute(newest_breaker_events(service)))
        for row in rows:
            row["current"] = _current(row)
        return sorted(rows, key=_chain_order)

    def breaker_events(
        self, service: str, tier: str | None = None, *, limit: int = 50, offset: int = 0
    ) -> list[Row]:
        """The recent events of ``service`` (or of one tier), newest first."""
        b = t.breaker_events
        query = (
            select(b)
            .where(*self._breaker_where(service, tier))
            .order_by(b.c.at.desc(), b.c.id.desc())
            .offset(max(0, int(offset)))
            .limit(max(0, int(limit)))
        )
        with self.read() as conn:
            return _dicts(conn.execute(query))

    def count_breaker_events(self, service: str, tier: str | None = None) -> int:
        """How many events ``service`` (or one tier) has recorded."""
        query = (
            select(func.count())
            .select_from(t.breaker_events)
            .where(*self._breaker_where(service, tier))
        )
        with self.read() as conn:
            return int(conn.execute(query).scalar_one())

    @staticmethod
    def _breaker_where(service: str, tier: str | None) -> list[Any]:
        b = t.breaker_events
        where = [b.c.service == service]
        if tier is not None:
            where.append(b.c.tier == tier)
        return where


def _chain_order(row: Mapping[str, Any]) -> tuple[int, int, str]:
    snapshot = row.get("snapshot")
    position = snapshot.get("position") if isinstance(snapshot, Mapping) else None
    if not isinstance(position, int) or isinstance(position, bool):
        position = 1 << 30
    return (0 if row.get("current") else 1, position, str(row["tier"]))
