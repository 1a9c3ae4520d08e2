"""Where a running experiment's records go: the store, or the team server.

:class:`RecordWriter` is the seam. :class:`StoreWriter` writes straight to the
ledger's store (the embedded default, or PostgreSQL with credentials);
:class:`hindsight.ledger.remote.ServerWriter` sends the same records through the team
server (``HINDSIGHT_SERVER_URL``) via a local spool, so a run needs no database
credentials and survives a server outage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from hindsight.ledger.records import FailureRecord, SimilarFailure

if TYPE_CHECKING:
    from hindsight.ledger.core import Ledger

__all__ = ["RecordWriter", "Series", "StoreWriter"]

#: key -> (steps int64, values float64, UNIX times float64)
Series = Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]


class RecordWriter(Protocol):
    """The writes an experiment makes, in the order it makes them."""

    #: True when records travel through the server (reads of the store are not possible).
    remote: bool

    def resolve(self, record_id: str, kind: str) -> str:
        """The full id of an experiment or lesson (or a unique prefix of one)."""

    def start(self, row: Mapping[str, Any]) -> None:
        """A new running experiment."""

    def metrics(self, experiment_id: str, series: Series, summary: Mapping[str, Any]) -> None:
        """Metric points and the summary (last values) after them, together."""

    def heartbeat(self, experiment_id: str, at: float) -> None:
        """The run is alive."""

    def update(self, experiment_id: str, values: Mapping[str, Any]) -> None:
        """Columns of the experiment (its end, its MLflow run id)."""

    def note(self, experiment_id: str, text: str, at: float) -> None:
        """A next step."""

    def parent(self, experiment_id: str, parent_id: str) -> None:
        """The experiment builds on another."""

    def apply_lesson(self, lesson_id: str, experiment_id: str, at: float) -> None:
        """The experiment applies a lesson."""

    def artifact(self, row: Mapping[str, Any]) -> None:
        """A file the experiment produced."""

    def lesson(self, row: Mapping[str, Any], sources: Sequence[str]) -> None:
        """A lesson and the records it came from."""

    def failure(
        self, row: Mapping[str, Any], experiment_update: Mapping[str, Any] | None
    ) -> None:
        """A diagnosed failure and the outcome of its experiment it decides, together."""

    def similar(self, failure: FailureRecord, k: int) -> list[SimilarFailure]:
        """Past failures like this one (after it was written)."""

    def flush(self, timeout_s: float | None = None) -> bool:
        """Make sure what was written has arrived; False if some still waits."""


class StoreWriter:
    """Writes to the ledger's store, each call one transaction."""

    remote = False

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def resolve(self, record_id: str, kind: str) -> str:
        return self._ledger.resolve(record_id, kind)[1]

    def start(self, row: Mapping[str, Any]) -> None:
        self._ledger.store.insert("experiment", row)

    def metrics(self, experiment_id: str, series: Series, summary: Mapping[str, Any]) -> None:
        self._ledger.store.append_metrics(
            [(experiment_id, k, *arrs) for k, arrs in series.items()],
            summary=(experiment_id, summary),
        )

    def heartbeat(self, experiment_id: str, at: float) -> None:
        self._ledger.store.heartbeat(experiment_id, at)

    def update(self, experiment_id: str, values: Mapping[str, Any]) -> None:
        self._ledger.store.update("experiment", experiment_id, **values)

    def note(self, experiment_id: str, text: str, at: float) -> None:
        self._ledger.store.add_note(experiment_id, "next_step", text, at)

    def parent(self, experiment_id: str, parent_id: str) -> None:
        self._ledger.store.add_parent(experiment_id, parent_id)

    def apply_lesson(self, lesson_id: str, experiment_id: str, at: float) -> None:
        self._ledger.store.link_lesson(lesson_id, experiment_id, "applied", at)

    def artifact(self, row: Mapping[str, Any]) -> None:
        self._ledger.store.add_artifact(row)

    def lesson(self, row: Mapping[str, Any], sources: Sequence[str]) -> None:
        store = self._ledger.store
        with store.write():
            store.insert("lesson", row)
            for target in sources:
                store.link_lesson(str(row["id"]), target, "source", float(row["created_at"]))

    def failure(
        self, row: Mapping[str, Any], experiment_update: Mapping[str, Any] | None
    ) -> None:
        experiment_id = row.get("experiment_id")
        if experiment_update is not None and experiment_id is not None:
            # The failure and the experiment's outcome land together or not at all.
            self._ledger.store.insert_and_update(
                "failure",
                row,
                "experiment",
                str(experiment_id),
                {**experiment_update, "failure_id": row["id"]},
            )
        else:
            self._ledger.store.insert("failure", row)

    def similar(self, failure: FailureRecord, k: int) -> list[SimilarFailure]:
        from hindsight.ledger.failures import similar_failures

        return similar_failures(self._ledger, failure, k=k)

    def flush(self, timeout_s: float | None = None) -> bool:
        return True
