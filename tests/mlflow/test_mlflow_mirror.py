"""Mirroring experiments to a real MLflow server."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hindsight.config import Settings
from hindsight.ledger import HindsightWarning, Ledger, experiment

pytestmark = pytest.mark.mlflow

OOM = (
    "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.78 GiB total capacity; "
    "13.20 GiB already allocated; 1.10 GiB free; 13.50 GiB reserved in total by PyTorch)"
)


def make_ledger(url: str, home: Path, mlflow_uri: str) -> Ledger:
    """A ledger on a store URL that mirrors to an MLflow tracking URI."""
    return Ledger(Settings(home=home, store=url, mlflow_tracking_uri=mlflow_uri))


@pytest.fixture
def mirrored(sqlite_url: str, tmp_path: Path, mlflow_uri: str) -> Iterator[Ledger]:
    """A ledger that mirrors every experiment to the session's MLflow server."""
    led = make_ledger(sqlite_url, tmp_path, mlflow_uri)
    yield led
    led.close()


def test_finished_experiment_is_mirrored(
    mirrored: Ledger, mlflow_client: Any, project: str
) -> None:
    loss = np.linspace(1.0, 0.1, 2500)
    loss[100] = math.nan
    with experiment(
        "mf-baseline",
        hypothesis="Matrix factorisation beats popularity on CTR.",
        approach="MF, 64 factors",
        config={"lr": 0.01, "model": {"dim": 64, "name": "mf"}, "layers": [1, 2], "bias": True,
                "note": "x" * 700},
        criteria={"ctr": ">= 0.5"},
        tags=["baseline", "mf"],
        project=project,
        ledger=mirrored,
        quiet=True,
    ) as exp:
        exp.log_series("loss", loss)
        exp.log_metric("ctr", 0.61)
        exp.next_step("Try 128 factors.")
    rec = exp.record
    assert rec.status == "finished" and rec.outcome == "success"
    assert rec.mlflow_run_id

    run = mlflow_client.get_run(rec.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "mf-baseline"
    assert mlflow_client.get_experiment(run.info.experiment_id).name == project
    params = run.data.params
    assert params["lr"] == "0.01"
    assert params["model.dim"] == "64" and params["model.name"] == "mf"
    assert params["layers"] == "[1, 2]" and params["bias"] == "True"
    assert len(params["note"]) == 500  # MLflow's historic limit
    tags = run.data.tags
    assert tags["hindsight.experiment_id"] == exp.id
    assert tags["hindsight.outcome"] == "success"
    assert tags["hindsight.status"] == "finished"
    assert tags["hindsight.hypothesis"] == "Matrix factorisation beats popularity on CTR."
    assert tags["hindsight.approach"] == "MF, 64 factors"
    assert json.loads(tags["hindsight.tags"]) == ["baseline", "mf"]
    assert "Matrix factorisation" in tags["mlflow.note.content"]
    assert "MF, 64 factors" in tags["mlflow.note.content"]
    assert tags["hindsight.outcome_reason"] == "all criteria met"
    assert "Try 128 factors." in tags["hindsight.next_steps"]
    assert "hindsight.failure_category" not in tags

    hist = mlflow_client.get_metric_history(rec.mlflow_run_id, "loss")
    assert len(hist) == 2500
    hist.sort(key=lambda m: m.step)
    assert [m.step for m in hist] == list(range(2500))
    values = np.array([m.value for m in hist])
    assert math.isnan(values[100])
    np.testing.assert_allclose(np.delete(values, 100), np.delete(loss, 100))
    assert run.data.metrics["ctr"] == pytest.approx(0.61)
    assert run.info.end_time >= run.info.start_time


def test_crash_is_failed_with_diagnosis_artifacts(
    mirrored: Ledger, mlflow_client: Any, project: str, tmp_path: Path
) -> None:
    with (
        pytest.raises(RuntimeError, match="CUDA out of memory"),
        experiment("big-batch", config={"batch_size": 512}, project=project, ledger=mirrored,
                   quiet=True) as exp,
    ):
        exp.log_metric("loss", 2.3)
        raise RuntimeError(OOM)
    rec = exp.record
    assert rec.status == "crashed" and rec.mlflow_run_id and rec.failure_id
    failure = mirrored.failure_record(rec.failure_id)
    assert failure.category == "dl.gpu_oom"

    run = mlflow_client.get_run(rec.mlflow_run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["hindsight.failure_category"] == "dl.gpu_oom"
    assert run.data.tags["hindsight.fingerprint"] == failure.fingerprint
    assert run.data.tags["hindsight.outcome"] == "failure"
    assert run.data.tags["hindsight.status"] == "crashed"
    trace = Path(mlflow_client.download_artifacts(rec.mlflow_run_id, "hindsight/traceback.txt",
                                                  str(tmp_path)))
    text = trace.read_text()
    assert "Traceback (most recent call last):" in text
    assert "RuntimeError: CUDA out of memory" in text
    analysis = Path(mlflow_client.download_artifacts(
        rec.mlflow_run_id, "hindsight/failure_analysis.json", str(tmp_path)))
    data = json.loads(analysis.read_text())
    assert data["failure"]["id"] == rec.failure_id
    assert data["failure"]["category"] == "dl.gpu_oom"
    assert data["failure"]["diagnosis"]["recommendations"]


def test_ctrl_c_is_killed(mirrored: Ledger, mlflow_client: Any, project: str) -> None:
    with (
        pytest.raises(KeyboardInterrupt),
        experiment("interrupted", project=project, ledger=mirrored, quiet=True) as exp,
    ):
        exp.log_metric("loss", 1.0)
        raise KeyboardInterrupt
    rec = exp.record
    assert rec.status == "killed"
    run = mlflow_client.get_run(rec.mlflow_run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags["hindsight.status"] == "killed"
    assert "KeyboardInterrupt" in run.data.tags["hindsight.outcome_reason"]


def test_mirror_from_mlflow_env_with_mlflow_true(
    ledger: Ledger, mlflow_client: Any, mlflow_uri: str, project: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    with experiment("from-env", project=project, mlflow=True, quiet=True) as exp:
        exp.log_metrics({"acc": 0.9, "loss": 0.2})
    run = mlflow_client.get_run(exp.record.mlflow_run_id)
    assert run.data.metrics == pytest.approx({"acc": 0.9, "loss": 0.2})


def test_mirror_env_setting_turns_mirroring_on(
    sqlite_url: str, tmp_path: Path, mlflow_client: Any, mlflow_uri: str, project: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HINDSIGHT_STORE", sqlite_url)
    monkeypatch.setenv("HINDSIGHT_MLFLOW_TRACKING_URI", mlflow_uri)
    led = Ledger()
    try:
        with experiment("env-on", project=project, ledger=led, quiet=True) as exp:
            exp.log_metric("loss", 0.5)
        assert mlflow_client.get_run(exp.record.mlflow_run_id).info.status == "FINISHED"
        with experiment("env-off", project=project, ledger=led, mlflow=False, quiet=True) as off:
            pass
        assert off.record.mlflow_run_id is None
    finally:
        led.close()


def test_unreachable_mlflow_warns_and_records(
    sqlite_url: str, tmp_path: Path, closed_port_uri: str
) -> None:
    led = make_ledger(sqlite_url, tmp_path, closed_port_uri)
    try:
        with (
            pytest.warns(HindsightWarning, match="Could not mirror .* unreachable"),
            experiment("offline", config={"lr": 0.1}, ledger=led, quiet=True) as exp,
        ):
            exp.log_series("loss", np.arange(10.0))
        rec = exp.record
        assert rec.status == "finished"
        assert rec.mlflow_run_id is None
        assert len(led.store.metric_series(exp.id)["loss"][0]) == 10
    finally:
        led.close()


def test_mlflow_lost_mid_run_warns_at_the_end(
    mirrored: Ledger, mlflow_client: Any, project: str, closed_port_uri: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlflow.tracking import MlflowClient

    from hindsight.ledger import mlflow_bridge
    from hindsight.ledger.mlflow_bridge import mirror as mirror_module

    monkeypatch.setattr(mirror_module, "_DRAIN_IDLE_S", 1.0)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with (
        pytest.warns(HindsightWarning, match="Mirroring experiment .* unreachable"),
        experiment("lost", project=project, ledger=mirrored, quiet=True) as exp,
    ):
        mirror = exp._mirrors[0]
        assert isinstance(mirror, mlflow_bridge.MlflowMirror)
        run_id = mirror.run_id
        # The server "goes away": point the mirror at a port nobody listens on.
        mirror.client = MlflowClient(tracking_uri=closed_port_uri)
        mirror.tracking_uri = closed_port_uri
        exp.log_series("loss", np.arange(3000.0))
    assert exp.record.status == "finished"
    assert len(mirrored.store.metric_series(exp.id)["loss"][0]) == 3000
    assert mlflow_client.get_run(run_id).info.status == "RUNNING"
