"""Drift reports kept in the hindsight store, for the team server's Data page.

A stored report is its JSON document (``DriftReport.to_dict()``, schema
``hindsight.drift_report/1``) under a name and a project, with an id like ``drf_…``.
Documents that come from elsewhere (a file, a client of the server's API) are checked
first (:func:`hindsight.drift.document.check_report_document`), so a stored report
always renders.

>>> import numpy as np
>>> from hindsight.drift import drift_report
>>> from hindsight.ledger import Ledger
>>> ledger = Ledger.at("sqlite://")
>>> rng = np.random.default_rng(0)
>>> report = drift_report({"x": rng.normal(0, 1, 2000)}, {"x": rng.normal(1, 1, 2000)})
>>> report_id = save_drift_report(report, "nightly", ledger=ledger)
>>> report_id.startswith("drf_")
True
>>> load_drift_report(report_id, ledger=ledger)["drifted_columns"]
['x']
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from hindsight._plain import plain
from hindsight.config import Settings
from hindsight.drift.document import check_report_document
from hindsight.drift.report import DriftReport
from hindsight.errors import DriftError
from hindsight.ledger import Ledger, get_ledger
from hindsight.ledger.ids import new_id
from hindsight.store import Store
from hindsight.store.schema import SCHEMA_VERSION

__all__ = ["load_drift_report", "save_drift_report"]

_NAME_MAX = 200


def save_drift_report(
    report: DriftReport | Mapping[str, Any],
    name: str,
    *,
    ledger: Ledger | Store | None = None,
    project: str | None = None,
) -> str:
    """Store a drift report under ``name`` (a new record each time); returns its id.

    ``report`` is a :class:`~hindsight.drift.DriftReport` or its ``to_dict()`` document
    (read back from a file, say); a document is checked first
    (:func:`check_report_document`). ``ledger`` is a ledger or a store (the process-wide
    ledger by default); ``project`` defaults to the ledger's (``HINDSIGHT_PROJECT``).
    """
    name = _name(name, "name")
    if isinstance(report, DriftReport):
        doc = check_report_document(plain(report.to_dict()))
    elif isinstance(report, Mapping):
        doc = check_report_document(report)
    else:
        raise DriftError(
            f"save_drift_report() takes a DriftReport or its to_dict() document; got "
            f"{type(report).__name__}. Make one with hindsight.drift_report(reference, current)."
        )
    store, default_project = _target(ledger)
    project = _name(project, "project") if project is not None else default_project
    record_id = new_id("drift_report")
    store.save_drift_report(
        {
            "id": record_id,
            "project": project,
            "name": name,
            "reference_source": doc["reference"]["source"],
            "current_source": doc["current"]["source"],
            "n_reference": doc["reference"]["rows"],
            "n_current": doc["current"]["rows"],
            "n_columns": len(doc["columns"]),
            "n_drifted": sum(1 for c in doc["columns"] if c["drifted"]),
            "drift_detected": doc["drift_detected"],
            "report": doc,
            "created_at": time.time(),
            "schema_version": SCHEMA_VERSION,
        }
    )
    return record_id


def load_drift_report(report_id: str, *, ledger: Ledger | Store | None = None) -> dict[str, Any]:
    """The document of a stored report (``DriftReport.to_dict()`` as it was saved)."""
    store, _ = _target(ledger)
    report: dict[str, Any] = dict(store.get_drift_report(report_id)["report"])
    return report


def _target(ledger: Ledger | Store | None) -> tuple[Store, str]:
    """The store to write to and the project a report goes to by default."""
    if ledger is None:
        ledger = get_ledger()
    if isinstance(ledger, Ledger):
        return ledger.store, ledger.settings.project
    if isinstance(ledger, Store):
        return ledger, Settings.load().project
    raise DriftError(
        f"ledger= must be a hindsight Ledger or Store; got {type(ledger).__name__}. "
        "Pass hindsight.Ledger.at(URL), or leave it out for the default ledger."
    )


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _NAME_MAX:
        raise DriftError(
            f"A drift report's {what} must be text of 1 to {_NAME_MAX} characters "
            f"(not only spaces). Got {value!r}."
        )
    if any(ord(ch) < 32 for ch in value):
        raise DriftError(f"A drift report's {what} must not hold control characters. Got {value!r}.")
    return value
