"""Recording failures and finding similar past ones, with their lessons and fixes.

``record_failure`` is the one seam every capability uses (experiments, the
training guard, canary rollbacks, monitor incidents): it takes where the failure
happened and its evidence, diagnoses it, stores it and returns it together with
the most similar past failures.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hindsight.diagnose import Evidence, diagnose, flatten_config
from hindsight.errors import LedgerError
from hindsight.ledger.ids import new_id
from hindsight.ledger.jsonsafe import jsonable
from hindsight.ledger.records import (
    ExperimentRecord,
    FailureRecord,
    FailureReport,
    SimilarFailure,
)
from hindsight.ledger.writer import RecordWriter, StoreWriter
from hindsight.store.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from hindsight.ledger.core import Ledger
    from hindsight.store import Store

__all__ = ["SOURCES", "config_diff", "failure_row", "record_failure", "similar_failures"]

SOURCES = ("experiment", "run", "training", "data", "serving", "canary", "monitor", "import")


def record_failure(
    ledger: Ledger,
    evidence: BaseException | Evidence | str,
    *,
    source: str,
    experiment_id: str | None = None,
    project: str | None = None,
    config: Mapping[str, Any] | None = None,
    exit_code: int | None = None,
    extra: Mapping[str, Any] | None = None,
    similar: int = 5,
    experiment_update: Mapping[str, Any] | None = None,
    writer: RecordWriter | None = None,
) -> FailureReport:
    """Diagnose, fingerprint and store a failure; return it with similar past failures.

    ``writer`` is where the failure goes (a running experiment's: the store, or the team
    server); the ledger's store by default.
    """
    if source not in SOURCES:
        raise LedgerError(f"Unknown failure source {source!r}. Use one of {', '.join(SOURCES)}.")
    if project is None and experiment_id is not None:
        # A failure belongs to its experiment's project, not to whatever the settings say.
        project = str(ledger.store.get("experiment", experiment_id)["project"])
    row = failure_row(
        evidence,
        source=source,
        experiment_id=experiment_id,
        project=project or ledger.settings.project,
        config=config,
        exit_code=exit_code,
        extra=extra,
    )
    out = writer or StoreWriter(ledger)
    out.failure(row, experiment_update if experiment_id is not None else None)
    record = FailureRecord.from_row(row)
    return FailureReport(record, out.similar(record, similar) if similar else [])


def failure_row(
    evidence: BaseException | Evidence | str,
    *,
    source: str,
    experiment_id: str | None,
    project: str,
    config: Mapping[str, Any] | None = None,
    exit_code: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A failure's record, diagnosed and fingerprinted (not yet stored)."""
    ev = _evidence(evidence, exit_code)
    diag = diagnose(ev, dict(config or {}), exit_code=exit_code)
    fp = diag.fingerprint
    row = {
        "id": new_id("failure"),
        "experiment_id": experiment_id,
        "project": project,
        "source": source,
        "created_at": time.time(),
        "exc_type": ev.exc_type,
        "message": ev.message,
        "frames": [
            {
                "filename": f.filename,
                "lineno": f.lineno,
                "function": f.function,
                "line": f.line,
                "in_user_code": f.in_user_code,
            }
            for f in ev.frames
        ],
        "log_tail": ev.log_tail or None,
        "exit_code": exit_code if exit_code is not None else ev.exit_code,
        "fingerprint": fp.hash,
        "masked_message": fp.masked_message,
        "tokens": " ".join(fp.tokens),
        "category": diag.category,
        "diagnosis": diag.to_dict(),
        # NaN metrics and numpy values are not JSON; PostgreSQL would refuse the record.
        "evidence": jsonable({"config": dict(config or {}), **dict(extra or {})}, "evidence"),
        "schema_version": SCHEMA_VERSION,
    }
    return row


def _evidence(evidence: BaseException | Evidence | str, exit_code: int | None) -> Evidence:
    if isinstance(evidence, Evidence):
        return evidence
    if isinstance(evidence, BaseException):
        return Evidence.from_exception(evidence)
    if isinstance(evidence, str):
        return Evidence.from_text(evidence, exit_code=exit_code)
    raise LedgerError(
        "A failure's evidence must be an exception, log text or a diagnose.Evidence. "
        f"Got {type(evidence).__name__}."
    )


