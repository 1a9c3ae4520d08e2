"""Smoke test of the list-page benchmark (benchmarks/web/list_pages.py) in its quick mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "web" / "list_pages.py"


def test_quick_mode_serves_every_view() -> None:
    r = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json"], capture_output=True,
                       text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["info"]["experiments"] == 10_000
    names = [t["name"] for t in out["targets"]]
    assert names[0].startswith("p95 page time over every list view")
    assert len(names) == 11 and all(t["value"] > 0 for t in out["targets"])
