"""Recording failures and finding similar past ones, with their lessons and fixes.

``record_failure`` is the one seam every capability uses (experiments, the
training guard, canary rollbacks, monitor incidents): it takes where the failure
happened and its evidence, diagnoses it, stores it and returns it together with
the most similar past failures.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hindsight.diagnose import Evidence, diagnose
from hindsight.errors import LedgerError
from hindsight.ledger.ids import new_id
from hindsight.ledger.records import (
    ExperimentRecord,
    FailureRecord,
    FailureReport,
    SimilarFailure,
)
from hindsight.store.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from hindsight.ledger.core import Ledger

__all__ = ["SOURCES", "config_diff", "record_failure", "similar_failures"]

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
) -> FailureReport:
    """Diagnose, fingerprint and store a failure; return it with similar past failures."""
    if source not in SOURCES:
        raise LedgerError(f"Unknown failure source {source!r}. Use one of {', '.join(SOURCES)}.")
    ev = _evidence(evidence, exit_code)
    diag = diagnose(ev, dict(config or {}), exit_code=exit_code)
    fp = diag.fingerprint
    row = {
        "id": new_id("failure"),
        "experiment_id": experiment_id,
        "project": project or ledger.settings.project,
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
        "evidence": {"config": dict(config or {}), **dict(extra or {})},
        "schema_version": SCHEMA_VERSION,
    }
    if experiment_update is not None and experiment_id is not None:
        # The failure and the experiment's crashed status land together or not at all.
        ledger.store.insert_and_update(
            "failure", row, "experiment", experiment_id, {**experiment_update, "failure_id": row["id"]}
        )
    else:
        ledger.store.insert("failure", row)
    record = FailureRecord.from_row(row)
    return FailureReport(record, similar_failures(ledger, record, k=similar) if similar else [])


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

    def earlier(fp: str) -> list[dict[str, Any]]:
        return [
            r
            for r in store.list_failures(fingerprint=fp, limit=1000)
            if r["id"] != failure.id
            and r["created_at"] <= failure.created_at
            and (failure.experiment_id is None or r["experiment_id"] != failure.experiment_id)
        ]

    scores: dict[str, float] = {failure.fingerprint: 1.0}
    # Exact repeats are found by fingerprint; left in the fuzzy query, forty of them
    # would fill every slot and hide the near matches behind them.
    same = [r["id"] for r in store.list_failures(fingerprint=failure.fingerprint, limit=1000)]
    exclude = [failure.id, *same]
    want = max(4 * k, 20)
    while True:
        matches = ledger.index.query(failure.tokens, k=want, exclude=exclude)
        for m in matches:
            if m.score >= min_score and m.score > scores.get(m.fingerprint, 0.0):
                scores[m.fingerprint] = m.score
        # Widen the query while other groups' repeats may still crowd out distinct ones.
        if len(matches) < want or matches[-1].score < min_score or len(scores) > 4 * k:
            break
        want *= 4
    out = []
    for fp, score in sorted(scores.items(), key=lambda kv: -kv[1]):
        rows = earlier(fp)
        if rows:
            exact = fp == failure.fingerprint
            out.append(_describe(ledger, rows, 1.0 if exact else score, exact))
        if len(out) == k:
            break
    return out


def _describe(
    ledger: Ledger, rows: Sequence[dict[str, Any]], score: float, exact: bool
) -> SimilarFailure:
    newest = max(rows, key=lambda r: r["created_at"])
    record = FailureRecord.from_row(newest)
    targets = {r["id"] for r in rows} | {r["experiment_id"] for r in rows if r["experiment_id"]}
    lessons = ledger.lessons_for(sorted(targets))
    fixed_by, change = None, None
    failed_exps = [r["experiment_id"] for r in rows if r["experiment_id"]]
    if failed_exps:
        fix = find_fix(ledger, failed_exps)
        if fix is not None:
            broken, good = fix
            fixed_by = good.id
            change = config_diff(broken.config, good.config)
    return SimilarFailure(record, score, exact, len(rows), lessons, fixed_by, change)


def find_fix(
    ledger: Ledger, failed_experiment_ids: Sequence[str]
) -> tuple[ExperimentRecord, ExperimentRecord] | None:
    """The first success after one of these failed experiments in the same line of work.

    The line of work of an experiment is the experiments that build on it
    (``exp.builds_on``), and the later experiments of the same project and name.
    Returns (failed experiment, the success), latest failure first.
    """
    store = ledger.store
    failed_rows = store.list_experiments(ids=list(failed_experiment_ids))
    for broken_row in sorted(failed_rows, key=lambda r: -r["started_at"]):
        broken = ExperimentRecord.from_row(broken_row)
        line = {c for _, c in store.children([broken.id])}
        candidates = store.list_experiments(project=broken.project, outcomes=["success"])
        for row in sorted(candidates, key=lambda r: r["started_at"]):
            if row["started_at"] < broken.started_at or row["id"] == broken.id:
                continue
            if row["id"] in line or row["name"] == broken.name:
                return broken, ExperimentRecord.from_row(row)
    return None


def config_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Changed, added and removed keys between two configs (nested keys dotted)."""
    a, b = _flatten(before), _flatten(after)
    return {
        "changed": {k: [a[k], b[k]] for k in sorted(a.keys() & b.keys()) if a[k] != b[k]},
        "added": {k: b[k] for k in sorted(b.keys() - a.keys())},
        "removed": {k: a[k] for k in sorted(a.keys() - b.keys())},
    }


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out
