"""Importing runs from a real MLflow server into the ledger, by function and by CLI."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hindsight.cli import common, importer
from hindsight.config import Settings
from hindsight.errors import MlflowBridgeError
from hindsight.ledger import Ledger, experiment
from hindsight.ledger.mlflow_bridge import ImportResult, import_runs
from hindsight.ledger.mlflow_bridge.importer import _parse_param

pytestmark = pytest.mark.mlflow

OOM_TRACEBACK = """\
epoch 3:  41%|####      | 412/1000 [02:13<03:10,  3.09it/s]
Traceback (most recent call last):
  File "/home/ml/ranker/train.py", line 88, in <module>
    main()
  File "/home/ml/ranker/train.py", line 61, in main
    loss = model(batch).loss
  File "/opt/conda/lib/python3.10/site-packages/torch/nn/modules/module.py", line 1532, in _wrapped_call_impl
    return self._call_impl(*args, **kwargs)
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total \
capacity of 23.65 GiB of which 1.12 GiB is free. Of the allocated memory 20.31 GiB is allocated by PyTorch.
"""

DAY_MS = 86_400_000


def _mlflow_entities() -> Any:
    from mlflow import entities

    return entities


@pytest.fixture
def runs(mlflow_client: Any, project: str) -> dict[str, str]:
    """An MLflow experiment with one run of each status; returns status -> run id."""
    ent = _mlflow_entities()
    c = mlflow_client
    exp_id = c.create_experiment(project)
    now = int(time.time() * 1000)

    done = c.create_run(exp_id, run_name="ranker-v1", start_time=now - 60_000,
                        tags={"mlflow.note.content": "Wider towers rank better.", "team": "recs"})
    rid = done.info.run_id
    c.log_batch(rid, params=[ent.Param(k, v) for k, v in {
        "lr": "0.001", "epochs": "10", "use_amp": "True", "optimizer": "adam",
        "layers": "[64, 32]", "dropout": "1e-1",
    }.items()])
    c.log_batch(rid, metrics=[ent.Metric("loss", 1.0 / (s + 1), now - 50_000 + s, s)
                              for s in range(300)])
    c.log_batch(rid, metrics=[ent.Metric("ndcg", 0.3 + s / 100, now - 40_000 + s, s)
                              for s in range(5)])
    c.set_terminated(rid, "FINISHED", end_time=now - 1000)

    failed = c.create_run(exp_id, run_name="ranker-big-batch", start_time=now - 30_000)
    fid = failed.info.run_id
    c.log_batch(fid, params=[ent.Param("batch_size", "4096")])
    c.log_batch(fid, metrics=[ent.Metric("loss", 2.0, now - 20_000, 0)])
    c.log_text(fid, "unrelated notes\n", "notes.txt")
    c.log_text(fid, OOM_TRACEBACK, "logs/stderr.log")
    c.set_terminated(fid, "FAILED", end_time=now - 10_000)

    killed = c.create_run(exp_id, run_name="ranker-cancelled", start_time=now - 9000)
    c.set_terminated(killed.info.run_id, "KILLED", end_time=now - 8000)

    stale = c.create_run(exp_id, run_name="ranker-ghost", start_time=now - 3 * DAY_MS)
    c.log_batch(stale.info.run_id, metrics=[ent.Metric("loss", 0.9, now - 3 * DAY_MS + 5000, 0)])

    live = c.create_run(exp_id, run_name="ranker-live", start_time=now - 5000)
    return {
        "FINISHED": rid, "FAILED": fid, "KILLED": killed.info.run_id,
        "STALE": stale.info.run_id, "RUNNING": live.info.run_id,
    }


@pytest.fixture
def fresh(sqlite_url: str, tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger(Settings(home=tmp_path, store=sqlite_url))
    yield led
    led.close()


def _by_run(led: Ledger) -> dict[str, Any]:
    return {r.mlflow_run_id: r for r in led.experiments() if r.mlflow_run_id}


def test_import_maps_statuses_config_metrics_and_diagnoses(
    fresh: Ledger, runs: dict[str, str], mlflow_uri: str, project: str
) -> None:
    calls: list[tuple[int, int]] = []
    result = import_runs(fresh, mlflow_uri, [project], progress=lambda d, t: calls.append((d, t)))
    assert isinstance(result, ImportResult)
    assert len(result.imported) == 4
    assert (result.skipped, result.failed, result.still_running) == (0, 2, 1)
    assert calls[0] == (0, 5) and calls[-1] == (5, 5)

    exps = _by_run(fresh)
    assert runs["RUNNING"] not in exps
    done = exps[runs["FINISHED"]]
    assert done.status == "finished" and done.project == project and done.name == "ranker-v1"
    assert done.hypothesis == "Wider towers rank better."
    assert done.config == {"lr": 0.001, "epochs": 10, "use_amp": True, "optimizer": "adam",
                           "layers": [64, 32], "dropout": 0.1}
    assert done.summary["loss"] == pytest.approx(1 / 300)
    assert done.summary["ndcg"] == pytest.approx(0.34)
    assert done.host is None and done.pid is None
    assert done.duration_s == pytest.approx(59.0, abs=0.01)
    assert done.environment["mlflow_import"]["tags"] == {"team": "recs"}
    series = fresh.store.metric_series(done.id)
    steps, vals, times = series["loss"]
    assert len(steps) == 300
    assert sorted(steps.tolist()) == list(range(300))
    order = steps.argsort()
    assert vals[order][0] == pytest.approx(1.0) and vals[order][-1] == pytest.approx(1 / 300)
    assert times.min() > done.started_at
    assert len(series["ndcg"][0]) == 5

    crashed = exps[runs["FAILED"]]
    assert crashed.status == "crashed" and crashed.outcome == "failure"
    assert crashed.config == {"batch_size": 4096}
    assert crashed.failure_id
    failure = fresh.failure_record(crashed.failure_id)
    assert failure.category == "dl.gpu_oom"
    assert failure.source == "import"
    assert "CUDA out of memory" in failure.message
    assert "CUDA out of memory" in (crashed.outcome_reason or "")

    assert exps[runs["KILLED"]].status == "killed"
    assert exps[runs["KILLED"]].failure_id is None

    ghost = exps[runs["STALE"]]
    assert ghost.status == "crashed"
    assert ghost.outcome_reason == "MLflow run never ended (stale RUNNING)"
    assert ghost.failure_id
    assert "never" in fresh.failure_record(ghost.failure_id).message or \
        "RUNNING" in (fresh.failure_record(ghost.failure_id).log_tail or "")

    # Reading the ledger reaps dead runs: nothing imported may be reaped.
    assert fresh.reap_stale() == []

    again = import_runs(fresh, mlflow_uri, [project])
    assert again.to_dict() == {"imported": [], "skipped": 4, "failed": 0, "still_running": 1}
    assert len(fresh.store.list_failures()) == 2


def test_round_trip_of_a_mirrored_crash(
    sqlite_url: str, tmp_path: Path, mlflow_uri: str, project: str
) -> None:
    source = Ledger(Settings(home=tmp_path, store=sqlite_url, mlflow_tracking_uri=mlflow_uri))
    target = Ledger(Settings(home=tmp_path, store=f"sqlite:///{tmp_path / 'other.db'}"))
    try:
        with (
            pytest.raises(ZeroDivisionError),
            experiment("div", hypothesis="h", approach="a", tags=["t1"],
                       config={"opt": {"lr": 0.5}}, project=project, ledger=source, quiet=True),
        ):
            _ = 1 / 0
        original = source.experiments()[0]
        result = import_runs(target, mlflow_uri, [project])
        assert result.failed == 1
        copy = target.experiment_record(result.imported[0])
        assert copy.mlflow_run_id == original.mlflow_run_id
        assert (copy.hypothesis, copy.approach, copy.tags) == ("h", "a", ["t1"])
        assert copy.config == {"opt.lr": 0.5}
        assert copy.status == "crashed"
        mine = source.failure_record(original.failure_id or "")
        theirs = target.failure_record(copy.failure_id or "")
        assert theirs.category == mine.category
        assert theirs.exc_type == mine.exc_type == "ZeroDivisionError"
        assert theirs.fingerprint == mine.fingerprint  # the same failure, recognised again
        assert theirs.frames == mine.frames
    finally:
        source.close()
        target.close()


def test_import_errors_name_the_server(
    fresh: Ledger, mlflow_uri: str, closed_port_uri: str
) -> None:
    with pytest.raises(MlflowBridgeError, match=r"127\.0\.0\.1.*unreachable"):
        import_runs(fresh, closed_port_uri)
    with pytest.raises(MlflowBridgeError, match="No MLflow experiment named 'no-such-exp'"):
        import_runs(fresh, mlflow_uri, ["no-such-exp"])


def test_cli_import_json_then_table(
    runs: dict[str, str], mlflow_uri: str, project: str, sqlite_url: str
) -> None:
    common.set_store_override(sqlite_url)
    try:
        cli = CliRunner()
        res = cli.invoke(importer.app, ["mlflow", "--tracking-uri", mlflow_uri,
                                        "--experiment", project, "--project", "ranking", "--json"])
        assert res.exit_code == 0, res.output
        data = json.loads(res.stdout)
        assert len(data["imported"]) == 4
        assert (data["skipped"], data["failed"], data["still_running"]) == (0, 2, 1)
        led = common.get_cli_ledger()
        assert {e.project for e in led.experiments()} == {"ranking"}

        res = cli.invoke(importer.app, ["mlflow", "--tracking-uri", mlflow_uri, "-e", project])
        assert res.exit_code == 0, res.output
        assert "MLflow import" in res.stdout
        assert "skipped" in res.stdout
    finally:
        common.set_store_override(None)


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1), ("-3", -3), ("0.5", 0.5), ("1e-3", 0.001), ("True", True), ("false", False),
     ("None", None), ("[1, 2]", [1, 2]), ('{"a": 1}', {"a": 1}), ("adam", "adam"),
     ("[oops", "[oops"), ("nan", "nan"), ("", "")],
)
def test_param_values_parse_back(text: str, value: Any) -> None:
    assert _parse_param(text) == value
