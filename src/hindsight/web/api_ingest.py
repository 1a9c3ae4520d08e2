"""Logging through the server: the ingest endpoint and the two reads a client needs.

``POST /api/v1/ingest`` takes a batch of the ingest protocol's operations
(:mod:`hindsight.client.protocol`) from an editor's API token and applies each once;
``GET /api/v1/ids/{id}`` resolves a short id, and ``GET /api/v1/failures/{id}/similar``
returns the past failures like one a client just sent.
"""

import time
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query

from hindsight.client.protocol import Batch, BatchResult
from hindsight.errors import NotFound, StoreUnavailable
from hindsight.ledger.failures import similar_failures
from hindsight.ledger.ids import kind_of
from hindsight.ledger.ingest import apply_ops
from hindsight.web.auth import Principal
from hindsight.web.context import WebContext

__all__ = ["register"]

_KINDS = ("experiment", "failure", "lesson", "postmortem")


def register(app: FastAPI, ctx: WebContext) -> None:
    """Add the ingest routes to ``app``."""
    ledger, api_user = ctx.ledger, ctx.api_user
    # Clients that log through this server could not send heartbeats while it was down:
    # the reaper gives them stale_after_s from now before it calls a run dead.
    ledger.listening_since = time.time()

    @app.post("/api/v1/ingest", tags=["ingest"])
    def ingest(
        body: Batch, who: Annotated[Principal, Depends(api_user("editor"))]
    ) -> BatchResult:
        """Apply a client's records in order, each at most once (by its ``op_id``).

        One result per operation: ``applied``, ``duplicate`` (sent before) or
        ``rejected`` with the reason (the rest of the batch is still applied).
        """
        try:
            results = apply_ops(ledger, body.ops, user_id=who.user_id)
        except StoreUnavailable as exc:
            # Not the records' fault: the client keeps them and sends them again.
            raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from exc
        counts = {
            s: sum(r.status == s for r in results) for s in ("applied", "duplicate", "rejected")
        }
        return BatchResult(
            results=results,
            applied=counts["applied"],
            duplicates=counts["duplicate"],
            rejected=counts["rejected"],
        )

    @app.get("/api/v1/ids/{record_id}", tags=["ingest"])
    def resolve_id(
        record_id: str,
        _who: Annotated[Principal, Depends(api_user("viewer"))],
        kind: Literal["experiment", "failure", "lesson", "postmortem"] | None = None,
    ) -> dict[str, str]:
        """The kind and full id of a record, from its id or a unique prefix of it."""
        prefixed = kind_of(record_id)
        if kind is None and prefixed not in _KINDS:
            raise NotFound(
                f"No record with id {record_id!r}. Ids look like exp_…, fail_…, les_…, pm_…."
            )
        found_kind, full = ledger.resolve(record_id, kind or prefixed)
        return {"kind": found_kind, "id": full}

    @app.get("/api/v1/failures/{failure_id}/similar", tags=["ingest"])
    def similar(
        failure_id: str,
        _who: Annotated[Principal, Depends(api_user("viewer"))],
        k: Annotated[int, Query(ge=1, le=50)] = 5,
    ) -> dict[str, Any]:
        """The past failures most like this one, with their lessons and fixes."""
        record = ledger.failure_record(failure_id)
        return {
            "failure_id": record.id,
            "similar": [s.to_dict() for s in similar_failures(ledger, record, k=k)],
        }
