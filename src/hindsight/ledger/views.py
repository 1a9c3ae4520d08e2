"""What a page or a ``--json`` listing shows of an experiment, assembled in one place.

The CLI's ``hindsight show --json`` and the team server's experiment page and API read
the same dict: the record, its failure with the diagnosis, similar past failures, the
lessons of the experiment and of its failure, and its next steps.
"""

from __future__ import annotations

from typing import Any

from hindsight.ledger.core import Ledger
from hindsight.ledger.failures import config_diff, similar_failures

__all__ = ["experiment_detail"]


def experiment_detail(ledger: Ledger, experiment_id: str, *, k: int = 5) -> dict[str, Any]:
    """The experiment ``experiment_id`` as a plain dict, with what explains its outcome."""
    e = ledger.experiment_record(experiment_id)
    failure = ledger.failure_record(e.failure_id) if e.failure_id else None
    similar = similar_failures(ledger, failure, k=k) if failure is not None else []
    lessons = ledger.lessons_for([e.id, *([e.failure_id] if e.failure_id else [])])
    data = e.to_dict()
    data["failure"] = None if failure is None else failure.to_dict()
    data["similar"] = [s.to_dict() for s in similar]
    data["lessons"] = [les.to_dict() for les in lessons]
    data["next_steps"] = [n["text"] for n in ledger.store.notes(e.id) if n["kind"] == "next_step"]
    last = ledger.store.latest_success_before(project=e.project, name=e.name, before=e.started_at)
    data["last_success"] = None if last is None else {
        "id": last["id"],
        "started_at": last["started_at"],
        "config_diff": config_diff(last["config"] or {}, e.config),
    }
    return data
