"""Smoke test of benchmarks/web/log_through_server.py in its quick mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "web" / "log_through_server.py"


def test_quick_mode_delivers_every_point() -> None:
    r = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json"], capture_output=True,
                       text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["info"]["points"] == 10_000 and out["info"]["server_has_every_point"] is True
    assert [t["verdict"] for t in out["targets"]][1] == "PASS"
    assert all(t["value"] > 0 for t in out["targets"])