def similar_failures(
    ledger: Ledger, failure: FailureRecord, *, k: int = 5, min_score: float = 0.35
) -> list[SimilarFailure]:
    """Past failures most like ``failure``: exact fingerprint matches first, then fuzzy.

    Matches are grouped by fingerprint (a failure seen 40 times is one entry with
    ``occurrences=40``), exclude failures of the same experiment, and only include
    failures recorded before this one.
    """
    store = ledger.store
    scores: dict[str, float] = {failure.fingerprint: 1.0}
    # Exact repeats are found by fingerprint; left in the fuzzy query, forty of them
    # would fill every slot and hide the near matches behind them. The top matches are
    # widened while other groups' repeats may still crowd out distinct ones, until
    # more than 4k fingerprints are in (one pass in the index).
    for m in ledger.index.query_groups(
        failure.tokens,
        k=max(4 * k, 20),
        min_score=min_score,
        exclude=[failure.id],
        exclude_newest=(failure.fingerprint, _GROUP_LIMIT),
        known=[failure.fingerprint],
        enough=4 * k,
    ):
        if m.score > scores.get(m.fingerprint, 0.0):
            scores[m.fingerprint] = m.score
    # A group is the earlier failures among a fingerprint's newest _GROUP_LIMIT, and is
    # summarised by the store (a count, the newest, lessons, experiments), not read.
    group = _Group(failure.created_at, failure.id, failure.experiment_id)
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    chosen: list[tuple[str, int, str, float, bool]] = []
    step = max(k, 1)
    for start in range(0, len(ranked), step):
        batch = ranked[start : start + step]
        stats = store.failure_group_stats([fp for fp, _ in batch], **group.window)
        for fp, score in batch:
            if fp in stats:
                exact = fp == failure.fingerprint
                chosen.append((fp, *stats[fp], 1.0 if exact else score, exact))
            if len(chosen) == k:
                return _describe(ledger, chosen, group)
    return _describe(ledger, chosen, group)


# At most this many of a fingerprint's newest failures make its group.
_GROUP_LIMIT = 1000


class _Group:
    """Which failures of a fingerprint are the earlier occurrences of one failure."""

    def __init__(self, before: float, exclude_id: str, exclude_experiment: str | None) -> None:
        self.window: dict[str, Any] = {
            "before": before,
            "exclude_id": exclude_id,
            "exclude_experiment": exclude_experiment,
            "limit": _GROUP_LIMIT,
        }

    def experiments(self, store: Store, fingerprint: str) -> Callable[[int, int], list[tuple[str, float]]]:
        """Reads the group's experiments, each with its newest failure, newest first."""
        newest: dict[str, float] = {}
        done = 0

        def read(offset: int, count: int) -> list[tuple[str, float]]:
            nonlocal done
            page = 2 * count
            while len(newest) < offset + count:
                rows = store.failure_group_runs(
                    fingerprint, offset=done, count=page, **self.window
                )
                done += len(rows)
                for eid, created in rows:
                    newest.setdefault(eid, created)
                if len(rows) < page:
                    break
                page *= 2
            return list(newest.items())[offset : offset + count]

        return read


def _describe(
    ledger: Ledger, chosen: Sequence[tuple[str, int, str, float, bool]], group: _Group
) -> list[SimilarFailure]:
    """The entries of the chosen groups: each group's newest failure, lessons and fix.

    All groups are looked up together, a handful of queries in all.
    """
    if not chosen:
        return []
    store = ledger.store
    fps = [fp for fp, *_ in chosen]
    full = {r["id"]: r for r in store.list_failures(ids=[newest for _, _, newest, _, _ in chosen])}
    lesson_ids = store.failure_group_lessons(fps, **group.window)
    every = ledger.lessons_by_id(sorted(set().union(*lesson_ids.values())))
    fixes = _find_fixes(ledger, [group.experiments(store, fp) for fp in fps])
    out = []
    for (fp, count, newest, score, exact), fix in zip(chosen, fixes, strict=True):
        fixed_by, change = None, None
        if fix is not None:
            broken, good = fix
            fixed_by = good.id
            change = config_diff(broken.config, good.config)
        lessons = [les for les in every if les.id in lesson_ids.get(fp, set())]
        out.append(
            SimilarFailure(
                FailureRecord.from_row(full[newest]), score, exact, count, lessons, fixed_by, change
            )
        )
    return out


def find_fix(
    ledger: Ledger, failed_experiment_ids: Sequence[str]
) -> tuple[ExperimentRecord, ExperimentRecord] | None:
    """The first success after one of these failed experiments in the same line of work.

    The line of work of an experiment is the experiments that build on it
    (``exp.builds_on``, directly or through others), and the later experiments of
    the same project and name. Returns (failed experiment, the success), latest
    failure first.
    """
    ids = [(i, math.inf) for i in dict.fromkeys(failed_experiment_ids)]
    return _find_fixes(ledger, [lambda offset, count: ids[offset : offset + count]])[0]


# Failed experiments are read newest failure first, this many at first, four times as
# many each further round: the latest failed run with a fix is usually among the first.
_FIRST_CHUNK = 8
# Allowance for clocks of different hosts when bounding when an unread run started.
_CLOCK_SKEW_S = 300.0


