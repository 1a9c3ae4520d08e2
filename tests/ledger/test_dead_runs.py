"""Runs that die without a word: reaped as crashed on the next read of the ledger."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hindsight
from hindsight.config import Settings
from hindsight.errors import ConfigError
from hindsight.ledger import Ledger
from hindsight.ledger.environment import hostname
from hindsight.ledger.ids import new_id
from hindsight.store.schema import SCHEMA_VERSION

_SIGKILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from hindsight.ledger import Ledger, experiment

    led = Ledger.at(sys.argv[1])
    exp = experiment("oom-victim", config={"batch_size": 4096}, ledger=led)
    exp.start()
    for step in range(20):
        exp.log_metric("loss", 1.0 / (step + 1))
    exp.log_metric("rss_gb", 61.5)
    exp.flush()
    print(exp.id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _killed_run(ledger: Ledger, tmp_path: Path) -> str:
    script = tmp_path / "killed_run.py"
    script.write_text(_SIGKILL_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), ledger.settings.store_url],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    return done.stdout.strip()


def _row(ledger: Ledger, *, host: str, pid: int, heartbeat_age: float) -> str:
    """A running experiment as another process would have written it."""
    now = time.time()
    exp_id = new_id("experiment")
    ledger.store.insert(
        "experiment",
        {
            "id": exp_id,
            "project": ledger.settings.project,
            "name": "remote",
            "hypothesis": "",
            "approach": "",
            "tags": [],
            "config": {"lr": 0.1},
            "criteria": {},
            "status": "running",
            "summary": {"loss": 0.42},
            "verdicts": [],
            "started_at": now - heartbeat_age - 100,
            "heartbeat_at": now - heartbeat_age,
            "environment": {},
            "host": host,
            "pid": pid,
            "command": "python train.py",
            "schema_version": SCHEMA_VERSION,
        },
    )
    return exp_id


def test_sigkilled_run_is_reaped_on_next_read(any_ledger: Ledger, tmp_path: Path) -> None:
    exp_id = _killed_run(any_ledger, tmp_path)
    # what the dead process left behind says it is still running
    assert any_ledger.store.get("experiment", exp_id)["status"] == "running"

    (rec,) = any_ledger.experiments()
    assert rec.id == exp_id
    assert rec.status == "crashed"
    assert rec.outcome == "failure"
    assert rec.outcome_source == "crash"
    assert rec.outcome_reason is not None and "stale heartbeat" in rec.outcome_reason
    assert rec.ended_at == rec.heartbeat_at
    assert rec.duration_s == pytest.approx(rec.heartbeat_at - rec.started_at)

    assert rec.failure_id is not None
    f = any_ledger.failure_record(rec.failure_id)
    assert f.experiment_id == exp_id
    assert f.exit_code == 137
    assert f.category == "dl.cpu_oom"
    assert "heartbeat" in f.message + (f.log_tail or "")
    assert f"Process {rec.pid} on {hostname()}" in f.message + (f.log_tail or "")
    assert f.evidence["config"] == {"batch_size": 4096}
    assert f.evidence["last_metrics"] == {"loss": 1 / 20, "rss_gb": 61.5}

    # the metrics it flushed are kept
    steps, vals, _ = any_ledger.store.metric_series(exp_id)["loss"]
    assert steps.tolist() == list(range(20))
    assert vals[-1] == 1 / 20

    # reaped once: later reads change nothing
    assert any_ledger.reap_stale() == []
    assert len(any_ledger.store.list_failures(experiment_id=exp_id)) == 1


def test_stale_run_on_another_host_is_reaped(any_ledger: Ledger) -> None:
    assert any_ledger.settings.stale_after_s == 120
    stale = _row(any_ledger, host="elsewhere", pid=os.getpid(), heartbeat_age=200)
    fresh = _row(any_ledger, host="elsewhere", pid=999_999, heartbeat_age=60)
    by_id = {e.id: e for e in any_ledger.experiments()}
    assert by_id[stale].status == "crashed"
    assert by_id[fresh].status == "running"
    f = any_ledger.failure_record(by_id[stale].failure_id or "")
    assert "on elsewhere stopped without a word" in f.message + (f.log_tail or "")
    assert f.evidence["last_metrics"] == {"loss": 0.42}
    assert f.evidence["config"] == {"lr": 0.1}
    assert any_ledger.failures()[0].id == f.id


def test_run_on_this_host_follows_its_process(ledger: Ledger) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # a live process with a lagging heartbeat (starved thread, suspended laptop)
        exp_id = _row(ledger, host=hostname(), pid=child.pid, heartbeat_age=500)
        assert ledger.reap_stale() == []
        assert ledger.experiment_record(exp_id).status == "running"
    finally:
        child.kill()
        child.wait()
    # its process is gone: reaped at once, whatever the heartbeat says
    exp_id2 = _row(ledger, host=hostname(), pid=child.pid, heartbeat_age=0)
    # reading one record (by a prefix of its id) reaps too
    rec = ledger.experiment_record(exp_id2[:-3])
    assert (rec.id, rec.status, rec.outcome) == (exp_id2, "crashed", "failure")
    assert rec.failure_id is not None
    assert ledger.failure_record(rec.failure_id).category == "dl.cpu_oom"
    assert ledger.experiment_record(exp_id).status == "crashed"
    assert len(ledger.failures()) == 2


def test_live_run_in_this_process_is_never_reaped(any_ledger: Ledger) -> None:
    with hindsight.experiment("alive") as exp:
        exp.log_metric("loss", 0.5)
        # even with a heartbeat long overdue
        any_ledger.store.update("experiment", exp.id, heartbeat_at=time.time() - 1000)
        assert any_ledger.reap_stale() == []
        assert any_ledger.experiment_record(exp.id).status == "running"
        assert [e.status for e in any_ledger.experiments()] == ["running"]
    rec = any_ledger.experiment_record(exp.id)
    assert (rec.status, rec.failure_id) == ("finished", None)
    assert any_ledger.store.list_failures() == []


def _after_read(barrier: threading.Barrier) -> Callable[[Any], Any]:
    def wrap(fn: Callable[[float], list[dict[str, Any]]]) -> Callable[[float], list[Any]]:
        def stale_running(before: float) -> list[dict[str, Any]]:
            rows = fn(before)
            barrier.wait(timeout=20)  # both readers saw the dead run before either marks it
            return rows

        return stale_running

    return wrap


def test_two_readers_reap_once(any_ledger: Ledger, tmp_path: Path) -> None:
    dead = _row(any_ledger, host="elsewhere", pid=1, heartbeat_age=300)
    other = Ledger(Settings(home=tmp_path, store=any_ledger.settings.store_url))
    try:
        barrier = threading.Barrier(2)
        wrap = _after_read(barrier)
        for led in (any_ledger, other):
            led.store.stale_running = wrap(led.store.stale_running)  # type: ignore[method-assign]
        results: list[list[str]] = []
        errors: list[BaseException] = []

        def reap(led: Ledger) -> None:
            try:
                results.append(led.reap_stale())
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=reap, args=(led,)) for led in (any_ledger, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert errors == []
        assert sorted(results) == [[], [dead]]
        failures = any_ledger.store.list_failures(experiment_id=dead)
        assert len(failures) == 1
        assert any_ledger.store.get("experiment", dead)["failure_id"] == failures[0]["id"]
    finally:
        other.close()


def test_mark_crashed_is_compare_and_set(any_ledger: Ledger) -> None:
    dead = _row(any_ledger, host="elsewhere", pid=1, heartbeat_age=300)
    values = {"status": "crashed", "outcome": "failure"}
    assert any_ledger.store.mark_crashed(dead, values) is True
    assert any_ledger.store.mark_crashed(dead, values) is False


@pytest.mark.parametrize(("heartbeat", "stale"), [(15, 15), (15, 10), (0, 120), (-1, 120)])
def test_stale_after_must_exceed_heartbeat(heartbeat: float, stale: float) -> None:
    with pytest.raises(ConfigError, match="heartbeat_s"):
        Settings(heartbeat_s=heartbeat, stale_after_s=stale)


def test_stale_after_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HINDSIGHT_HEARTBEAT", "30")
    monkeypatch.setenv("HINDSIGHT_STALE_AFTER", "20")
    with pytest.raises(ConfigError, match=r"stale_after_s \(20.0\) must be larger than heartbeat_s"):
        Settings.load()
    monkeypatch.setenv("HINDSIGHT_STALE_AFTER", "soon")
    with pytest.raises(ConfigError, match="stale_after_s must be a number of seconds"):
        Settings.load()
    monkeypatch.setenv("HINDSIGHT_STALE_AFTER", "90")
    assert (Settings.load().heartbeat_s, Settings.load().stale_after_s) == (30.0, 90.0)
