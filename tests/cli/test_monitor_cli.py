"""``hindsight monitor run|watch|windows|findings`` on Parquet logs, as cron would run it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from test_cli import assert_clean_error, hs

from hindsight.demo.monitoring import DAY, fraud_during_sale

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "monitor" / "monitor.yaml"


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """The example monitor.yaml next to a small version of its generated logs."""
    table = fraud_during_sale(per_hour=100, ordinary_days=2).table
    logs = tmp_path / "logs"
    logs.mkdir()
    days = np.floor(table.column("ts").to_numpy() / DAY).astype(np.int64)
    for day in np.unique(days):
        pq.write_table(table.filter(pc.equal(days, day)), logs / f"day-{int(day)}.parquet")
    shutil.copy(EXAMPLE, tmp_path / "monitor.yaml")
    return tmp_path


def test_run_alerts_once_opens_an_incident_and_gates_ci(folder: Path, sqlite_url: str) -> None:
    args = ("monitor", "run", "monitor.yaml", "--now", "2026-12-01T06:00", "--since",
            "2026-11-29T12:00")  # fmt: skip
    r = hs(sqlite_url, *args, "--json", "--fail-on-alert", cwd=folder, timeout=300)
    assert r.returncode == 1, r.stderr  # an alert fired
    out = json.loads(r.stdout)
    assert out["rows_pulled"] == 16 * 24 * 100  # every file, once
    alerts = [a for w in out["windows"] for a in w["alerts"]]
    assert [a["rule"] for a in alerts] == ["verified-blocks"]
    assert out["incidents"] == [alerts[0]["failure_id"]] and alerts[0]["failure_id"]
    # 2026-11-29 12:00 up to 2026-12-01 04:00; the 05:00 window waits out its 5 min settle.
    assert len(out["windows"]) == 41

    # The incident is a failure in the ledger, like any other.
    shown = json.loads(hs(sqlite_url, "show", alerts[0]["failure_id"], "--json", cwd=folder).stdout)
    assert shown["failure"]["source"] == "monitor"

    # The next pass finds nothing new: exit 0 even with --fail-on-alert.
    again = hs(sqlite_url, *args, "--json", "--fail-on-alert", cwd=folder, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["windows"] == []

    windows = json.loads(hs(sqlite_url, "monitor", "windows", "monitor.yaml", "--json",
                            cwd=folder).stdout)  # fmt: skip
    assert windows["windows"] == 16 * 24 and windows["last_judged"] is not None
    flagged = json.loads(hs(sqlite_url, "monitor", "findings", "monitor.yaml", "--flagged",
                            "--json", cwd=folder).stdout)  # fmt: skip
    assert flagged and all(f["flagged"] for f in flagged)
    assert any(f["key"] == "account=verified / block" for f in flagged)
    text = hs(sqlite_url, "monitor", "findings", "monitor.yaml", cwd=folder)
    assert text.returncode == 0 and "finding(s)" in text.stdout


def test_watch_runs_passes_and_bad_files_exit_2(folder: Path, sqlite_url: str) -> None:
    for old in sorted((folder / "logs").glob("*.parquet"))[:-2]:
        old.unlink()  # two days are enough to watch
    r = hs(sqlite_url, "monitor", "watch", "monitor.yaml", "--every", "1s", "--iterations",
           "2", "--json", cwd=folder, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    passes = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(passes) == 2 and passes[0]["rows_pulled"] > 0 and passes[1]["rows_pulled"] == 0

    (folder / "bad.yaml").write_text("name: m\nreference: {rule: trailing, n_windows: 2}\n")
    assert "'checks' is missing" in assert_clean_error(
        hs(sqlite_url, "monitor", "run", "bad.yaml", cwd=folder)
    )
    assert "No monitor file" in assert_clean_error(
        hs(sqlite_url, "monitor", "run", "nope.yaml", cwd=folder)
    )
    for sub in ("run", "watch", "windows", "findings"):
        h = hs(sqlite_url, "monitor", sub, "--help", cwd=folder)
        assert h.returncode == 0 and "monitor.yaml" in h.stdout
