"""The guard feeds the ledger and the alert channels; resources and settings feed the guard."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hindsight.alerts import Dispatcher, MemoryChannel, RetryPolicy, SlackChannel, WebhookChannel
from hindsight.config import Settings
from hindsight.diagnose import diagnose
from hindsight.errors import ConfigError, DataQualityError, LedgerError, StoreUnavailable
from hindsight.ledger import Ledger, add_lesson, current_experiment, experiment
from hindsight.training import (
    SYMPTOM_CATEGORY,
    SYMPTOM_KINDS,
    GuardReporter,
    Overfitting,
    ResourceMonitor,
    Symptom,
    TimeBudget,
    TrainingGuard,
)
from hindsight.training.reporting import symptom_evidence


def overfit_run(guard: TrainingGuard, steps: int = 200) -> int:
    """Training loss falls for good; validation turns up after step 60. Returns the stop step."""
    rng = np.random.default_rng(7)
    for step in range(steps):
        loss = 1.0 * np.exp(-step / 40) + 0.01 * rng.random()
        val = 0.6 + 0.4 * np.exp(-step / 20) + max(0, step - 60) * 0.004 + 0.003 * rng.random()
        if guard.update(step, loss=float(loss), val_loss=float(val), lr=1e-3).stop:
            return step
    return -1


def test_every_symptom_kind_has_a_category_that_the_diagnosis_agrees_with() -> None:
    assert set(SYMPTOM_CATEGORY) == set(SYMPTOM_KINDS)
    for kind, category in SYMPTOM_CATEGORY.items():
        s = Symptom(kind, "stop", 10, {"loss": 1.0}, "Because.", ("Fix it.",))
        d = diagnose(symptom_evidence(s))
        assert d.category == category, kind
        # The guard's own advice comes first, before the category's generic advice.
        assert d.recommendations[0] == "Fix it.", kind
        assert "Because." in d.likely_cause


def test_the_stop_symptom_decides_the_category_over_an_earlier_warning() -> None:
    warn = Symptom("memory_growth", "warn", 5, {}, "Leak.", ("Free caches.",))
    stop = Symptom("overfitting", "stop", 9, {}, "Memorises.", ("Add dropout.",))
    d = diagnose(symptom_evidence(stop, [warn, stop]))
    assert d.category == "train.overfitting"
    assert d.recommendations[0] == "Add dropout."


def test_a_stop_inside_an_experiment_is_recorded_with_evidence(
    any_ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    with experiment("overfit-1", config={"lr": 1e-3, "epochs": 200}) as exp:
        guard = TrainingGuard(detectors=[Overfitting(severity="stop")])
        stopped_at = overfit_run(guard)
        assert stopped_at > 60
        assert guard.failure is not None
        # Recorded the moment the guard stopped, before the block ends.
        mid = any_ledger.experiment_record(exp.id)
        assert mid.status == "running" and mid.outcome == "failure"
    rec = any_ledger.experiment_record(exp.id)
    assert rec.status == "finished"
    assert (rec.outcome, rec.outcome_source) == ("failure", "training")
    assert rec.outcome_reason is not None and "overfitting" in rec.outcome_reason
    assert rec.failure_id == guard.failure.failure.id
    failure = any_ledger.failure_record(rec.failure_id)
    assert failure.source == "training"
    assert failure.category == "train.overfitting"
    assert failure.exc_type == "TrainingSymptom"
    ev = failure.evidence
    assert ev["symptom"]["kind"] == "overfitting"
    assert ev["stopped_at_step"] == stopped_at
    assert ev["curves"]["val_loss"]["steps"][-1] == stopped_at
    assert len(ev["curves"]["loss"]["values"]) == len(ev["curves"]["loss"]["steps"])
    assert ev["guard"]["detectors"][0]["name"] == "Overfitting"
    assert ev["config"] == {"lr": 1e-3, "epochs": 200}
    err = capsys.readouterr().err
    assert f"recorded failure {failure.id}" in err and "train.overfitting" in err


def test_a_second_run_sees_the_first_failure_and_its_lesson(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    with experiment("overfit-1", config={"lr": 1e-3}):
        first = TrainingGuard(detectors=[Overfitting(severity="stop")])
        overfit_run(first)
    assert first.failure is not None
    lesson = add_lesson(
        ledger, "Small data overfits after 60 epochs: add weight decay.",
        sources=[first.failure.failure.id],
    )
    capsys.readouterr()
    with experiment("overfit-2", config={"lr": 1e-3}):
        second = TrainingGuard(detectors=[Overfitting(severity="stop")])
        overfit_run(second)
    assert second.failure is not None
    similar = second.failure.similar
    assert similar and similar[0].failure.id == first.failure.failure.id
    assert [les.id for les in similar[0].lessons] == [lesson.id]
    err = capsys.readouterr().err
    assert "similar past failures" in err and "add weight decay" in err


def test_no_experiment_means_no_record(ledger: Ledger) -> None:
    guard = TrainingGuard(detectors=[Overfitting(severity="stop")])
    assert overfit_run(guard) > 0
    assert guard.failure is None
    assert ledger.failures() == []


def test_experiment_none_opts_out_and_an_explicit_experiment_is_used(ledger: Ledger) -> None:
    with experiment("quiet-guard", quiet=True) as exp:
        off = TrainingGuard(detectors=[Overfitting(severity="stop")], experiment=None)
        overfit_run(off)
        assert off.failure is None
    assert ledger.experiment_record(exp.id).outcome is None
    with experiment("explicit", quiet=True) as outer:
        pass
    with experiment("target", quiet=True) as target:
        guard = TrainingGuard(detectors=[Overfitting(severity="stop")], experiment=target)
        overfit_run(guard)
    assert ledger.experiment_record(target.id).outcome == "failure"
    assert ledger.experiment_record(outer.id).outcome is None


def test_early_stopping_on_patience_is_not_a_failure(ledger: Ledger) -> None:
    with experiment("patience", quiet=True) as exp:
        guard = TrainingGuard(detectors=[], patience=3, monitor="loss")
        verdicts = [guard.update(s, loss=1.0) for s in range(5)]
    assert verdicts[3].stop and verdicts[3].early_stop
    assert guard.failure is None
    assert ledger.experiment_record(exp.id).outcome is None


def test_a_manual_outcome_still_wins_over_the_guard(ledger: Ledger) -> None:
    with experiment("manual", quiet=True) as exp:
        overfit_run(TrainingGuard(detectors=[Overfitting(severity="stop")]))
        exp.set_outcome("partial", "good enough for the ablation")
    rec = ledger.experiment_record(exp.id)
    assert (rec.outcome, rec.outcome_source) == ("partial", "manual")


def test_a_crash_after_a_guard_stop_is_still_a_crash(ledger: Ledger) -> None:
    with pytest.raises(ZeroDivisionError), experiment("crash-after", quiet=True) as exp:
        overfit_run(TrainingGuard(detectors=[Overfitting(severity="stop")]))
        _ = 1 / 0
    rec = ledger.experiment_record(exp.id)
    assert rec.status == "crashed" and rec.outcome_source == "crash"
    assert {f.source for f in ledger.failures()} == {"training", "experiment"}


def test_a_ledger_that_cannot_write_does_not_break_training(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with experiment("broken-store", quiet=True) as exp:

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise StoreUnavailable("database is locked")

        monkeypatch.setattr(exp, "record_failure", refuse)
        guard = TrainingGuard(detectors=[Overfitting(severity="stop")])
        with caplog.at_level(logging.ERROR, logger="hindsight.training"):
            assert overfit_run(guard) > 0  # the stop still comes back
    assert guard.failure is None
    assert "could not record the failure: database is locked" in caplog.text


def test_experiment_record_failure_needs_a_running_experiment_and_a_reason(ledger: Ledger) -> None:
    with experiment("x", quiet=True) as exp, pytest.raises(LedgerError, match="needs a reason"):
        exp.record_failure("boom", source="training", reason=" ")
    with pytest.raises(LedgerError, match="not running"):
        exp.record_failure("boom", source="training", reason="late")


def test_current_experiment_nests_and_is_seen_from_worker_threads(ledger: Ledger) -> None:
    assert current_experiment() is None
    with experiment("outer", quiet=True) as outer:
        assert current_experiment() is outer
        seen: list[Any] = []
        t = threading.Thread(target=lambda: seen.append(current_experiment()))
        t.start()
        t.join()
        assert seen == [outer]
        with experiment("inner", quiet=True) as inner:
            assert current_experiment() is inner
            other: list[Any] = []
            t = threading.Thread(target=lambda: other.append(current_experiment()))
            t.start()
            t.join()
            assert other == [None]  # two running: a foreign thread cannot tell which
        assert current_experiment() is outer
    assert current_experiment() is None


# -- alerts ---------------------------------------------------------------------------


def test_stops_and_warnings_reach_the_channels() -> None:
    channel = MemoryChannel()
    guard = TrainingGuard(experiment=None, alerts=[channel], patience=None)
    rng = np.random.default_rng(0)
    for step in range(30):
        guard.update(step, loss=2.0 * np.exp(-step / 10) + 0.01 * rng.random(), lr=5.0)
    assert [a.severity for a in channel.alerts] == ["warning"]
    assert "lr_out_of_range" in channel.alerts[0].title
    assert guard.update(30, loss=float("nan")).stop
    stop = channel.alerts[-1]
    assert stop.severity == "critical" and stop.fields["symptom"] == "nonfinite_loss"
    assert stop.fields["category"] == "dl.nan_divergence"
    assert "Lower" in stop.text or "learning rate" in stop.text


def test_alert_on_stop_skips_warnings() -> None:
    channel = MemoryChannel()
    guard = TrainingGuard(experiment=None, alerts=[channel], alert_on="stop")
    for step in range(20):
        guard.update(step, loss=1.0 / (step + 1), lr=5.0)
    assert channel.alerts == []
    guard.update(20, loss=float("inf"))
    assert [a.severity for a in channel.alerts] == ["critical"]


def test_a_stop_in_an_experiment_alerts_slack_with_the_failure_id(
    ledger: Ledger, http_receiver: Any
) -> None:
    slack = SlackChannel(http_receiver.url)
    with experiment("alerting", quiet=True) as exp:
        guard = TrainingGuard(detectors=[Overfitting(severity="stop")], alerts=[slack])
        overfit_run(guard)
    assert guard.failure is not None
    assert [d.ok for d in guard.reporter.deliveries] == [True]
    body = http_receiver.requests[0].json()
    text = str(body)
    assert exp.id in text and guard.failure.failure.id in text and "overfitting" in text


def test_a_stop_is_emailed_through_the_settings_smtp_channel(
    monkeypatch: pytest.MonkeyPatch, smtp_server: Any
) -> None:
    url = f"smtp://{smtp_server.host}:{smtp_server.port}?from=guard@example.org&to=ml@example.org"
    monkeypatch.setenv("HINDSIGHT_ALERTS", url)
    guard = TrainingGuard(experiment=None, alert_on="stop")
    assert guard.update(0, loss=float("inf")).stop
    assert [d.ok for d in guard.reporter.deliveries] == [True]
    [mail] = smtp_server.received
    assert mail.rcpt_tos == ["ml@example.org"]
    assert "nonfinite_loss" in mail.message["Subject"]
    body = mail.message.get_body(preferencelist=("plain",))
    assert body is not None and "Lower the learning rate" in body.get_content()


def test_a_dead_channel_is_retried_and_never_breaks_training(closed_port: int) -> None:
    dead = WebhookChannel(
        f"http://127.0.0.1:{closed_port}/hook", retry=RetryPolicy(attempts=2, backoff_s=0.01)
    )
    live = MemoryChannel()
    guard = TrainingGuard(experiment=None, alerts=Dispatcher([dead, live]))
    verdict = guard.update(0, loss=float("nan"))
    assert verdict.stop
    failed, ok = guard.reporter.deliveries
    assert not failed.ok and failed.attempts == 2 and "refused" in failed.error.lower()
    assert ok.ok and live.alerts


def test_alert_channels_come_from_the_settings(
    monkeypatch: pytest.MonkeyPatch, http_receiver: Any
) -> None:
    monkeypatch.setenv("HINDSIGHT_ALERTS", f"log://training webhook+{http_receiver.url}")
    guard = TrainingGuard(experiment=None)
    assert guard.reporter.dispatcher is not None
    assert [type(c).__name__ for c in guard.reporter.dispatcher.channels] == [
        "LogChannel",
        "WebhookChannel",
    ]
    guard.update(0, loss=float("nan"))
    assert http_receiver.requests[0].json()["title"].startswith("Training guard stopped")


def test_no_alert_settings_means_no_dispatcher() -> None:
    assert TrainingGuard().reporter.dispatcher is None


def test_alert_settings_from_toml_and_bad_values(tmp_path: Path) -> None:
    (tmp_path / "hindsight.toml").write_text(
        '[hindsight]\nalerts = ["log://", "smtp://h:25?from=a@x.org&to=b@x.org,c@x.org"]\n'
    )
    assert Settings.load().alerts == ("log://", "smtp://h:25?from=a@x.org&to=b@x.org,c@x.org")
    (tmp_path / "hindsight.toml").write_text("[hindsight]\nalerts = 3\n")
    with pytest.raises(ConfigError, match="list of alert channel URLs"):
        Settings.load()
    (tmp_path / "hindsight.toml").write_text('[hindsight]\nalerts = ["ftp://nope"]\n')
    with pytest.raises(ConfigError, match="Unknown alert channel scheme"):
        TrainingGuard()


def test_bad_reporter_arguments_are_named() -> None:
    with pytest.raises(ConfigError, match="'experiment' parameter"):
        GuardReporter(experiment="latest")
    with pytest.raises(ConfigError, match="'alerts' parameter"):
        GuardReporter(alerts="slack")
    with pytest.raises(ConfigError, match="alert channels"):
        GuardReporter(alerts=["log://"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="'alert_on' parameter"):
        GuardReporter(alert_on="always")
    with pytest.raises(ConfigError, match="ResourceMonitor"):
        TrainingGuard(resources="psutil")  # type: ignore[arg-type]


# -- resources ------------------------------------------------------------------------


def test_the_resource_monitor_reads_real_memory_and_time() -> None:
    import psutil

    monitor = ResourceMonitor(every=3, gpu=None)
    sample = monitor.sample()
    rss = psutil.Process().memory_info().rss
    assert 0.5 * rss < sample.memory < 2.0 * rss
    assert sample.gpu_memory is None and "gpu=None" in monitor.gpu_status
    polled = [monitor.poll() is not None for _ in range(7)]
    assert polled == [True, False, False, True, False, False, True]


def test_without_nvml_the_gpu_reading_is_absent_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", None)  # as if nvidia-ml-py were not installed
    monitor = ResourceMonitor(every=1, gpu=0)
    assert monitor.sample().gpu_memory is None
    assert "nvidia-ml-py is not installed" in monitor.gpu_status


def test_a_guard_with_a_monitor_stops_a_run_over_its_time_budget() -> None:
    guard = TrainingGuard(
        detectors=[TimeBudget(1e-6)], experiment=None, resources=ResourceMonitor(every=1, gpu=None)
    )
    verdict = guard.update(0, loss=1.0)
    assert verdict.stop and verdict.symptoms[0].kind == "time_budget"
    assert verdict.symptoms[0].evidence["reason"] == "exceeded"
    assert guard.state.memory.size == 1 and guard.state.elapsed.size == 1


def test_explicit_resource_values_win_over_the_monitor() -> None:
    guard = TrainingGuard(experiment=None, resources=ResourceMonitor(every=1, gpu=None))
    guard.update(0, loss=1.0, memory=123.0, elapsed=4.0)
    assert guard.state.memory[-1] == 123.0 and guard.state.elapsed[-1] == 4.0


def test_gpu_memory_must_be_a_share() -> None:
    guard = TrainingGuard(experiment=None)
    with pytest.raises(DataQualityError, match="share of GPU memory"):
        guard.update(0, gpu_memory=8e9)
    # Nothing was stored by the bad call.
    assert guard.state.n_updates == 0


def test_the_gpu_is_read_through_nvml_where_a_driver_exists() -> None:
    """On a GPU machine the share is a reading; elsewhere NVML's own error is named."""
    pynvml = pytest.importorskip("pynvml")  # in make test's extras; optional for users
    try:
        pynvml.nvmlInit()
        have_driver = True
        pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        have_driver = False
    monitor = ResourceMonitor(every=1, gpu=0)
    sample = monitor.sample()
    if have_driver:
        assert sample.gpu_memory is not None and 0.0 <= sample.gpu_memory <= 1.0
        assert monitor.gpu_status == "reading GPU 0 through NVML"
        with pytest.raises(ConfigError, match="NVML sees"):
            ResourceMonitor(gpu=1024)
    else:
        assert sample.gpu_memory is None
        assert monitor.gpu_status.startswith("not read: NVML failed")
    monitor.close()
