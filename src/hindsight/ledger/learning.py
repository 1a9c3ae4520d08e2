"""Learning metrics: how fast a team experiments, recovers, and learns from failure.

Definitions (all over the experiments and failures of one project, or of all
projects, started in the window ``[since, until]``):

- **velocity** — experiments started per week: count / weeks, where weeks is the
  window's length (from ``since``, or the first experiment, to ``until``, default
  now) in weeks, at least one week.
- **recovery time** — for each line of work, from the end of the first failure
  after a success (or after the start) to the end of the next success. A line of
  work is the experiments joined by ``builds_on`` links and the experiments of the
  same project and name. A failure is a crashed or killed run or an outcome of
  failure; a partial outcome, and a finished run without criteria (no outcome),
  is neither a failure nor a success; running experiments are left out. Reported as the
  median and mean in hours, with the number of streaks not yet recovered.
- **lesson application rate** — lessons recorded in the window that at least one
  experiment applied by ``until``, over all lessons recorded in the window (an
  application recorded after ``until`` does not count, so a past window keeps its value).
- **repeat-failure rate** — failures in the window whose fingerprint matches an
  earlier failure that already had a lesson (linked to it or its experiment,
  recorded before the repeat), over all failures in the window.
- **innovation index** — experiments in the window that introduce an approach tag
  no earlier experiment of the project used, over all experiments in the window.
- **learning efficiency** — 0.3·application + 0.3·(1 - repeat) + 0.2·innovation +
  0.2·min(velocity/10, 1), with an undefined rate counted as 0 (and no failures
  counted as no repeats).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from hindsight.errors import LedgerError
from hindsight.ledger.records import ExperimentRecord, iso

if TYPE_CHECKING:
    from hindsight.ledger.core import Ledger

__all__ = ["LearningMetrics", "learning_metrics"]

WEEK = 7 * 24 * 3600.0


@dataclass(frozen=True)
class LearningMetrics:
    """The learning metrics of a window, with the counts behind each rate."""

    project: str | None
    since: float | None
    until: float
    experiments: int
    failures: int
    weeks: float
    velocity_per_week: float
    recovery_hours_median: float | None
    recovery_hours_mean: float | None
    recoveries: int
    unrecovered: int
    lessons: int
    lessons_applied: int
    lesson_application_rate: float | None
    repeat_failures: int
    repeat_failure_rate: float | None
    innovative_experiments: int
    innovation_index: float | None
    learning_efficiency: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["since_iso"] = iso(self.since)
        d["until_iso"] = iso(self.until)
        return d


def learning_metrics(
    ledger: Ledger,
    *,
    project: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> LearningMetrics:
    """Compute the learning metrics of a project (or all) over a window."""
    until = time.time() if until is None else until
    if since is not None and since > until:
        raise LedgerError(
            f"The window starts after it ends (since={iso(since)}, until={iso(until)}). "
            "Pass a since earlier than until."
        )
    store = ledger.store
    all_exps = [
        e for e in ledger.experiments(project=project, newest_first=False)
        if e.started_at <= until
    ]
    window = [e for e in all_exps if since is None or e.started_at >= since]
    start = since if since is not None else (window[0].started_at if window else until)
    weeks = max((until - start) / WEEK, 1.0)
    velocity = len(window) / weeks

    recoveries, unrecovered = _recoveries(window, store.all_parent_links())

    lesson_rows = [
        r for r in store.list_lessons(project=project)
        if (since is None or r["created_at"] >= since) and r["created_at"] <= until
    ]
    links = store.lesson_links(lesson_ids=[r["id"] for r in lesson_rows]) if lesson_rows else []
    applied_ids = {
        x["lesson_id"] for x in links if x["relation"] == "applied" and x["created_at"] <= until
    }
    lessons_applied = sum(r["id"] in applied_ids for r in lesson_rows)
    application = lessons_applied / len(lesson_rows) if lesson_rows else None

    failures = [
        f for f in store.list_failures(project=project)
        if f["created_at"] <= until
    ]
    in_window = [f for f in failures if since is None or f["created_at"] >= since]
    repeats = _repeats(ledger, failures, in_window)
    repeat_rate = repeats / len(in_window) if in_window else None

    innovative = _innovative(all_exps, {e.id for e in window})
    innovation = innovative / len(window) if window else None

    efficiency = (
        0.3 * (application or 0.0)
        + 0.3 * (1.0 - (repeat_rate or 0.0))
        + 0.2 * (innovation or 0.0)
        + 0.2 * min(velocity / 10.0, 1.0)
    )
    hours = [r / 3600.0 for r in recoveries]
    return LearningMetrics(
        project=project,
        since=since,
        until=until,
        experiments=len(window),
        failures=len(in_window),
        weeks=weeks,
        velocity_per_week=velocity,
        recovery_hours_median=statistics.median(hours) if hours else None,
        recovery_hours_mean=statistics.fmean(hours) if hours else None,
        recoveries=len(hours),
        unrecovered=unrecovered,
        lessons=len(lesson_rows),
        lessons_applied=lessons_applied,
        lesson_application_rate=application,
        repeat_failures=repeats,
        repeat_failure_rate=repeat_rate,
        innovative_experiments=innovative,
        innovation_index=innovation,
        learning_efficiency=efficiency,
    )


def lines_of_work(
    exps: list[ExperimentRecord], parent_links: list[tuple[str, str]]
) -> dict[str, str]:
    """experiment id -> the id of its line of work (union of builds_on and same name)."""
    parent: dict[str, str] = {e.id: e.id for e in exps}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        if a in parent and b in parent:
            parent[find(a)] = find(b)

    first_of_name: dict[tuple[str, str], str] = {}
    for e in exps:
        key = (e.project, e.name)
        if key in first_of_name:
            union(e.id, first_of_name[key])
        else:
            first_of_name[key] = e.id
    for child, par in parent_links:
        union(child, par)
    return {e.id: find(e.id) for e in exps}


def _recoveries(
    window: list[ExperimentRecord], parent_links: list[tuple[str, str]]
) -> tuple[list[float], int]:
    line = lines_of_work(window, parent_links)
    by_line: dict[str, list[ExperimentRecord]] = defaultdict(list)
    for e in window:
        if e.status != "running":
            by_line[line[e.id]].append(e)
    recoveries: list[float] = []
    unrecovered = 0
    for exps in by_line.values():
        failed_at: float | None = None
        for e in sorted(exps, key=lambda x: x.started_at):
            end = e.ended_at if e.ended_at is not None else e.started_at
            if e.failed:
                if failed_at is None:
                    failed_at = end
            elif e.outcome == "success" and failed_at is not None:
                recoveries.append(max(0.0, end - failed_at))
                failed_at = None
        if failed_at is not None:
            unrecovered += 1
    return recoveries, unrecovered


def _repeats(
    ledger: Ledger, failures: list[dict[str, Any]], in_window: list[dict[str, Any]]
) -> int:
    targets = {f["id"] for f in failures} | {f["experiment_id"] for f in failures if f["experiment_id"]}
    if not targets:
        return 0
    links = ledger.store.lesson_links(target_ids=sorted(targets))
    lesson_ids = sorted({x["lesson_id"] for x in links if x["relation"] == "source"})
    created = {r["id"]: r["created_at"] for r in ledger.store.list_lessons(ids=lesson_ids)}
    first_lesson: dict[str, float] = {}
    for x in links:
        if x["relation"] == "source" and x["lesson_id"] in created:
            t = created[x["lesson_id"]]
            first_lesson[x["target_id"]] = min(t, first_lesson.get(x["target_id"], t))
    # Per fingerprint, the two earliest moments a failure with it existed *and* had a
    # lesson; two, so a failure is never counted as a repeat of itself.
    learned: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for f in failures:
        times = [first_lesson[t] for t in (f["id"], f["experiment_id"]) if t in first_lesson]
        if times:
            entry = (max(min(times), f["created_at"]), f["id"])
            learned[f["fingerprint"]] = sorted([*learned[f["fingerprint"]], entry])[:2]
    repeats = 0
    for f in in_window:
        for t, fid in learned.get(f["fingerprint"], []):
            if fid != f["id"] and t < f["created_at"]:
                repeats += 1
                break
    return repeats


def _innovative(all_exps: list[ExperimentRecord], window_ids: set[str]) -> int:
    seen: dict[str, set[str]] = defaultdict(set)
    count = 0
    for e in sorted(all_exps, key=lambda x: x.started_at):
        tags = set(e.tags)
        new = tags - seen[e.project]
        if e.id in window_ids and new:
            count += 1
        seen[e.project] |= tags
    return count
