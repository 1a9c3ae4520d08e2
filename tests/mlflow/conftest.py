"""A real MLflow tracking server on loopback (SQLite backend, proxied artifacts in tmp)."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MLFLOW = Path(sys.executable).with_name("mlflow")
START_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"MLflow is required in CI: {reason}")
    pytest.skip(reason)


def _healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=1) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URI of an ``mlflow server`` started for this test session."""
    if importlib.util.find_spec("mlflow") is None:
        _missing("the mlflow package is not installed (pip install 'hindsight[mlflow]')")
    if not MLFLOW.exists():
        _missing(f"no mlflow executable next to {sys.executable}")
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no background job workers needed
    log_path = root / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                str(MLFLOW), "server",
                "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination", str(root / "artifacts"),
                "--host", "127.0.0.1",
                "--port", str(port),
                "--workers", "1",
            ],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers join its process group: one signal stops all
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(uri):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                pytest.fail(f"mlflow server did not come up at {uri} (exit {proc.poll()}):\n{tail}")
            time.sleep(0.25)
        yield uri
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[Any]) -> None:
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def mlflow_client(mlflow_uri: str) -> Any:
    """An MlflowClient on the session's server."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=mlflow_uri)


@pytest.fixture
def project() -> str:
    """A fresh MLflow experiment / hindsight project name."""
    return f"hs-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def closed_port_uri() -> str:
    """An http URI on which nothing listens."""
    return f"http://127.0.0.1:{_free_port()}"
