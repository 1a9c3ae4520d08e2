"""``with hindsight.experiment(...) as exp``: the record, metrics, links and crashes."""

from __future__ import annotations

import hashlib
import math
import os
import platform
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event

import hindsight
from hindsight.config import Settings
from hindsight.errors import InvalidCriteria, LedgerError, NotFound
from hindsight.ledger import Ledger, Terminated

# -- the running record ---------------------------------------------------------------


def test_running_record_is_written_at_start(any_ledger: Ledger) -> None:
    before = time.time()
    with hindsight.experiment(
        "mf-baseline",
        hypothesis="MF beats popularity on CTR",
        approach="matrix factorisation, 64 factors",
        tags=["mf", "baseline"],
        config={"factors": 64, "lr": 0.01, "opt": {"name": "adam"}},
        criteria={"ctr": ">= 0.60", "latency_p99_ms": "<= 50"},
    ) as exp:
        rec = any_ledger.experiment_record(exp.id)
        assert rec.status == "running"
        assert rec.outcome is None
        assert rec.name == "mf-baseline"
        assert rec.hypothesis == "MF beats popularity on CTR"
        assert rec.approach == "matrix factorisation, 64 factors"
        assert rec.tags == ["mf", "baseline"]
        assert rec.config == {"factors": 64, "lr": 0.01, "opt": {"name": "adam"}}
        assert rec.criteria == {"ctr": ">= 0.60", "latency_p99_ms": "<= 50"}
        assert rec.project == "default"
        assert rec.pid == os.getpid()
        assert rec.host
        assert before <= rec.started_at <= time.time()
        assert rec.heartbeat_at == rec.started_at
        assert rec.ended_at is None
        assert rec.environment["python"] == platform.python_version()
        # a live run of this process is listed as running, never reaped
        assert [e.id for e in any_ledger.experiments(status=["running"])] == [exp.id]
        exp.log_metric("ctr", 0.7)
        exp.log_metric("latency_p99_ms", 20)
    rec = exp.record
    assert rec.status == "finished"
    assert rec.ended_at is not None and rec.ended_at >= rec.started_at
    assert rec.duration_s == pytest.approx(rec.ended_at - rec.started_at)
    assert rec.failure_id is None


