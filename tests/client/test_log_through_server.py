"""Experiments logged through the team server (HINDSIGHT_SERVER_URL), on SQLite and PostgreSQL.

A real uvicorn serves the app on loopback; the client spools to SQLite under its own
home and sends in batches, so these tests cover the whole path: spool, sender, HTTP,
auth, the ingest endpoint and the server's store.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from hindsight.cli.main import app as cli_app
from hindsight.client.protocol import encode_series
from hindsight.config import Settings
from hindsight.errors import HindsightWarning, LedgerError
from hindsight.ledger import Ledger, add_lesson, experiment
from hindsight.ledger.remote import ServerWriter
from hindsight.web import auth, create_app
from live_server import free_port, live_server
from web_helpers import PASSWORD


class Server:
    def __init__(self, ledger: Ledger, url: str) -> None:
        self.ledger, self.url = ledger, url
        self.editor = auth.create_token(ledger.store, "ed", "ci")
        self.viewer = auth.create_token(ledger.store, "vi", "ci")


def _users(ledger: Ledger) -> None:
    auth.create_user(ledger.store, "ed", role="editor", password=PASSWORD)
    auth.create_user(ledger.store, "vi", role="viewer", password=PASSWORD)


@pytest.fixture
def server(any_ledger: Ledger) -> Iterator[Server]:
    _users(any_ledger)
    with live_server(create_app(any_ledger)) as url:
        yield Server(any_ledger, url)


@contextmanager
def _warned() -> Iterator[list[str]]:
    """The messages of the HindsightWarnings raised inside (by any thread)."""
    seen: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", HindsightWarning)
        yield seen
    seen.extend(str(w.message) for w in caught if issubclass(w.category, HindsightWarning))


def _client(url: str, token: str | None, home: Path, **settings: Any) -> Ledger:
    # The client's own store URL points nowhere usable: a run through the server must
    # not need it.
    return Ledger(
        Settings.load(
            home=home,
            store=f"sqlite:///{home}/must-not-exist/x.db",
            server_url=url,
            server_token=token,
            **settings,
        )
    )


def test_a_run_arrives_whole_with_metrics_notes_lessons_and_links(
    server: Server, tmp_path: Path
) -> None:
    base = server.ledger
    with experiment("base", ledger=base, quiet=True) as parent:
        parent.log_metric("acc", 0.4)
    lesson = add_lesson(base, "Warm up the learning rate.", sources=[parent.id])
    art = tmp_path / "model.bin"
    art.write_bytes(b"weights" * 100)

    client = _client(server.url, server.editor, tmp_path / "client")
    assert isinstance(client.writer, ServerWriter)
    with experiment(
        "remote",
        hypothesis="warm-up helps",
        config={"lr": 0.1, "warmup": 500},
        criteria={"acc": ">= 0.5"},
        tags=["remote"],
        builds_on=[parent.id[:12]],  # a prefix, resolved by the server
        applies=[lesson.id],
        ledger=client,
        quiet=True,
    ) as exp:
        exp.log_series("loss", np.linspace(2.0, 0.5, 1000))
        for step in range(50):
            exp.log_metric("acc", 0.3 + step * 0.01, step=step)
        exp.log_metric("nan-metric", float("nan"))
        exp.next_step("Try warm-up 1000.")
        new_lesson = exp.lesson("Warm-up helps small batches.", tags=["lr"])
        exp.artifact(art)
    assert not (tmp_path / "client" / "must-not-exist").exists()
    assert exp.record.status == "finished" and exp.record.outcome == "success"

    got = base.experiment_record(exp.id)
    assert (got.status, got.outcome, got.outcome_source) == ("finished", "success", "criteria")
    assert got.hypothesis == "warm-up helps" and got.config == {"lr": 0.1, "warmup": 500}
    assert got.summary["acc"] == pytest.approx(0.79) and got.verdicts[0]["verdict"] == "met"
    series = base.store.metric_series(exp.id)
    assert np.allclose(series["loss"][1], np.linspace(2.0, 0.5, 1000))
    assert series["acc"][0].tolist() == list(range(50))
    assert np.isnan(series["nan-metric"][1][0])
    assert [n["text"] for n in base.store.notes(exp.id)] == ["Try warm-up 1000."]
    assert base.store.parents(exp.id) == [parent.id]
    assert exp.id in base.lessons_by_id([lesson.id])[0].applied_by
    (stored_lesson,) = base.lessons_for([exp.id])
    assert stored_lesson.id == new_lesson.id and stored_lesson.tags == ["lr"]
    (artifact,) = base.store.artifacts(exp.id)
    assert artifact["size"] == 700 and len(artifact["sha256"]) == 64
    assert client.writer.client.spool.pending() == 0  # type: ignore[attr-defined]


def test_a_crash_is_diagnosed_and_matched_against_the_teams_failures(
    server: Server, tmp_path: Path
) -> None:
    base = server.ledger
    with pytest.raises(RuntimeError), experiment("earlier", ledger=base, quiet=True):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0)")
    (earlier,) = base.failures()
    add_lesson(base, "Halve the batch size on 16 GB cards.", sources=[earlier.id])

    client = _client(server.url, server.editor, tmp_path / "client")
    run = experiment("remote-crash", config={"batch_size": 512}, ledger=client, quiet=True)
    with pytest.raises(RuntimeError), run:
        run.log_metric("loss", 1.0)
        raise RuntimeError("CUDA out of memory. Tried to allocate 4.00 GiB (GPU 0)")
    assert run.failure is not None
    assert run.failure.failure.category == "dl.gpu_oom"
    (match,) = run.failure.similar
    assert match.failure.id == earlier.id and match.exact
    assert [les.text for les in match.lessons] == ["Halve the batch size on 16 GB cards."]

    got = base.experiment_record(run.id)
    assert (got.status, got.outcome, got.failure_id) == ("crashed", "failure", run.failure.failure.id)
    stored = base.failure_record(run.failure.failure.id)
    assert stored.diagnosis["category"] == "dl.gpu_oom"
    assert stored.evidence["config"] == {"batch_size": 512}
    assert stored.evidence["last_metrics"] == {"loss": 1.0}


def test_a_server_outage_loses_nothing_and_does_not_stop_the_run(
    any_ledger: Ledger, tmp_path: Path
) -> None:
    _users(any_ledger)
    token = auth.create_token(any_ledger.store, "ed", "ci")
    port = free_port()
    url = f"http://127.0.0.1:{port}"  # nothing listens here yet
    client = _client(url, token, tmp_path / "client", server_timeout_s=0.5)
    run = experiment("offline", criteria={"acc": ">= 0.5"}, ledger=client, quiet=True)
    with _warned() as seen, run as exp:
        for step in range(200):
            exp.log_metric("acc", step / 200, step=step)
        exp.flush()
        exp.next_step("works without the server")
    assert exp.record.status == "finished"  # the run ended normally, server or not
    messages = " ".join(seen)
    assert "did not all reach the team server" in messages and "spool.db" in messages
    spool = client.writer.client.spool  # type: ignore[attr-defined]
    waiting = spool.summary()["by_op"]
    assert waiting["experiment.start"] == 1 and waiting["experiment.metrics"] >= 1

    # The server comes up; the records that waited arrive once each, in order.
    with live_server(create_app(any_ledger), port=port):
        assert client.writer.flush(30)
    got = any_ledger.experiment_record(exp.id)
    assert (got.status, got.outcome) == ("finished", "success")
    assert any_ledger.store.metric_series(exp.id)["acc"][0].tolist() == list(range(200))
    assert [n["text"] for n in any_ledger.store.notes(exp.id)] == ["works without the server"]
    assert spool.pending() == 0


def test_records_left_by_a_process_are_sent_by_hindsight_sync(
    any_ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _users(any_ledger)
    token = auth.create_token(any_ledger.store, "ed", "ci")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    home = tmp_path / "client"
    client = _client(url, token, home, server_timeout_s=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HindsightWarning)
        with experiment("left-behind", ledger=client, quiet=True) as exp:
            exp.log_metric("loss", 0.5)
        client.writer.client.close(0)  # type: ignore[attr-defined]  # the process ends
    monkeypatch.setenv("HINDSIGHT_HOME", str(home))
    monkeypatch.setenv("HINDSIGHT_SERVER_URL", url)
    monkeypatch.setenv("HINDSIGHT_SERVER_TOKEN", token)
    runner = CliRunner()
    down = runner.invoke(cli_app, ["sync", "--timeout", "1", "--json"])
    assert down.exit_code == 3, down.output
    assert json.loads(down.stdout)["waiting"] >= 3
    with live_server(create_app(any_ledger), port=port):
        up = runner.invoke(cli_app, ["sync", "--timeout", "30", "--json"])
    assert up.exit_code == 0, up.output
    out = json.loads(up.stdout)
    assert out["waiting"] == 0 and out["rejected"] == 0 and out["sent"] >= 3
    assert any_ledger.experiment_record(exp.id).status == "finished"


def test_a_batch_sent_twice_is_applied_once(server: Server) -> None:
    with experiment("twice", ledger=server.ledger, quiet=True) as exp:
        pass
    ops = [
        {
            "op_id": "retry-0001",
            "op": "experiment.metrics",
            "experiment_id": exp.id,
            "series": [encode_series("acc", np.arange(3), np.array([0.1, 0.2, 0.3]), np.zeros(3))],
            "summary": {"acc": 0.3},
        },
        {"op_id": "retry-0002", "op": "experiment.note", "experiment_id": exp.id,
         "text": "once", "at": 1.0},
    ]
    headers = {"Authorization": f"Bearer {server.editor}"}
    first = httpx.post(f"{server.url}/api/v1/ingest", json={"ops": ops}, headers=headers)
    second = httpx.post(f"{server.url}/api/v1/ingest", json={"ops": ops}, headers=headers)
    assert first.json()["applied"] == 2
    assert second.status_code == 200 and second.json()["duplicates"] == 2
    assert len(server.ledger.store.metric_series(exp.id)["acc"][0]) == 3
    assert len(server.ledger.store.notes(exp.id)) == 1


def test_a_bad_record_is_refused_alone_and_kept_aside(server: Server, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {server.editor}"}
    ops = [
        {"op_id": "bad-00001", "op": "experiment.note", "experiment_id": "exp_nowhere",
         "text": "for no one", "at": 1.0},
        {"op_id": "bad-00002", "op": "lesson.add", "id": "les_fromclient1", "project": "p",
         "text": "Still recorded.", "created_at": 1.0, "schema_version": 1},
    ]
    r = httpx.post(f"{server.url}/api/v1/ingest", json={"ops": ops}, headers=headers)
    body = r.json()
    assert [x["status"] for x in body["results"]] == ["rejected", "applied"]
    assert "exp_nowhere" in body["results"][0]["error"]
    assert server.ledger.lessons_by_id(["les_fromclient1"])[0].text == "Still recorded."

    # Malformed records are a 422 that names the field.
    bad = httpx.post(
        f"{server.url}/api/v1/ingest",
        json={"ops": [{"op_id": "bad-00003", "op": "experiment.metrics",
                       "experiment_id": "exp_x", "series": [{"key": "a", "steps": "!!",
                                                             "values": "", "times": ""}]}]},
        headers=headers,
    )
    assert bad.status_code == 422 and '"steps"' in bad.text
    uneven = encode_series("a", np.arange(3), np.zeros(2), np.zeros(3))
    r = httpx.post(
        f"{server.url}/api/v1/ingest",
        json={"ops": [{"op_id": "bad-00004", "op": "experiment.metrics",
                       "experiment_id": "exp_x", "series": [uneven]}]},
        headers=headers,
    )
    (result,) = r.json()["results"]
    assert result["status"] == "rejected"

    # Through the client, a refused record moves aside with the reason and a warning.
    client = _client(server.url, server.editor, tmp_path / "client")
    writer = client.writer
    with _warned() as seen:
        writer.note("exp_neverstarted00000", "orphan", 1.0)
        assert writer.flush(10)
    assert any("refused a record (experiment.note)" in m for m in seen), seen
    spool = writer.client.spool  # type: ignore[attr-defined]
    (refused,) = spool.rejected()
    assert refused["op"] == "experiment.note" and "exp_neverstarted00000" in refused["error"]


def test_logging_needs_an_editors_token(server: Server, tmp_path: Path) -> None:
    note = {"ops": [{"op_id": "auth-0001", "op": "experiment.heartbeat",
                     "experiment_id": "exp_a", "at": 1.0}]}
    assert httpx.post(f"{server.url}/api/v1/ingest", json=note).status_code == 401
    viewer = {"Authorization": f"Bearer {server.viewer}"}
    assert httpx.post(f"{server.url}/api/v1/ingest", json=note, headers=viewer).status_code == 403
    # A client with a viewer's token keeps its records and says what to fix.
    client = _client(server.url, server.viewer, tmp_path / "client", server_timeout_s=0.5)
    with _warned() as seen:
        with experiment("not-allowed", ledger=client, quiet=True):
            pass
        client.writer.flush(5)  # the sender has tried by now
    assert any("editor's token" in m for m in seen), seen
    assert client.writer.client.spool.summary()["by_op"]["experiment.start"] == 1  # type: ignore[attr-defined]
    assert server.ledger.experiments() == []


def test_a_short_id_that_cannot_be_looked_up_offline_is_refused_up_front(tmp_path: Path) -> None:
    client = _client(f"http://127.0.0.1:{free_port()}", "hs_x", tmp_path / "c",
                     server_timeout_s=0)
    with pytest.raises(LedgerError, match="full id"):
        experiment("x", builds_on=["exp_12"], ledger=client, quiet=True).start()
    assert client.writer.client.spool.pending() == 0  # type: ignore[attr-defined]


def test_two_senders_on_one_spool_take_turns(server: Server, tmp_path: Path) -> None:
    from hindsight.client import ServerClient

    spool = tmp_path / "shared" / "spool.db"
    a = ServerClient(server.url, server.editor, spool)
    b = ServerClient(server.url, server.editor, spool)
    with experiment("shared", ledger=server.ledger, quiet=True) as exp:
        pass

    def note(c: ServerClient, who: str) -> None:
        for i in range(40):
            c.submit({"op": "experiment.note", "experiment_id": exp.id,
                      "text": f"{who}{i}", "at": time.time()})

    threads = [threading.Thread(target=note, args=(c, w)) for c, w in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert a.flush(30) and b.flush(30)
    texts = [n["text"] for n in server.ledger.store.notes(exp.id)]
    assert sorted(texts) == sorted([f"a{i}" for i in range(40)] + [f"b{i}" for i in range(40)])
    assert a.sent + b.sent == 80  # each record went once, by whichever sender held the turn
    # Each client's own records arrived in the order it recorded them.
    assert [t for t in texts if t[0] == "a"] == [f"a{i}" for i in range(40)]
    a.close(1)
    b.close(1)


def test_the_reaper_waits_for_clients_after_the_server_starts(any_ledger: Ledger) -> None:
    with experiment("quiet", ledger=any_ledger, quiet=True) as exp:
        any_ledger.store.update("experiment", exp.id, host="elsewhere", pid=1,
                                heartbeat_at=time.time() - 1000)
        create_app(any_ledger)  # a server starts listening for clients now
        stale_after = any_ledger.settings.stale_after_s
        assert any_ledger.reap_stale() == []
        assert any_ledger.reap_stale(now=time.time() + stale_after + 1) == [exp.id]


def test_the_training_guard_records_a_doomed_run_through_the_server(
    server: Server, tmp_path: Path
) -> None:
    from hindsight.training import TrainingGuard

    client = _client(server.url, server.editor, tmp_path / "client")
    with experiment("diverges", config={"lr": 3.0}, ledger=client, quiet=True) as exp:
        guard = TrainingGuard(on_failure="stop")
        stopped_at = None
        for step in range(200):
            loss = 1.0 * 1.3**step  # the loss explodes
            exp.log_metric("loss", loss, step=step)
            if guard.update(step, loss=loss).stop:
                stopped_at = step
                break
    assert stopped_at is not None and stopped_at < 50
    got = server.ledger.experiment_record(exp.id)
    assert (got.status, got.outcome, got.outcome_source) == ("finished", "failure", "training")
    failure = server.ledger.failure_record(got.failure_id or "")
    assert failure.source == "training" and failure.evidence["config"] == {"lr": 3.0}
    assert len(server.ledger.store.metric_series(exp.id)["loss"][0]) == stopped_at + 1


def test_a_forked_child_logs_with_its_own_sender(server: Server, tmp_path: Path) -> None:
    import os

    client = _client(server.url, server.editor, tmp_path / "client")
    with experiment("forks", ledger=client, quiet=True) as exp:
        writer = client.writer
        writer.note(exp.id, "from the parent", time.time())
        pid = os.fork()
        if pid == 0:  # the child: log, deliver, leave without running the parent's atexit
            try:
                writer.note(exp.id, "from the child", time.time())
                os._exit(0 if writer.flush(20) else 1)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    texts = sorted(n["text"] for n in server.ledger.store.notes(exp.id))
    assert texts == ["from the child", "from the parent"]


def test_nan_in_a_body_is_refused_or_kept_as_text_never_a_500(server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.editor}", "Content-Type": "application/json"}
    r = httpx.post(f"{server.url}/api/v1/lessons", content='{"text": NaN, "sources": []}',
                   headers=headers)
    assert r.status_code == 422 and r.json()["detail"][0]["input"] == "nan"
    start = ('{"ops": [{"op_id": "nan-00001", "op": "experiment.start", "row": {"id": '
             '"exp_nan00001", "project": "p", "name": "n", "config": {"lr": NaN}, '
             '"started_at": 1.0, "schema_version": 1}}]}')
    r = httpx.post(f"{server.url}/api/v1/ingest", content=start, headers=headers)
    assert r.json()["applied"] == 1
    assert server.ledger.store.get("experiment", "exp_nan00001")["config"] == {"lr": "nan"}


def test_a_short_id_matching_several_records_is_a_conflict(server: Server) -> None:
    for _ in range(2):
        with experiment("twin", ledger=server.ledger, quiet=True):
            pass
    headers = {"Authorization": f"Bearer {server.viewer}"}
    r = httpx.get(f"{server.url}/api/v1/ids/exp_", headers=headers)
    assert r.status_code == 409 and "matches several records" in r.json()["detail"]
    (one, _) = [e.id for e in server.ledger.experiments()]
    r = httpx.get(f"{server.url}/api/v1/ids/{one}", headers=headers)
    assert r.json() == {"kind": "experiment", "id": one}
