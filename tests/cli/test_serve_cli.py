"""``hindsight serve``: --check on the shipped example, and a real server process that
answers, authenticates, and flushes its prediction log on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from hindsight.store import open_store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "serving" / "service.yaml"
HINDSIGHT = Path(sys.executable).with_name("hindsight")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_check_prints_the_tiers_as_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    out = subprocess.run(
        [str(HINDSIGHT), "--store", url, "serve", str(EXAMPLE), "--check", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["service"] == "loans"
    assert [t["tier"] for t in status["tiers"]] == ["model", "rules"]
    assert status["candidates"]["v2"]["version"] == "2"
    assert status["abstention"]["risk_rules"] == ["amount > 10000"]


def test_a_bad_service_file_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "service.yaml"
    bad.write_text("name: x\ntiers:\n  - {kind: magic}\n")
    out = subprocess.run(
        [str(HINDSIGHT), "serve", str(bad), "--check"], capture_output=True, text=True,
        timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2
    assert "kind must be one of" in out.stderr and "Traceback" not in out.stderr


def test_serve_answers_and_flushes_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    port = _free_port()
    env = {**os.environ, "HINDSIGHT_SERVE_TOKEN": "tok"}
    proc = subprocess.Popen(
        [str(HINDSIGHT), "--store", url, "serve", str(EXAMPLE), "--port", str(port),
         "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(f"server did not start: {proc.communicate(timeout=5)}")
            time.sleep(0.1)
        ids = []
        for amount in (500, 2000, 20000, 60000):
            r = httpx.post(f"{base}/predict", json={"inputs": {"amount": amount, "age": 35}})
            assert r.status_code == 200, r.text
            ids.append(r.json())
        assert ids[0]["tier"] == "model" and ids[0]["output"] == "approve"
        assert ids[2]["abstained"] and ids[2]["review_ticket"]  # risk rule amount > 10000
        assert ids[3]["output"] == "decline" and ids[3]["tier"] == "rules"
        assert httpx.get(f"{base}/status").status_code == 401
        status = httpx.get(f"{base}/status", headers={"Authorization": "Bearer tok"}).json()
        assert status["counters"]["requests_total"] == 4
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so supervisors see the signal.
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Traceback" not in err
    # The log was flushed on shutdown: every answered request is in the store.
    store = open_store(url)
    try:
        logged = {r["id"] for r in store.list_predictions(service="loans")}
        assert logged == {r["id"] for r in ids}
        assert store.count_review_items(service="loans", status="pending") >= 1
    finally:
        store.close()