def _find_fixes(
    ledger: Ledger, sources: Sequence[Callable[[int, int], list[tuple[str, float]]]]
) -> list[tuple[ExperimentRecord, ExperimentRecord] | None]:
    """``find_fix`` of several groups of failed experiments, a few queries for all.

    Each source reads a group's (experiment id, when its newest failure was recorded),
    newest first, ``count`` from ``offset``. A run starts before its failures are
    recorded, so once the runs of the newest failures are read, every unread run
    started before the newest failure left unread: a failed run that started later
    than that, with a fix, is the answer without reading the rest.
    """
    store = ledger.store
    heads: dict[str, dict[str, Any]] = {}
    lines: dict[str, set[str]] = {}
    in_line: dict[str, dict[str, Any]] = {}
    looked_up: set[str] = set()
    latest: dict[tuple[str, str], float] = {}
    orders: list[list[tuple[str, float]]] = [[] for _ in sources]
    unread = [math.inf for _ in sources]
    checked: list[set[str]] = [set() for _ in sources]
    pairs: list[tuple[str, str] | None] = [None for _ in sources]
    pending = list(range(len(sources)))
    size = _FIRST_CHUNK
    while pending:
        wanted: set[str] = set()
        for gi in pending:
            got = sources[gi](len(orders[gi]), size + 1)
            orders[gi].extend(got[:size])
            # The first run left unread started no later than its failure (+ skew).
            unread[gi] = got[size][1] + _CLOCK_SKEW_S if len(got) > size else -math.inf
            wanted.update(e for e, _ in got[:size] if e not in heads)
        size *= 4
        new = store.list_experiments(
            ids=sorted(wanted), columns=("id", "project", "name", "started_at")
        ) if wanted else []
        heads.update((r["id"], r) for r in new)
        lines.update(_descendants(ledger, [r["id"] for r in new]))
        # Successes that build on the failed runs are few: read them with the runs. Of
        # the same-name successes only the latest start per name is needed to tell
        # whether a failed run has one after it; the first such one is read for it alone.
        unseen = sorted({c for r in new for c in lines[r["id"]]} - looked_up)
        looked_up.update(unseen)
        if unseen:
            in_line.update(
                (r["id"], r)
                for r in store.list_experiments(
                    ids=unseen, columns=("id", "project", "name", "started_at", "outcome")
                )
                if r["outcome"] == "success"
            )
        latest.update(
            store.latest_success_starts(
                {(r["project"], r["name"]) for r in new} - latest.keys()
            )
        )
        still = []
        for gi in pending:
            failed = [heads[e] for e, _ in orders[gi] if e in heads]
            for broken in sorted(failed, key=lambda r: -r["started_at"]):
                if broken["started_at"] <= unread[gi]:
                    break  # an unread run may have started later than this one
                if broken["id"] in checked[gi]:
                    continue
                checked[gi].add(broken["id"])
                good = _fix_of(store, broken, lines, in_line, latest)
                if good is not None:
                    pairs[gi] = (broken["id"], good)
                    break
            if pairs[gi] is None and unread[gi] > -math.inf:
                still.append(gi)  # no fix among the runs read; read more
        pending = still
    need = sorted({i for pair in pairs if pair is not None for i in pair})
    full = {
        r["id"]: ExperimentRecord.from_row(r) for r in store.list_experiments(ids=need)
    } if need else {}
    return [None if pair is None else (full[pair[0]], full[pair[1]]) for pair in pairs]


def _fix_of(
    store: Store,
    broken: Mapping[str, Any],
    lines: Mapping[str, set[str]],
    in_line: Mapping[str, Mapping[str, Any]],
    latest: Mapping[tuple[str, str], float],
) -> str | None:
    """The first success after ``broken`` that builds on it or has its name, if any."""
    after = broken["started_at"]
    found = [
        in_line[c]
        for c in lines.get(broken["id"], ())
        if c in in_line
        and c != broken["id"]
        and in_line[c]["project"] == broken["project"]
        and in_line[c]["started_at"] >= after
    ]
    if latest.get((broken["project"], broken["name"]), -math.inf) >= after:
        same_name = store.successes_after(
            after, project=broken["project"], name=broken["name"], limit=2
        )
        found += [r for r in same_name if r["id"] != broken["id"]][:1]
    if not found:
        return None
    return str(min(found, key=lambda r: r["started_at"])["id"])


def _descendants(ledger: Ledger, experiment_ids: Sequence[str]) -> dict[str, set[str]]:
    """Every experiment that builds on each of these, directly or through others."""
    # A fix often comes two steps later: a partial retry, then the run that worked.
    found: dict[str, set[str]] = {e: set() for e in experiment_ids}
    frontier: dict[str, set[str]] = {e: {e} for e in experiment_ids}
    while frontier:
        kids: dict[str, list[str]] = {}
        for parent, child in ledger.store.children(sorted(set().union(*frontier.values()))):
            kids.setdefault(parent, []).append(child)
        step: dict[str, set[str]] = {}
        for root, nodes in frontier.items():
            new = {c for n in nodes for c in kids.get(n, ()) if c not in found[root]}
            if new:
                found[root] |= new
                step[root] = new
        frontier = step
    return found


def config_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Changed, added and removed keys between two configs (nested keys dotted)."""
    a, b = flatten_config(before), flatten_config(after)
    return {
        "changed": {k: [a[k], b[k]] for k in sorted(a.keys() & b.keys()) if a[k] != b[k]},
        "added": {k: b[k] for k in sorted(b.keys() - a.keys())},
        "removed": {k: a[k] for k in sorted(a.keys() - b.keys())},
    }


