"""Stored drift reports on SQLite and PostgreSQL: saved, read back whole, listed in pages."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from hindsight.drift import DriftReport, drift_report, load_drift_report, save_drift_report
from hindsight.errors import ConfigError, NotFound
from hindsight.store import Store, open_store
from hindsight.store import schema as t


def _reports() -> tuple[DriftReport, DriftReport]:
    """A report where two of three columns drift, and one where nothing does."""
    rng = np.random.default_rng(3)
    n = 2000
    ref = {"age": rng.normal(40, 10, n), "plan": rng.choice(["a", "b", "c"], n),
           "y": rng.exponential(1, n)}
    drifted = {"age": rng.normal(46, 10, n), "plan": rng.choice(["a", "b", "c", "new"], n),
               "y": rng.exponential(1, n)}
    same = {k: np.array(v, copy=True) for k, v in ref.items()}
    a, b = drift_report(ref, drifted), drift_report(ref, same)
    assert sorted(a.drifted_columns) == ["age", "plan"] and a.drift_detected
    assert b.drifted_columns == [] and not b.drift_detected
    return a, b


@pytest.fixture
def store(store_url: str) -> Any:
    s = open_store(store_url)
    yield s
    s.close()


def test_a_saved_report_reads_back_whole(store: Store) -> None:
    drifted, _ = _reports()
    report_id = save_drift_report(drifted, "nightly", ledger=store, project="shop")
    assert report_id.startswith("drf_")

    row = store.get_drift_report(report_id)
    assert (row["id"], row["project"], row["name"]) == (report_id, "shop", "nightly")
    assert (row["n_columns"], row["n_drifted"], row["drift_detected"]) == (3, 2, True)
    assert (row["n_reference"], row["n_current"]) == (2000, 2000)
    assert row["reference_source"] == drifted.reference_source == "data (2,000 rows)"
    assert row["schema_version"] == t.SCHEMA_VERSION
    # The document is the report's JSON, unchanged by the round trip through the store.
    assert row["report"] == json.loads(drifted.to_json())
    assert load_drift_report(report_id, ledger=store) == row["report"]
    plot = next(c for c in row["report"]["columns"] if c["column"] == "plan")["plot"]
    assert plot["type"] == "bars" and "new" in plot["labels"]


def test_unknown_ids_are_not_found_with_advice(store: Store) -> None:
    with pytest.raises(NotFound) as err:
        store.get_drift_report("drf_nope")
    assert "drf_nope" in str(err.value) and "--save NAME" in str(err.value)


def test_pages_filters_and_choices(store: Store) -> None:
    drifted, same = _reports()
    saved: list[tuple[str, str, str, bool]] = []
    for i in range(7):
        report = drifted if i % 3 == 0 else same
        project, name = ("shop", "nightly") if i % 2 == 0 else ("ads", f"hourly-{i % 4}")
        saved.append((save_drift_report(report, name, ledger=store, project=project),
                      project, name, report.drift_detected))
    newest_first = [s[0] for s in reversed(saved)]

    seen: list[str] = []
    for page in (1, 2, 3):
        rows, total = store.list_drift_reports(page=page, per_page=3)
        assert total == 7
        assert len(rows) == (3 if page < 3 else 1)
        assert all("report" not in r for r in rows)  # the listing leaves the document out
        seen += [r["id"] for r in rows]
    assert seen == newest_first  # no gap, no overlap, newest first
    assert store.list_drift_reports(page=4, per_page=3) == ([], 7)

    rows, total = store.list_drift_reports(drifted=True)
    assert total == 3 and {r["id"] for r in rows} == {s[0] for s in saved if s[3]}
    assert all(r["drift_detected"] is True and r["n_drifted"] == 2 for r in rows)
    rows, total = store.list_drift_reports(drifted=False)
    assert total == 4 and all(r["drift_detected"] is False and r["n_drifted"] == 0 for r in rows)
    rows, total = store.list_drift_reports(project="shop", name="nightly", drifted=True)
    assert total == 2 and [r["id"] for r in rows] == [saved[6][0], saved[0][0]]
    assert store.list_drift_reports(project="ads", name="nightly") == ([], 0)

    assert store.drift_report_projects() == ["ads", "shop"]
    assert store.drift_report_names() == ["hourly-1", "hourly-3", "nightly"]


@pytest.mark.parametrize(("page", "per_page"), [(0, 50), (1, 0), (1, 5000), (True, 50), (10**12, 50)])
def test_bad_pages_are_refused(store: Store, page: Any, per_page: Any) -> None:
    with pytest.raises(ConfigError, match="list_drift_reports"):
        store.list_drift_reports(page=page, per_page=per_page)
