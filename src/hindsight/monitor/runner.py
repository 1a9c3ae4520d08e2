"""Scheduled monitoring: one pass over the windows that closed since the last one.

:func:`run_monitor` does what ``hindsight monitor run`` does, once (for cron or
Airflow): pull new rows from the monitor's source into its windows, then judge each
window that has closed (its end ``settle_s`` or more in the past) and was not judged
before, against its reference, with every check; feed the findings to the alert rules
(alerts, and incidents in the ledger for critical ones); and write the findings and
the monitor's state in one transaction. :func:`watch_monitor` repeats that on a timer.

State. The last window judged by each check and the rule engine's memory live in the
store's ``monitor_state`` row of the monitor, written together with the findings; the
source's cursor is written in the same transaction as the rows it logged. A restart
therefore logs no row twice, judges no window twice and skips none. Alerts are sent
while a window is judged, before that commit: a crash between the two can send an
alert again on the next run (at least once, never lost).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select

from hindsight._plain import plain
from hindsight.alerts.channel import AlertChannel
from hindsight.data.profile import DatasetProfile
from hindsight.errors import ConfigError, DataError
from hindsight.ledger.ids import new_id
from hindsight.monitor.alerting import AlertRule, Decision, Finding, RuleEngine
from hindsight.monitor.checks import Check, WindowData
from hindsight.monitor.core import Monitor, _fmt
from hindsight.monitor.sources import Source
from hindsight.monitor.windows import ReferenceRule
from hindsight.store import schema as t
from hindsight.store.schema import SCHEMA_VERSION

__all__ = [
    "MonitorPlan",
    "RunResult",
    "WindowResult",
    "findings",
    "load_state",
    "run_monitor",
    "watch_monitor",
]


@dataclass(frozen=True)
class MonitorPlan:
    """What a scheduled monitor does: its windows, reference, checks, rules and source."""

    monitor: Monitor
    reference: ReferenceRule | DatasetProfile
    checks: tuple[Check, ...]
    rules: tuple[AlertRule, ...] = ()
    channels: tuple[AlertChannel, ...] = ()
    source: Source | None = None
    settle_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.checks:
            raise ConfigError("A MonitorPlan needs at least one check, e.g. DriftCheck().")
        object.__setattr__(self, "checks", tuple(self.checks))
        object.__setattr__(self, "rules", tuple(self.rules))
        object.__setattr__(self, "channels", tuple(self.channels))
        names = {c.name for c in self.checks}
        for rule in self.rules:
            if rule.monitor not in names:
                raise ConfigError(
                    f"Alert rule {rule.name!r} watches check {rule.monitor!r}, which this "
                    f"monitor does not run; its checks: {', '.join(sorted(names))}."
                )
        if not self.settle_s >= 0:
            raise ConfigError(f"settle_s must be >= 0 seconds. Got {self.settle_s!r}.")


@dataclass
class WindowResult:
    """The findings and alerts of one judged window."""

    window_start: float
    reference: str
    findings: list[Finding] = field(default_factory=list)
    alerts: list[Decision] = field(default_factory=list)
    skipped: str | None = None

    @property
    def flagged(self) -> list[Finding]:
        return [f for f in self.findings if f.flagged]

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_start": self.window_start,
            "window": _fmt(self.window_start),
            "reference": self.reference,
            "skipped": self.skipped,
            "flagged": [f.to_dict() for f in self.flagged],
            "findings": len(self.findings),
            "alerts": [d.to_dict() for d in self.alerts],
        }


@dataclass
class RunResult:
    """What one pass did."""

    monitor: str
    rows_pulled: int
    windows: list[WindowResult]
    last_window: float | None
    seconds: float

    @property
    def alerts(self) -> list[Decision]:
        return [d for w in self.windows for d in w.alerts]

    def to_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "rows_pulled": self.rows_pulled,
            "windows": [w.to_dict() for w in self.windows],
            "alerts": len(self.alerts),
            "incidents": [d.failure_id for d in self.alerts if d.failure_id],
            "last_window": self.last_window,
            "seconds": self.seconds,
        }


def load_state(monitor: Monitor) -> dict[str, Any]:
    """The monitor's saved state (``{}`` before its first run)."""
    s = t.monitor_state
    with monitor.ledger.store.read() as conn:
        row = conn.execute(
            select(s.c.state).where(
                s.c.project == monitor.ledger.settings.project, s.c.monitor == monitor.name
            )
        ).first()
    return dict(row[0]) if row is not None else {}


def _check_key(check: Check) -> str:
    # A check's memory belongs to its exact settings: a changed check starts afresh.
    return json.dumps(check.to_dict(), sort_keys=True, default=str)


def _judge(
    plan: MonitorPlan,
    start: float,
    checks: Sequence[Check],
    engine: RuleEngine,
    now: float,
    memories: dict[str, dict[str, Any]],
) -> WindowResult:
    mon = plan.monitor
    found = mon._load([start]).get(start)
    if found is None:  # pragma: no cover - windows() listed it
        raise DataError(f"Window {_fmt(start)} of monitor {mon.name!r} vanished.")
    try:
        ref_prof, ref_counts, selection = mon.reference(start, plan.reference)
    except DataError as exc:
        # No history yet (the first days of a seasonal reference): nothing to judge by.
        return WindowResult(start, "", skipped=str(exc))
    current = WindowData(found[0], found[1], _fmt(start))
    reference = WindowData(ref_prof, ref_counts, selection.description)
    result = WindowResult(start, selection.description)
    for check in checks:
        memory = memories.setdefault(_check_key(check), {})
        result.findings.extend(check.judge(start, current, reference, memory))
    result.alerts = engine.evaluate(result.findings, now=now)
    return result


