"""``hindsight users`` and ``hindsight server``, through the installed console script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from live_server import free_port

HINDSIGHT = Path(sys.executable).parent / "hindsight"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HINDSIGHT_", "MLFLOW_"))}
    env["HINDSIGHT_HOME"] = str(home)
    return env


def _run(url: str, home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HINDSIGHT), "--store", url, *args], input=stdin, text=True,
                          capture_output=True, env=_env(home), timeout=60, check=False)


def test_users_tokens_and_a_running_server(sqlite_url: str, tmp_path: Path) -> None:
    added = _run(sqlite_url, tmp_path, "users", "add", "ada", "--role", "admin",
                 "--password-stdin", stdin="a long password\n")
    assert added.returncode == 0, added.stderr
    again = _run(sqlite_url, tmp_path, "users", "add", "ada", "--no-password")
    assert again.returncode == 2 and "already a user called 'ada'" in again.stderr
    bad = _run(sqlite_url, tmp_path, "users", "add", "bo", "--role", "boss", "--no-password")
    assert bad.returncode == 2 and "Unknown role 'boss'" in bad.stderr
    short = _run(sqlite_url, tmp_path, "users", "add", "cy", "--password-stdin", stdin="abc\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    users = json.loads(_run(sqlite_url, tmp_path, "users", "list", "--json").stdout)
    assert [(u["name"], u["role"]) for u in users] == [("ada", "admin")]
    assert "password" not in json.dumps(users)
    token = json.loads(_run(sqlite_url, tmp_path, "users", "token", "ada", "--json").stdout)["token"]

    port = free_port()
    proc = subprocess.Popen(
        [str(HINDSIGHT), "--store", sqlite_url, "server", "--port", str(port),
         "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"{base}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
                time.sleep(0.1)
        assert r.status_code == 200 and r.json() == {"name": "ada", "role": "admin", "via": "token"}
        assert httpx.get(f"{base}/api/v1/whoami").status_code == 401
        login = httpx.post(f"{base}/login", data={"name": "ada", "password": "a long password"})
        assert login.status_code == 303 and login.headers["location"] == "/experiments"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}" in out
    assert token not in out + err and "a long password" not in out + err  # no secret in logs


def test_the_demo_ends_by_serving_its_ledger(sqlite_url: str, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [str(HINDSIGHT), "--store", sqlite_url, "demo", "--serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path),
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:  # the journey's story, then the server's address and login
            lines.append(line)
            if "log in as demo" in line:
                break
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}" in text, text[-2000:]
        password = re.search(r"log in as demo with password (\S+)", text).group(1)  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                login = httpx.post(f"{base}/login", data={"name": "demo", "password": password})
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert login.status_code == 303
        page = httpx.get(f"{base}/experiments?q=cf-baseline", cookies=login.cookies)
        assert page.status_code == 200 and "cf-baseline" in page.text
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
