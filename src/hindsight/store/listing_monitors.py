"""The team server's monitor tables: summaries, a page of judged windows, incidents, in SQL.

A judged window is a ``window_start`` with at least one row in ``monitor_findings`` (every
check's verdict is stored, flagged or not); ``monitor_windows`` holds every window a
monitor logged, judged or not.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select

from hindsight.store import schema as t
from hindsight.store.base import Row, StoreBase, _dicts

__all__ = [
    "RECENT_WINDOWS",
    "list_monitors",
    "monitor_incidents",
    "monitor_series",
    "window_page",
]

#: "Flagged lately" counts the findings flagged in a monitor's newest this-many windows.
RECENT_WINDOWS = 7


def _own(table: Any, project: str | None, monitor: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if project is not None:
        where.append(table.c.project == project)
    if monitor is not None:
        where.append(table.c.monitor == monitor)
    return where


def list_monitors(
    store: StoreBase,
    *,
    project: str | None = None,
    monitor: str | None = None,
    recent: int = RECENT_WINDOWS,
) -> list[Row]:
    """Every monitor (or the one asked for) with what it logged and judged, by project, name.

    Each row: ``project``, ``monitor``, ``windows_stored``, ``first_window``,
    ``last_stored``, ``windows_judged``, ``last_window`` (the newest judged),
    ``flagged_recent`` (findings flagged in the newest ``recent`` judged windows),
    ``checks`` (the check names that judged it) and ``updated_at`` (its last run).
    Five reads, whatever the number of monitors.
    """
    w, f, s = t.monitor_windows, t.monitor_findings, t.monitor_state
    windows_q = (
        select(
            w.c.project, w.c.monitor, func.count().label("n"),
            func.min(w.c.window_start).label("first"), func.max(w.c.window_start).label("last"),
        )
        .where(*_own(w, project, monitor))
        .group_by(w.c.project, w.c.monitor)
    )
    judged_q = (
        select(
            f.c.project, f.c.monitor,
            func.count(func.distinct(f.c.window_start)).label("n"),
            func.max(f.c.window_start).label("last"),
        )
        .where(*_own(f, project, monitor))
        .group_by(f.c.project, f.c.monitor)
    )
    ranked = (
        select(
            f.c.project, f.c.monitor, f.c.flagged,
            func.dense_rank()
            .over(partition_by=(f.c.project, f.c.monitor), order_by=f.c.window_start.desc())
            .label("rk"),
        )
        .where(*_own(f, project, monitor))
        .subquery()
    )
    flagged_q = (
        select(ranked.c.project, ranked.c.monitor, func.count().label("n"))
        .where(ranked.c.rk <= recent, ranked.c.flagged.is_(True))
        .group_by(ranked.c.project, ranked.c.monitor)
    )
    checks_q = (
        select(f.c.project, f.c.monitor, f.c.check_name)
        .where(*_own(f, project, monitor))
        .distinct()
    )
    state_q = select(s.c.project, s.c.monitor, s.c.updated_at).where(*_own(s, project, monitor))
    out: dict[tuple[str, str], Row] = {}

    def row(p: str, m: str) -> Row:
        return out.setdefault(
            (str(p), str(m)),
            {
                "project": str(p), "monitor": str(m), "windows_stored": 0, "first_window": None,
                "last_stored": None, "windows_judged": 0, "last_window": None,
                "flagged_recent": 0, "checks": [], "updated_at": None,
            },
        )

    with store.read() as conn:
        for p, m, n, first, last in conn.execute(windows_q):
            r = row(p, m)
            r["windows_stored"], r["first_window"], r["last_stored"] = int(n), first, last
        for p, m, n, last in conn.execute(judged_q):
            r = row(p, m)
            r["windows_judged"], r["last_window"] = int(n), last
        for p, m, n in conn.execute(flagged_q):
            row(p, m)["flagged_recent"] = int(n)
        for p, m, check in conn.execute(checks_q):
            row(p, m)["checks"].append(str(check))
        for p, m, updated in conn.execute(state_q):
            row(p, m)["updated_at"] = updated
    for r in out.values():
        r["checks"].sort()
    return [out[k] for k in sorted(out)]


def _judged_starts(
    project: str, monitor: str, *, offset: int, limit: int
) -> Any:
    f = t.monitor_findings
    return (
        select(f.c.window_start)
        .where(f.c.project == project, f.c.monitor == monitor)
        .distinct()
        .order_by(f.c.window_start.desc())
        .offset(offset)
        .limit(limit)
        .subquery()
    )


def window_page(
    store: StoreBase, project: str, monitor: str, *, offset: int = 0, limit: int = 50
) -> tuple[list[Row], int]:
    """One page of a monitor's judged windows, newest first, and how many it has in all.

    Each window: ``window_start``, ``window_end`` and ``n_rows`` (``None`` when its row in
    ``monitor_windows`` is gone) and ``findings`` (``check``, ``key``, ``value``,
    ``flagged``, ``detail``), by check then key. One page read and one count.
    """
    f, w = t.monitor_findings, t.monitor_windows
    starts = _judged_starts(project, monitor, offset=offset, limit=limit)
    page = (
        select(
            f.c.window_start, f.c.check_name, f.c.key, f.c.value, f.c.flagged, f.c.detail,
            w.c.window_end, w.c.n_rows,
        )
        .select_from(
            f.join(starts, starts.c.window_start == f.c.window_start).outerjoin(
                w,
                and_(
                    w.c.project == f.c.project,
                    w.c.monitor == f.c.monitor,
                    w.c.window_start == f.c.window_start,
                ),
            )
        )
        .where(f.c.project == project, f.c.monitor == monitor)
        .order_by(f.c.window_start.desc(), f.c.check_name, f.c.key, f.c.created_at, f.c.id)
    )
    count = select(func.count(func.distinct(f.c.window_start))).where(
        f.c.project == project, f.c.monitor == monitor
    )
    with store.read() as conn:
        rows = _dicts(conn.execute(page))
        total = int(conn.execute(count).scalar_one())
    windows: dict[float, Row] = {}
    for r in rows:
        start = float(r["window_start"])
        win = windows.setdefault(
            start,
            {
                "window_start": start,
                "window_end": None if r["window_end"] is None else float(r["window_end"]),
                "n_rows": None if r["n_rows"] is None else int(r["n_rows"]),
                "findings": [],
            },
        )
        win["findings"].append(
            {
                "check": str(r["check_name"]),
                "key": str(r["key"]),
                "value": None if r["value"] is None else float(r["value"]),
                "flagged": bool(r["flagged"]),
                "detail": str(r["detail"] or ""),
            }
        )
    return list(windows.values()), total


def monitor_series(
    store: StoreBase, project: str, monitor: str, *, windows: int = 400
) -> list[Row]:
    """Each finding of the newest ``windows`` judged windows, oldest first (for charts).

    Rows: ``window_start``, ``check``, ``key``, ``value``, ``flagged``. One read.
    """
    f = t.monitor_findings
    starts = _judged_starts(project, monitor, offset=0, limit=windows)
    q = (
        select(f.c.window_start, f.c.check_name, f.c.key, f.c.value, f.c.flagged)
        .select_from(f.join(starts, starts.c.window_start == f.c.window_start))
        .where(f.c.project == project, f.c.monitor == monitor)
        .order_by(f.c.window_start, f.c.check_name, f.c.key)
    )
    with store.read() as conn:
        rows = conn.execute(q).all()
    return [
        {
            "window_start": float(r[0]),
            "check": str(r[1]),
            "key": str(r[2]),
            "value": None if r[3] is None else float(r[3]),
            "flagged": bool(r[4]),
        }
        for r in rows
    ]


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def monitor_incidents(
    store: StoreBase, project: str, *, checks: Iterable[str] | None = None, limit: int = 200
) -> list[Row]:
    """The project's newest monitor incidents (failures with source ``monitor``).

    ``checks`` keeps those opened by a rule on one of these checks (a monitor's own; an
    incident records the check, not the monitor). Each row: ``id``, ``experiment_id``,
    ``created_at``, ``title``, ``severity``, ``check``, ``key``, ``rule``,
    ``postmortems`` (``id``, ``status``, newest first) and ``open`` (no final post-mortem).
    """
    fl, pm = t.failures, t.postmortems
    q = (
        select(fl.c.id, fl.c.experiment_id, fl.c.created_at, fl.c.message, fl.c.evidence)
        .where(fl.c.project == project, fl.c.source == "monitor")
        .order_by(fl.c.created_at.desc(), fl.c.id.desc())
        .limit(limit)
    )
    keep = None if checks is None else set(checks)
    with store.read() as conn:
        rows = conn.execute(q).all()
        found: list[Row] = []
        for fid, exp_id, created, message, evidence in rows:
            ev = evidence if isinstance(evidence, dict) else {}
            check = str(ev.get("monitor") or "")
            if keep is not None and check not in keep:
                continue
            alert = _mapping(ev.get("alert"))
            rule = _mapping(ev.get("rule"))
            found.append(
                {
                    "id": str(fid),
                    "experiment_id": exp_id,
                    "created_at": float(created),
                    "title": str(message or ""),
                    "severity": str(alert.get("severity") or rule.get("severity") or ""),
                    "check": check,
                    "key": str(ev.get("key") or ""),
                    "rule": str(rule.get("name") or ""),
                    "postmortems": [],
                    "open": True,
                }
            )
        if found:
            by_id = {r["id"]: r for r in found}
            pq = (
                select(pm.c.id, pm.c.failure_id, pm.c.status)
                .where(pm.c.failure_id.in_(list(by_id)))
                .order_by(pm.c.created_at.desc(), pm.c.id.desc())
            )
            for pid, failure_id, status in conn.execute(pq):
                inc = by_id[str(failure_id)]
                inc["postmortems"].append({"id": str(pid), "status": str(status)})
                if status == "final":
                    inc["open"] = False
    return found