@pytest.fixture
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git confined to tmp_path, whatever the environment of the test run says."""
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))


@pytest.mark.usefixtures("git_env")
def test_not_in_a_git_repo(ledger: Ledger) -> None:
    with hindsight.experiment("x") as exp:
        pass
    assert (exp.record.git_commit, exp.record.git_dirty) == (None, None)


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=repo, check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


@pytest.mark.usefixtures("git_env")
def test_git_commit_and_dirty_flag(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "train.py").write_text("print('v1')\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "v1")
    first = _git(repo, "rev-parse", "HEAD")
    monkeypatch.chdir(repo)

    with hindsight.experiment("clean") as exp:
        pass
    assert (exp.record.git_commit, exp.record.git_dirty) == (first, False)

    (repo / "train.py").write_text("print('v2')\n")
    with hindsight.experiment("dirty") as exp:
        pass
    assert (exp.record.git_commit, exp.record.git_dirty) == (first, True)

    (repo / "notes.txt").write_text("untracked files do not make a run dirty\n")
    _git(repo, "commit", "-q", "-am", "v2")
    second = _git(repo, "rev-parse", "HEAD")
    with hindsight.experiment("committed") as exp:
        pass
    assert (exp.record.git_commit, exp.record.git_dirty) == (second, False)
    assert second != first

    # a crash records the git state in the failure's evidence too
    (repo / "train.py").write_text("print('v3')\n")
    with pytest.raises(ZeroDivisionError), hindsight.experiment("crash", quiet=True) as exp:
        _ = 1 / 0
    assert exp.failure is not None
    assert exp.failure.failure.evidence["git"] == {"commit": second, "dirty": True}


# -- outcome ------------------------------------------------------------------------


def test_finished_and_judged_with_each_verdict(any_ledger: Ledger) -> None:
    with hindsight.experiment(
        "judged",
        criteria={"ctr": ">= 0.60", "latency_p99_ms": "<= 50", "recall": 0.3},
    ) as exp:
        for step, ctr in enumerate([0.55, 0.61, 0.63]):
            exp.log_metric("ctr", ctr, step)
        exp.log_metric("latency_p99_ms", 72)
        exp.log_metric("recall", 0.31)
    rec = any_ledger.experiment_record(exp.id)
    assert rec.status == "finished"
    assert rec.outcome == "partial"
    assert rec.outcome_source == "criteria"
    assert rec.outcome_reason == "missed: latency_p99_ms <= 50 (got 72)"
    assert rec.verdicts == [
        {"metric": "ctr", "op": ">=", "threshold": 0.6, "value": 0.63, "verdict": "met"},
        {"metric": "latency_p99_ms", "op": "<=", "threshold": 50.0, "value": 72.0,
         "verdict": "missed"},
        {"metric": "recall", "op": ">=", "threshold": 0.3, "value": 0.31, "verdict": "met"},
    ]
    assert rec.summary == {"ctr": 0.63, "latency_p99_ms": 72.0, "recall": 0.31}


@pytest.mark.parametrize(
    ("metrics", "outcome", "reason"),
    [
        ({"acc": 0.95, "loss": 0.1}, "success", "all criteria met"),
        ({"acc": 0.5, "loss": 0.9}, "failure", "missed: acc >= 0.9 (got 0.5); loss <= 0.2 (got 0.9)"),
        ({"acc": 0.95}, "partial", "missed: loss <= 0.2 (got nothing)"),
    ],
)
def test_outcome_against_criteria(
    ledger: Ledger, metrics: dict[str, float], outcome: str, reason: str
) -> None:
    with hindsight.experiment("o", criteria={"acc": ">= 0.9", "loss": "<= 0.2"}) as exp:
        exp.log_metrics(metrics)
    assert (exp.record.outcome, exp.record.outcome_reason) == (outcome, reason)
    verdicts = {v["metric"]: v["verdict"] for v in exp.record.verdicts}
    if "loss" not in metrics:
        assert verdicts["loss"] == "missing"


def test_no_criteria_no_outcome(ledger: Ledger) -> None:
    with hindsight.experiment("free") as exp:
        exp.log_metric("acc", 0.9)
    rec = exp.record
    assert (rec.status, rec.outcome, rec.verdicts) == ("finished", None, [])


def test_nan_metric_never_meets_and_is_stored(any_ledger: Ledger) -> None:
    with hindsight.experiment("diverged", criteria={"loss": "<= 1.0"}) as exp:
        exp.log_metric("loss", 0.9)
        exp.log_metric("loss", float("nan"))
    rec = any_ledger.experiment_record(exp.id)
    assert rec.status == "finished"
    assert rec.outcome == "failure"
    assert rec.outcome_reason == "missed: loss <= 1 (got nan)"
    assert rec.verdicts[0]["verdict"] == "missed"
    assert rec.verdicts[0]["value"] == "nan"
    assert rec.summary == {"loss": "nan"}
    steps, vals, _ = any_ledger.store.metric_series(exp.id)["loss"]
    assert steps.tolist() == [0, 1]
    assert vals[0] == 0.9 and math.isnan(vals[1])


def test_set_outcome_overrides_with_a_reason(any_ledger: Ledger) -> None:
    with hindsight.experiment("leaky", criteria={"auc": ">= 0.8"}) as exp:
        exp.log_metric("auc", 0.99)
        exp.set_outcome("failure", "  the test set leaked into training  ")
    rec = any_ledger.experiment_record(exp.id)
    assert (rec.status, rec.outcome, rec.outcome_source, rec.outcome_reason) == (
        "finished", "failure", "manual", "the test set leaked into training"
    )
    # the criteria's own verdicts are still kept
    assert rec.verdicts[0]["verdict"] == "met"


def test_set_outcome_requires_a_reason_and_a_known_outcome(ledger: Ledger) -> None:
    with hindsight.experiment("x") as exp:
        with pytest.raises(LedgerError, match="needs a reason"):
            exp.set_outcome("success", "  ")
        with pytest.raises(LedgerError, match="'success', 'failure' or 'partial'"):
            exp.set_outcome("great", "it is")
        exp.set_outcome("partial", "half the slices improved")
    assert (exp.record.outcome, exp.record.outcome_reason) == (
        "partial", "half the slices improved"
    )


# -- step series --------------------------------------------------------------------


def test_step_series_come_back_exactly(any_ledger: Ledger) -> None:
    start = time.time()
    with hindsight.experiment("series") as exp:
        for i in range(5):
            exp.log_metric("loss", 1.0 / (i + 1))
        exp.log_metric("acc", 0.1, step=10)
        exp.log_metric("acc", 0.2)  # continues from the last explicit step
        exp.log_metrics({"a": 1, "b": np.float32(2.5)})
        exp.log_metrics({"a": 3, "b": 4})
        exp.log_metrics({"a": 5}, step=100)
        exp.log_series("lr", np.linspace(0.1, 0.0, 7))
        exp.log_series("grad", [3.0, 2.0, 1.0], steps=[5, 15, 25])
    series = any_ledger.store.metric_series(exp.id)
    assert sorted(series) == ["a", "acc", "b", "grad", "loss", "lr"]

    def check(key: str, steps: list[int], values: list[float]) -> None:
        s, v, t = series[key]
        assert s.tolist() == steps
        assert v.tolist() == values
        assert len(t) == len(s) and np.all(np.diff(t) >= 0)
        assert start <= t[0] and t[-1] <= time.time()

    check("loss", [0, 1, 2, 3, 4], [1.0, 0.5, 1 / 3, 0.25, 0.2])
    check("acc", [10, 11], [0.1, 0.2])
    check("a", [0, 1, 100], [1.0, 3.0, 5.0])
    check("b", [0, 1], [2.5, 4.0])
    check("lr", list(range(7)), np.linspace(0.1, 0.0, 7).tolist())
    check("grad", [5, 15, 25], [3.0, 2.0, 1.0])
    assert any_ledger.store.metric_series(exp.id, "acc").keys() == {"acc"}
    assert exp.record.summary == {
        "loss": 0.2, "acc": 0.2, "a": 5.0, "b": 4.0, "lr": 0.0, "grad": 1.0,
    }
    assert exp.metrics == exp.record.summary


def test_writes_are_buffered_until_flush(any_ledger: Ledger) -> None:
    with hindsight.experiment("buffered") as exp:
        exp.log_metric("loss", 1.0)
        exp.log_metric("loss", 0.5)
        assert any_ledger.store.metric_series(exp.id) == {}
        exp.flush()
        steps, vals, _ = any_ledger.store.metric_series(exp.id)["loss"]
        assert (steps.tolist(), vals.tolist()) == ([0, 1], [1.0, 0.5])
        assert any_ledger.experiment_record(exp.id).summary == {"loss": 0.5}
        exp.flush()  # nothing new: nothing written
        exp.log_metric("loss", 0.25)
        exp.flush()
        steps, vals, _ = any_ledger.store.metric_series(exp.id)["loss"]
        assert (steps.tolist(), vals.tolist()) == ([0, 1, 2], [1.0, 0.5, 0.25])


def test_heartbeat_flushes_in_the_background(sqlite_url: str, tmp_path: Path) -> None:
    led = Ledger(Settings(home=tmp_path, store=sqlite_url, heartbeat_s=0.05, stale_after_s=5))
    try:
        with hindsight.experiment("beat", ledger=led) as exp:
            exp.log_metric("loss", 1.0)
            deadline = time.time() + 5
            while time.time() < deadline:
                rec = led.experiment_record(exp.id)
                if rec.heartbeat_at > rec.started_at and led.store.metric_series(exp.id):
                    break
                time.sleep(0.02)
            assert rec.heartbeat_at > rec.started_at
            assert led.store.metric_series(exp.id)["loss"][1].tolist() == [1.0]
        assert not [t for t in threading.enumerate() if t.name.endswith(exp.id)]
    finally:
        led.close()


def test_100k_points_round_trip(any_ledger: Ledger) -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=100_000)
    t0 = time.perf_counter()
    with hindsight.experiment("big") as exp:
        for v in values.tolist():
            exp.log_metric("loss", v)
        exp.log_series("acc", values)
    elapsed = time.perf_counter() - t0
    series = any_ledger.store.metric_series(exp.id)
    steps, vals, _ = series["loss"]
    assert np.array_equal(steps, np.arange(100_000))
    assert np.array_equal(vals, values)
    assert np.array_equal(series["acc"][1], values)
    assert elapsed < 10


def test_bad_metric_values_and_names_lose_nothing(any_ledger: Ledger) -> None:
    with hindsight.experiment("bad-metrics") as exp:
        exp.log_metric("loss", 1.0)
        exp.flush()
        exp.log_metric("loss", 0.5)
        with pytest.raises(LedgerError, match="'loss' must be a number"):
            exp.log_metric("loss", "low")  # type: ignore[arg-type]
        with pytest.raises(LedgerError, match="'loss' must be a number"):
            exp.log_metric("loss", [1.0, 2.0])  # type: ignore[arg-type]
        with pytest.raises(LedgerError, match="'loss'"):
            exp.log_metric("loss", 1.0, step="first")  # type: ignore[arg-type]
        with pytest.raises(LedgerError, match=r"non-empty strings .* Got ''"):
            exp.log_metric("", 1.0)
        with pytest.raises(LedgerError, match="Got None"):
            exp.log_metric(None, 1.0)  # type: ignore[arg-type]
        with pytest.raises(LedgerError, match="at most 250 characters"):
            exp.log_metric("x" * 251, 1.0)
        with pytest.raises(LedgerError, match="at most 250 characters"):
            exp.log_series("y" * 251, [1.0, 2.0])
        with pytest.raises(LedgerError, match="Got ''"):
            exp.log_series("", [1.0])
        with pytest.raises(LedgerError, match=r"log_series\('acc'\)"):
            exp.log_series("acc", ["high", "low"])
        with pytest.raises(LedgerError, match=r"log_series\('acc'\): 3 steps for 2 values"):
            exp.log_series("acc", [1.0, 2.0], steps=[0, 1, 2])
        with pytest.raises(LedgerError, match="dict of name -> number"):
            exp.log_metrics([("loss", 1.0)])  # type: ignore[arg-type]
        exp.log_metric("loss", 0.25)
    rec = any_ledger.experiment_record(exp.id)
    assert rec.status == "finished"
    series = any_ledger.store.metric_series(exp.id)
    assert list(series) == ["loss"]
    assert series["loss"][0].tolist() == [0, 1, 2]
    assert series["loss"][1].tolist() == [1.0, 0.5, 0.25]


# -- notes, lessons, links, artifacts -----------------------------------------------


def test_next_step_lesson_applies_builds_on(any_ledger: Ledger) -> None:
    with hindsight.experiment("parent") as parent:
        lesson = parent.lesson("Normalise features before MF", tags=["mf", "data"])
        parent.next_step("try 128 factors: 64 underfits the long tail")
    assert lesson.sources == [parent.id]
    assert lesson.tags == ["data", "mf"]
    assert [n["text"] for n in any_ledger.store.notes(parent.id)] == [
        "try 128 factors: 64 underfits the long tail"
    ]
    assert any_ledger.store.notes(parent.id)[0]["kind"] == "next_step"

    # ids resolve by unique prefix
    with hindsight.experiment(
        "child", builds_on=[parent.id[:-2]], applies=[lesson.id[:-2]]
    ) as child:
        pass
    assert any_ledger.store.parents(child.id) == [parent.id]
    (again,) = any_ledger.lessons_by_id([lesson.id])
    assert again.applied_by == [child.id]
    assert any_ledger.lessons_for([parent.id])[0].text == "Normalise features before MF"

    with hindsight.experiment("later") as later:
        later.builds_on(child.id)
        later.applies(lesson.id)
        with pytest.raises(LedgerError, match="cannot build on itself"):
            later.builds_on(later.id)
        with pytest.raises(NotFound, match="exp_nope"):
            later.builds_on("exp_nope")
        with pytest.raises(NotFound):
            later.applies("les_nope")
        with pytest.raises(LedgerError, match="needs some text"):
            later.next_step("   ")
        with pytest.raises(LedgerError, match="needs text"):
            later.lesson("")
    assert any_ledger.store.parents(later.id) == [child.id]
    assert later.record.status == "finished"


def test_unknown_ids_at_start_leave_no_running_record(any_ledger: Ledger) -> None:
    with pytest.raises(NotFound, match="exp_0000"):
        hindsight.experiment("orphan", builds_on=["exp_0000"]).start()
    with pytest.raises(NotFound, match="les_0000"):
        hindsight.experiment("orphan", applies=["les_0000"]).start()
    assert any_ledger.experiments() == []


def test_artifact_size_and_sha256(any_ledger: Ledger, tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # more than one read chunk
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    with hindsight.experiment("artifacts") as exp:
        exp.artifact(path)
        exp.artifact(str(path), name="weights")
        with pytest.raises(LedgerError, match="is not a file"):
            exp.artifact(tmp_path / "missing.bin")
        with pytest.raises(LedgerError, match="is not a file"):
            exp.artifact(tmp_path)
    rows = any_ledger.store.artifacts(exp.id)
    assert [(r["name"], r["path"], r["size"], r["sha256"]) for r in rows] == [
        ("model.bin", str(path.resolve()), len(data), hashlib.sha256(data).hexdigest()),
        ("weights", str(path.resolve()), len(data), hashlib.sha256(data).hexdigest()),
    ]


# -- config and arguments -----------------------------------------------------------


def test_config_takes_numpy_scalars_and_paths(any_ledger: Ledger) -> None:
    config = {
        "lr": np.float32(0.5),
        "layers": np.int64(3),
        "flag": np.bool_(True),
        "widths": np.array([64, 32]),
        "data": Path("data/train.csv"),
        "dropout": (0.1, 0.2),
        "eps": float("inf"),
    }
    with hindsight.experiment("cfg", config=config) as exp:
        pass
    assert any_ledger.experiment_record(exp.id).config == {
        "lr": 0.5,
        "layers": 3,
        "flag": True,
        "widths": [64, 32],
        "data": "data/train.csv",
        "dropout": [0.1, 0.2],
        "eps": "inf",
    }


def test_non_json_config_names_the_key_and_writes_nothing(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match=r"config\.model holds a object"):
        hindsight.experiment("cfg", config={"lr": 0.1, "model": object()})
    with pytest.raises(LedgerError, match=r"config\.opt\.schedule holds a function"):
        hindsight.experiment("cfg", config={"opt": {"schedule": lambda s: s}})
    assert ledger.experiments() == []


def test_bad_name_and_criteria_are_refused_before_anything_is_written(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="non-empty name"):
        hindsight.experiment("  ")
    with pytest.raises(InvalidCriteria, match="'ctr'"):
        hindsight.experiment("x", criteria={"ctr": "at least 0.6"})
    with pytest.raises(InvalidCriteria, match="must be a mapping"):
        hindsight.experiment("x", criteria=["ctr >= 0.6"])  # type: ignore[arg-type]
    assert ledger.experiments() == []


def test_cannot_start_twice_or_end_before_start(ledger: Ledger) -> None:
    exp = hindsight.experiment("twice")
    with pytest.raises(LedgerError, match="is not running"):
        exp.end()
    with exp, pytest.raises(LedgerError, match="already running"):
        exp.start()
    assert exp.record.status == "finished"


# -- crashes ------------------------------------------------------------------------


def _forward(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x @ w


class ReadError(RuntimeError):
    pass


def test_exception_is_reraised_unchanged_and_recorded(any_ledger: Ledger) -> None:
    err = ReadError("shard 7 unreadable")
    with (
        pytest.raises(ReadError) as info,
        hindsight.experiment("crash", config={"lr": 0.1}, quiet=True),
    ):
        raise err
    assert info.value is err


@pytest.mark.usefixtures("git_env")
def test_crash_records_failure_with_evidence(any_ledger: Ledger) -> None:
    with (
        pytest.raises(ValueError, match="matmul") as info,
        hindsight.experiment(
            "shape", config={"hidden": 4}, criteria={"acc": ">= 0.5"}, quiet=True
        ) as exp,
    ):
        for i in range(1000):
            exp.log_metric("loss", 1.0 / (i + 1))
        exp.log_metric("acc", 0.4)
        _forward(np.ones((8, 3)), np.ones((4, 2)))
    rec = any_ledger.experiment_record(exp.id)
    assert rec.status == "crashed"
    assert rec.outcome == "failure"
    assert rec.outcome_source == "crash"
    assert rec.outcome_reason == f"ValueError: {info.value}"
    assert rec.verdicts == [
        {"metric": "acc", "op": ">=", "threshold": 0.5, "value": 0.4, "verdict": "missed"}
    ]
    # nothing logged before the crash is lost
    steps, vals, _ = any_ledger.store.metric_series(exp.id)["loss"]
    assert steps.tolist() == list(range(1000))
    assert vals[-1] == 1 / 1000
    assert rec.summary["loss"] == 1 / 1000

    assert exp.failure is not None
    assert rec.failure_id == exp.failure.failure.id
    f = any_ledger.failure_record(rec.failure_id)
    assert f.experiment_id == exp.id
    assert f.source == "experiment"
    assert f.exc_type == "ValueError"
    assert f.message == str(info.value)
    assert f.category == "dl.shape_mismatch"
    assert exp.failure.diagnosis["category"] == "dl.shape_mismatch"
    assert exp.failure.diagnosis["recommendations"]
    functions = [(fr["function"], fr["in_user_code"]) for fr in f.frames]
    assert ("_forward", True) in functions
    assert ("test_crash_records_failure_with_evidence", True) in functions
    assert all(fr["filename"] == __file__ for fr in f.frames if fr["function"] == "_forward")
    assert f.evidence["config"] == {"hidden": 4}
    assert f.evidence["last_metrics"] == {"loss": 1 / 1000, "acc": 0.4}
    assert 0 < f.evidence["duration_s"] < 60
    assert f.evidence["environment"]["python"] == rec.environment["python"]
    assert f.evidence["environment"]["packages"]["numpy"] == np.__version__
    assert f.evidence["git"] == {"commit": None, "dirty": None}
    assert [x["id"] for x in any_ledger.store.list_failures(experiment_id=exp.id)] == [f.id]


def test_zero_division_is_a_code_error(ledger: Ledger, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ZeroDivisionError), hindsight.experiment("zero") as exp:
        exp.log_metric("n", 0)
        _ = 1 / int(exp.metrics["n"])
    assert exp.failure is not None
    assert exp.failure.diagnosis["category"] == "code.error"
    assert exp.failure.failure.exc_type == "ZeroDivisionError"
    # not quiet: the person at the terminal sees the diagnosis
    err = capsys.readouterr().err
    assert f"recorded failure {exp.failure.failure.id}" in err
    assert "code.error" in err


def test_failure_and_crashed_status_land_in_one_transaction(any_ledger: Ledger) -> None:
    class Boom(Exception):
        pass

    def refuse_crashed_update(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE EXPERIMENTS") and "crashed" in repr(
            parameters
        ):
            raise Boom("store lost mid-write")

    engine = any_ledger.store.engine
    exp = hindsight.experiment("atomic", quiet=True)
    exp.start()
    event.listen(engine, "before_cursor_execute", refuse_crashed_update)
    try:
        with pytest.raises(Boom):
            exp.end(RuntimeError("training failed"))
    finally:
        event.remove(engine, "before_cursor_execute", refuse_crashed_update)
    # neither half landed: no failure without a crashed experiment
    assert any_ledger.store.list_failures() == []
    assert any_ledger.store.get("experiment", exp.id)["status"] == "running"


def test_system_exit(ledger: Ledger) -> None:
    with pytest.raises(SystemExit), hindsight.experiment("done") as ok:
        sys.exit(0)
    assert (ok.record.status, ok.record.failure_id) == ("finished", None)
    with pytest.raises(SystemExit), hindsight.experiment("bad", quiet=True) as bad:
        sys.exit(3)
    assert bad.record.status == "crashed"
    assert bad.failure is not None and bad.failure.failure.exc_type == "SystemExit"
    assert bad.failure.failure.exit_code == 3


# -- killed ---------------------------------------------------------------------------


def test_keyboard_interrupt_is_killed_without_a_failure(any_ledger: Ledger) -> None:
    with pytest.raises(KeyboardInterrupt), hindsight.experiment("ctrl-c") as exp:
        exp.log_metric("loss", 0.3)
        raise KeyboardInterrupt
    rec = any_ledger.experiment_record(exp.id)
    assert rec.status == "killed"
    assert rec.outcome is None
    assert rec.outcome_reason == "killed by KeyboardInterrupt (Ctrl-C)"
    assert rec.failure_id is None and exp.failure is None
    assert any_ledger.store.list_failures() == []
    assert rec.summary == {"loss": 0.3}


def test_sigterm_handler_is_restored(ledger: Ledger) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with hindsight.experiment("handlers"):
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


def test_terminated_exits_with_128_plus_signal() -> None:
    t = Terminated(signal.SIGTERM)
    assert isinstance(t, SystemExit)
    assert t.code == 143


_SIGTERM_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from hindsight.ledger import Ledger, experiment

    led = Ledger.at(sys.argv[1])
    with experiment("sigterm", ledger=led) as exp:
        exp.log_metric("loss", 0.5)
        print(exp.id, flush=True)
        print("ready", flush=True)
        time.sleep(60)
    """
)


def test_sigterm_in_a_real_process(any_ledger: Ledger, tmp_path: Path) -> None:
    script = tmp_path / "sigterm_run.py"
    script.write_text(_SIGTERM_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), any_ledger.settings.store_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        exp_id = proc.stdout.readline().strip()
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert code == 143
    rec = any_ledger.experiment_record(exp_id)
    assert rec.status == "killed"
    assert rec.outcome is None
    assert rec.outcome_reason is not None and "SIGTERM" in rec.outcome_reason
    assert rec.failure_id is None
    assert rec.summary == {"loss": 0.5}
