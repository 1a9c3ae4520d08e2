"""Applying what clients log through the team server (``POST /api/v1/ingest``).

Each operation of the ingest protocol (:mod:`hindsight.client.protocol`) is applied in
its own transaction together with the mark that it was applied, so a batch that is
sent again (its reply was lost) changes nothing, and one bad record does not hold back
the rest: it is *rejected* with the reason, and the client keeps it aside. A store
that cannot be reached is not a rejection; it propagates, and the client retries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hindsight.client.protocol import (
    ArtifactAdd,
    ExperimentStart,
    ExperimentUpdate,
    FailureRecordOp,
    Heartbeat,
    LessonAdd,
    LessonApply,
    Metrics,
    NoteAdd,
    Op,
    OpResult,
    ParentAdd,
    decode_series,
)
from hindsight.errors import LedgerError, NotFound, StoreError, StoreUnavailable
from hindsight.ledger.ids import kind_of
from hindsight.ledger.jsonsafe import jsonable

if TYPE_CHECKING:
    from hindsight.ledger.core import Ledger
    from hindsight.store import Store

__all__ = ["apply_ops"]


def apply_ops(ledger: Ledger, ops: Sequence[Op], *, user_id: str | None) -> list[OpResult]:
    """Apply operations in order; one result each (applied, duplicate or rejected)."""
    store = ledger.store
    results: list[OpResult] = []
    late_failures: list[tuple[str, str, str, str, float]] = []
    for op in ops:
        try:
            with store.write():
                if not store.claim_op(op.op_id, op.op, user_id, time.time()):
                    results.append(OpResult(op_id=op.op_id, status="duplicate"))
                    continue
                _APPLY[type(op)](store, op)
        except StoreUnavailable:
            raise
        except (LedgerError, StoreError) as exc:
            if store.op_applied(op.op_id):  # another request applied it meanwhile
                results.append(OpResult(op_id=op.op_id, status="duplicate"))
            else:
                results.append(OpResult(op_id=op.op_id, status="rejected", error=str(exc)))
            continue
        results.append(OpResult(op_id=op.op_id, status="applied"))
        if isinstance(op, FailureRecordOp):
            r = op.row
            late_failures.append((r.id, r.fingerprint, r.category, r.tokens, r.created_at))
    if late_failures:
        # A failure spooled during an outage carries its own (older) time; the index's
        # time-ordered refresh would pass it by, so it is added by id.
        ledger.index.add(late_failures)
    return results


def _experiment(store: Store, experiment_id: str) -> dict[str, Any]:
    try:
        return store.get("experiment", experiment_id)
    except NotFound as exc:
        raise NotFound(
            f"No experiment {experiment_id!r} on the server: its experiment.start did not "
            "arrive or was rejected. Send the spool in order (`hindsight sync`)."
        ) from exc


def _start(store: Store, op: ExperimentStart) -> None:
    # JSON parsers take NaN and Infinity, which PostgreSQL's JSON refuses: as strings.
    row = jsonable(op.row.model_dump(), "row")
    if store.find("experiment", row["id"]) == [row["id"]]:
        raise LedgerError(f"Experiment {row['id']} already exists; ids must be new.")
    row["heartbeat_at"] = row["heartbeat_at"] or row["started_at"]
    store.insert("experiment", row)


def _metrics(store: Store, op: Metrics) -> None:
    _experiment(store, op.experiment_id)
    try:
        chunks = [(op.experiment_id, s.key, *decode_series(s)) for s in op.series]
    except ValueError as exc:
        raise LedgerError(f"Unreadable metric points: {exc}.") from exc
    store.append_metrics(chunks, summary=(op.experiment_id, jsonable(op.summary, "summary")))


def _heartbeat(store: Store, op: Heartbeat) -> None:
    _experiment(store, op.experiment_id)
    store.heartbeat(op.experiment_id, op.at)


def _update(store: Store, op: ExperimentUpdate) -> None:
    values = jsonable(op.values(), "values")
    if "mlflow_run_id" in op.model_fields_set:
        values["mlflow_run_id"] = op.mlflow_run_id
    _experiment(store, op.experiment_id)
    if values:
        store.update("experiment", op.experiment_id, **values)


def _note(store: Store, op: NoteAdd) -> None:
    _experiment(store, op.experiment_id)
    store.add_note(op.experiment_id, op.kind, op.text, op.at)


def _parent(store: Store, op: ParentAdd) -> None:
    _experiment(store, op.experiment_id)
    if op.parent_id == op.experiment_id:
        raise LedgerError("An experiment cannot build on itself.")
    store.add_parent(op.experiment_id, op.parent_id)


def _apply_lesson(store: Store, op: LessonApply) -> None:
    _experiment(store, op.experiment_id)
    store.get("lesson", op.lesson_id)
    store.link_lesson(op.lesson_id, op.experiment_id, "applied", op.at)


def _artifact(store: Store, op: ArtifactAdd) -> None:
    _experiment(store, op.experiment_id)
    store.add_artifact(op.model_dump(exclude={"op", "op_id"}))


def _lesson(store: Store, op: LessonAdd) -> None:
    for target in op.sources:
        kind = kind_of(target)
        if kind not in ("experiment", "failure", "postmortem"):
            raise LedgerError(
                f"A lesson comes from experiments, failures or post-mortems; {target!r} is "
                "none of them."
            )
        store.get(kind, target)
    row = op.model_dump(exclude={"op", "op_id", "sources"})
    row["text"] = row["text"].strip()
    row["tags"] = sorted({t.strip() for t in row["tags"] if t.strip()})
    store.insert("lesson", row)
    for target in op.sources:
        store.link_lesson(op.id, target, "source", op.created_at)


def _failure(store: Store, op: FailureRecordOp) -> None:
    row = jsonable(op.row.model_dump(), "row")
    if store.find("failure", row["id"]) == [row["id"]]:
        raise LedgerError(f"Failure {row['id']} already exists; ids must be new.")
    experiment_id = row["experiment_id"]
    if experiment_id is None:
        store.insert("failure", row)
        return
    _experiment(store, experiment_id)
    values = {} if op.experiment_update is None else jsonable(op.experiment_update.values())
    store.insert_and_update(
        "failure", row, "experiment", experiment_id, {**values, "failure_id": row["id"]}
    )


_APPLY: dict[type, Callable[[Any, Any], None]] = {
    ExperimentStart: _start,
    Metrics: _metrics,
    Heartbeat: _heartbeat,
    ExperimentUpdate: _update,
    NoteAdd: _note,
    ParentAdd: _parent,
    LessonApply: _apply_lesson,
    ArtifactAdd: _artifact,
    LessonAdd: _lesson,
    FailureRecordOp: _failure,
}
