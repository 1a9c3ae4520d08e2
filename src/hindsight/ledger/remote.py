"""An experiment's records sent through the team server (``HINDSIGHT_SERVER_URL``).

:class:`ServerWriter` turns each write of a running experiment into an operation of
the ingest protocol (:mod:`hindsight.client.protocol`) and hands it to a
:class:`~hindsight.client.ServerClient`, which spools it locally and sends it in
batches. Nothing here waits on the network except the end of a run (which waits up
to ``server_timeout_s`` for its records to arrive) and the two reads a run needs:
resolving a short id, and the similar past failures shown when a run fails.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from hindsight.client import ServerClient
from hindsight.client.protocol import encode_series
from hindsight.config import Settings
from hindsight.errors import HindsightError, HindsightWarning, LedgerError
from hindsight.ledger.ids import PREFIXES
from hindsight.ledger.records import FailureRecord, Lesson, SimilarFailure
from hindsight.ledger.writer import Series

__all__ = ["ServerWriter", "client_for"]

_FULL_ID = re.compile(r"^[a-z]+_[0-9a-f]{19}$")
_clients: dict[tuple[str, str | None, str], ServerClient] = {}
_clients_lock = threading.Lock()


def client_for(settings: Settings) -> ServerClient:
    """The process's client for a server, token and spool (one sender thread each)."""
    if not settings.server_url:
        raise LedgerError("No team server is set: set HINDSIGHT_SERVER_URL.")
    key = (settings.server_url, settings.server_token, str(settings.spool_path))
    with _clients_lock:
        client = _clients.get(key)
        if client is None or client.closed:
            client = ServerClient(
                settings.server_url,
                settings.server_token,
                settings.spool_path,
                timeout_s=settings.server_timeout_s,
            )
            _clients[key] = client
        return client


class ServerWriter:
    """A :class:`~hindsight.ledger.writer.RecordWriter` that logs through the server."""

    remote = True

    def __init__(self, client: ServerClient) -> None:
        self.client = client

    def resolve(self, record_id: str, kind: str) -> str:
        try:
            found = self.client.get(f"/api/v1/ids/{record_id}", {"kind": kind})
        except HindsightError as exc:
            prefix = PREFIXES[kind] + "_"
            if record_id.startswith(prefix) and _FULL_ID.match(record_id):
                return record_id  # the server checks it when the record arrives
            raise LedgerError(
                f"Cannot look up {record_id!r} on the team server ({exc}). Pass the full "
                f"id ({prefix}…, as `hindsight ls` shows it) while the server is away."
            ) from exc
        return str(found["id"])

    def start(self, row: Mapping[str, Any]) -> None:
        self.client.submit({"op": "experiment.start", "row": dict(row)})

    def metrics(self, experiment_id: str, series: Series, summary: Mapping[str, Any]) -> None:
        self.client.submit(
            {
                "op": "experiment.metrics",
                "experiment_id": experiment_id,
                "series": [encode_series(k, *arrs) for k, arrs in series.items()],
                "summary": dict(summary),
            }
        )

    def heartbeat(self, experiment_id: str, at: float) -> None:
        self.client.submit(
            {"op": "experiment.heartbeat", "experiment_id": experiment_id, "at": at},
            replace_older=True,
        )

    def update(self, experiment_id: str, values: Mapping[str, Any]) -> None:
        self.client.submit(
            {"op": "experiment.update", "experiment_id": experiment_id, **dict(values)}
        )

    def note(self, experiment_id: str, text: str, at: float) -> None:
        self.client.submit(
            {"op": "experiment.note", "experiment_id": experiment_id, "text": text, "at": at}
        )

    def parent(self, experiment_id: str, parent_id: str) -> None:
        self.client.submit(
            {"op": "experiment.parent", "experiment_id": experiment_id, "parent_id": parent_id}
        )

    def apply_lesson(self, lesson_id: str, experiment_id: str, at: float) -> None:
        self.client.submit(
            {
                "op": "lesson.apply",
                "lesson_id": lesson_id,
                "experiment_id": experiment_id,
                "at": at,
            }
        )

    def artifact(self, row: Mapping[str, Any]) -> None:
        self.client.submit({"op": "experiment.artifact", **dict(row)})

    def lesson(self, row: Mapping[str, Any], sources: Sequence[str]) -> None:
        self.client.submit({"op": "lesson.add", **dict(row), "sources": list(sources)})

    def failure(
        self, row: Mapping[str, Any], experiment_update: Mapping[str, Any] | None
    ) -> None:
        self.client.submit(
            {
                "op": "failure.record",
                "row": dict(row),
                "experiment_update": None if experiment_update is None else dict(experiment_update),
            }
        )

    def similar(self, failure: FailureRecord, k: int) -> list[SimilarFailure]:
        # The server matches against the whole team's failures, once this one is there.
        if not self.client.flush():
            warnings.warn(
                f"Similar past failures are not shown: the team server {self.client.url} "
                "did not take the failure in time. It stays spooled and is matched there "
                "when it arrives.",
                HindsightWarning,
                stacklevel=3,
            )
            return []
        try:
            found = self.client.get(f"/api/v1/failures/{failure.id}/similar", {"k": k})
        except HindsightError as exc:
            warnings.warn(
                f"Similar past failures are not shown: {exc}", HindsightWarning, stacklevel=3
            )
            return []
        return [_similar_from_dict(d) for d in found["similar"]]

    def flush(self, timeout_s: float | None = None) -> bool:
        return self.client.flush(timeout_s)


def _similar_from_dict(d: Mapping[str, Any]) -> SimilarFailure:
    failure = {k: v for k, v in d["failure"].items() if k not in ("created", "title")}
    lessons = [
        Lesson(**{k: v for k, v in les.items() if k != "created"}) for les in d["lessons"]
    ]
    return SimilarFailure(
        failure=FailureRecord.from_row(failure),
        score=float(d["score"]),
        exact=bool(d["exact"]),
        occurrences=int(d["occurrences"]),
        lessons=lessons,
        fixed_by=d.get("fixed_by"),
        config_change=d.get("config_change"),
    )