def run_monitor(
    plan: MonitorPlan, *, now: float | None = None, since: float | None = None
) -> RunResult:
    """One pass: pull the source, judge every newly closed window, save state and findings.

    ``since`` (epoch seconds) leaves older windows unjudged on this pass; they still
    serve as references. Use it for a first run over a long history.
    """
    began = time.perf_counter()
    at = time.time() if now is None else float(now)
    mon = plan.monitor
    state = load_state(mon)
    pulled, cursor = 0, state.get("source")
    if plan.source is not None:
        pulled, cursor = plan.source.pull(mon, cursor, at)
    last = state.get("last_window")
    width = mon.spec.width_s
    starts = mon.windows()
    engine = RuleEngine(
        plan.rules,
        channels=plan.channels,
        ledger=mon.ledger,
        project=mon.ledger.settings.project,
        state=state.get("rules"),
    )
    memories: dict[str, dict[str, Any]] = {
        k: dict(v) for k, v in (state.get("checks") or {}).items()
    }
    # Each check has its own cursor: a check with a delay (labels arriving later) judges
    # a window after the others have.
    due: dict[float, list[Check]] = {}
    for check in plan.checks:
        memory = memories.setdefault(_check_key(check), {})
        done = memory.get("last_window")
        delay = float(getattr(check, "delay_s", 0.0))
        for s in starts:
            if (
                s + width + plan.settle_s + delay <= at
                and (done is None or s > float(done))
                and (since is None or s >= since)
            ):
                due.setdefault(s, []).append(check)
    with mon.cached():
        results = [_judge(plan, s, due[s], engine, at, memories) for s in sorted(due)]
    for s in sorted(due):
        for check in due[s]:
            memories[_check_key(check)]["last_window"] = s
    if due:
        last = max(due) if last is None else max(float(last), max(due))
    new_state = {
        "last_window": last,
        "rules": engine.state,
        "checks": memories,
        "source": cursor,
        "plan": {
            "window": mon.spec.to_dict(),
            "checks": [c.to_dict() for c in plan.checks],
            "rules": [r.to_dict() for r in plan.rules],
        },
        "updated_at": at,
    }
    _save(mon, new_state, [f for r in results for f in r.findings], at)
    return RunResult(mon.name, pulled, results, last, time.perf_counter() - began)


def _save(monitor: Monitor, state: dict[str, Any], findings: Sequence[Finding], at: float) -> None:
    project = monitor.ledger.settings.project
    s, f = t.monitor_state, t.monitor_findings
    rows = [
        {
            "id": new_id("finding"),
            "project": project,
            "monitor": monitor.name,
            "window_start": x.window_start,
            "check_name": x.monitor,
            "key": x.key[:300],
            "value": x.value,
            "flagged": x.flagged,
            "detail": x.detail,
            "evidence": dict(x.evidence),
            "created_at": at,
            "schema_version": SCHEMA_VERSION,
        }
        for x in findings
    ]
    with monitor.ledger.store.write() as conn:
        conn.execute(delete(s).where(s.c.project == project, s.c.monitor == monitor.name))
        conn.execute(
            s.insert().values(
                project=project,
                monitor=monitor.name,
                state=plain(state),
                updated_at=at,
                schema_version=SCHEMA_VERSION,
            )
        )
        if rows:
            conn.execute(f.insert(), rows)


def findings(
    monitor: Monitor, *, since: float | None = None, flagged_only: bool = False
) -> list[dict[str, Any]]:
    """Stored findings of a monitor, oldest window first."""
    f = t.monitor_findings
    query = select(f).where(
        f.c.project == monitor.ledger.settings.project, f.c.monitor == monitor.name
    )
    if since is not None:
        query = query.where(f.c.window_start >= since)
    if flagged_only:
        query = query.where(f.c.flagged.is_(True))
    with monitor.ledger.store.read() as conn:
        rows = conn.execute(query.order_by(f.c.window_start, f.c.check_name, f.c.key)).all()
    return [
        {
            "window_start": r.window_start,
            "window": _fmt(r.window_start),
            "check": r.check_name,
            "key": r.key,
            "value": r.value,
            "flagged": bool(r.flagged),
            "detail": r.detail,
        }
        for r in rows
    ]


def watch_monitor(
    plan: MonitorPlan,
    *,
    every_s: float,
    iterations: int | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterable[RunResult]:
    """Run :func:`run_monitor` every ``every_s`` seconds (``iterations`` times, or forever)."""
    if not every_s > 0:
        raise ConfigError(f"every_s must be a positive number of seconds. Got {every_s!r}.")
    done = 0
    out: list[RunResult] = []
    while iterations is None or done < iterations:
        started = time.monotonic()
        result = run_monitor(plan)
        if on_result is not None:
            on_result(result)
        if iterations is not None:
            out.append(result)
        done += 1
        if iterations is not None and done >= iterations:
            break
        sleep(max(0.0, every_s - (time.monotonic() - started)))
    return out
