"""Storing drift reports from the library: documents checked, names and targets validated."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hindsight.drift import (
    SCHEMA,
    ReportDocument,
    check_report_document,
    drift_report,
    load_drift_report,
    save_drift_report,
)
from hindsight.errors import DriftError
from hindsight.ledger import Ledger
from hindsight.store import open_store


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    rng = np.random.default_rng(5)
    n = 1500
    ref = {"x": rng.normal(0, 1, n), "plan": rng.choice(["a", "b"], n)}
    cur = {"x": rng.normal(0.6, 1, n), "plan": rng.choice(["a", "b"], n), "extra": np.ones(n)}
    d = json.loads(drift_report(ref, cur).to_json())
    assert d["drifted_columns"] == ["x"]
    return d


def test_a_real_report_passes_unchanged(doc: dict[str, Any]) -> None:
    assert check_report_document(doc) == doc
    assert ReportDocument.model_json_schema(by_alias=True)["properties"]["schema"]["const"] == SCHEMA


def test_the_summary_is_taken_from_the_columns(doc: dict[str, Any]) -> None:
    lying = {**doc, "drifted_columns": ["plan", "nope"], "n_columns_tested": 9,
             "share_drifted": 1.0}
    fixed = check_report_document(lying)
    assert fixed["drifted_columns"] == ["x"] and fixed["n_columns_tested"] == 2
    assert fixed["share_drifted"] == 0.5
    # Unknown fields and free-form parts are kept as they are.
    extra = check_report_document({**doc, "team": {"owner": "ana"}})
    assert extra["team"] == {"owner": "ana"} and extra["settings"] == doc["settings"]


def _broken(doc: dict[str, Any], change: Any) -> dict[str, Any]:
    d = copy.deepcopy(doc)
    change(d)
    return d


def _set(path: str, value: Any) -> Any:
    def change(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = d
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        if value is _DELETE:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = value

    return change


_DELETE = object()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("schema", _DELETE), "no 'schema' field"),
        (_set("schema", "hindsight.drift_report/2"), "'hindsight.drift_report/2'"),
        (_set("drift_detected", "yes"), "drift_detected: Input should be a valid boolean"),
        (_set("columns", _DELETE), "columns: Field required"),
        (_set("reference.rows", -1), "reference.rows: Input should be greater than or equal to 0"),
        (_set("current.rows", 2.5), "current.rows: Input should be a valid integer"),
        (_set("current.source", "a\x00b"), "current.source: String should match pattern"),
        (_set("columns.0.drifted", 1), "columns[0].drifted: Input should be a valid boolean"),
        (_set("columns.0.column", ""), "columns[0].column: String should have at least 1"),
        (_set("columns.0.statistic", "big"), "columns[0].statistic: Input should be a valid number"),
        (_set("columns.0.statistic", float("nan")), "columns[0].statistic: Input should be a finite"),
        (_set("columns.0.plot.type", "violin"), "columns[0].plot: Input tag 'violin'"),
        (_set("columns.0.plot.edges", "0 1 2"), "columns[0].plot.edges: Input should be a valid list"),
        (_set("columns.1.plot.labels", [1, 2]), "columns[1].plot.labels[0]: Input should be a valid string"),
        (_set("columns.0.details.null_level", float("inf")), "columns[0].details.null_level is inf"),
        (_set("schema_changes.0.change", "renamed"), "schema_changes[0].change: Input should be"),
    ],
)
def test_broken_documents_are_refused_naming_the_field(
    doc: dict[str, Any], change: Any, message: str
) -> None:
    with pytest.raises(DriftError) as err:
        check_report_document(_broken(doc, change))
    assert message in str(err.value)
    assert "DriftReport.to_dict()" in str(err.value)  # and says what to send instead


@pytest.mark.parametrize("not_a_doc", [[], "report", None, 3])
def test_non_objects_are_refused(not_a_doc: Any) -> None:
    with pytest.raises(DriftError, match="must be a JSON object"):
        check_report_document(not_a_doc)


def test_save_to_a_ledger_or_a_store(doc: dict[str, Any], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    ledger = Ledger.at(url, project="shop")
    try:
        a = save_drift_report(doc, "from-file", ledger=ledger)
        row = ledger.store.get_drift_report(a)
        assert (row["project"], row["n_drifted"], row["drift_detected"]) == ("shop", 1, True)
        assert load_drift_report(a, ledger=ledger) == doc
    finally:
        ledger.close()
    store = open_store(url)
    try:
        b = save_drift_report(doc, "direct", ledger=store, project="ads")
        assert store.get_drift_report(b)["project"] == "ads"
        assert store.list_drift_reports()[1] == 2
    finally:
        store.close()


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "a\nb", 7])
def test_bad_names_are_refused(doc: dict[str, Any], tmp_path: Path, name: Any) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        with pytest.raises(DriftError, match="name must"):
            save_drift_report(doc, name, ledger=store)
        with pytest.raises(DriftError, match="project must"):
            save_drift_report(doc, "ok", ledger=store, project=name if name != 7 else "")
        assert store.list_drift_reports() == ([], 0)  # nothing half-stored
    finally:
        store.close()


def test_other_things_are_refused(doc: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(DriftError, match="takes a DriftReport"):
        save_drift_report(object(), "x")  # type: ignore[arg-type]
    with pytest.raises(DriftError, match="must be a hindsight Ledger or Store"):
        save_drift_report(doc, "x", ledger=str(tmp_path))  # type: ignore[arg-type]
    assert doc["schema"] == SCHEMA
