"""The demo's monitoring act stores its data for the Data page: a reference and a drift report."""

from __future__ import annotations

from pathlib import Path

from hindsight.demo.monitor_act import run_monitor_demo
from hindsight.drift import load_drift_report
from hindsight.ledger import Ledger


def test_the_monitor_act_stores_the_first_weeks_profile_and_the_last_weeks_drift(
    tmp_path: Path,
) -> None:
    ledger = Ledger.at(f"sqlite:///{tmp_path / 'h.db'}", home=tmp_path)
    said: list[str] = []
    result = run_monitor_demo(ledger, project="recsys-demo", say=said.append)
    # The policy concentrates exposure and treated users click less: both columns drift,
    # while the holdout share (slice) does not change.
    assert result.drifted == ["prediction", "clicked"]
    doc = load_drift_report(result.drift_report or "", ledger=ledger)
    assert doc["drifted_columns"] == ["prediction", "clicked"] and doc["drift_detected"] is True
    (row,) = ledger.store.list_profiles("recsys-demo")
    assert row["id"] == result.profile and row["name"] == "recommend-live-week1"
    assert row["n_rows"] == doc["reference"]["rows"] == 7 * 8000
    assert any("drifted: prediction, clicked" in line for line in said)
