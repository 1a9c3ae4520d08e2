"""``hindsight run -- cmd``: any command as a recorded experiment."""

from __future__ import annotations

import io
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hindsight.errors import LedgerError
from hindsight.ledger import Ledger, RunResult, run_command


def _run(ledger: Ledger, code: str, **kwargs: object) -> tuple[RunResult, bytes, bytes]:
    out, err = io.BytesIO(), io.BytesIO()
    result = run_command(
        ledger, [sys.executable, "-c", textwrap.dedent(code)], stdout=out, stderr=err,
        quiet=True, **kwargs,  # type: ignore[arg-type]
    )
    return result, out.getvalue(), err.getvalue()


def test_output_streams_through_unchanged(any_ledger: Ledger) -> None:
    result, out, err = _run(
        any_ledger,
        """
        import sys
        sys.stdout.buffer.write(b"epoch 1 loss 0.5\\n\\xe2\\x9c\\x93 ok \\xff raw\\n")
        sys.stdout.buffer.flush()
        sys.stderr.buffer.write(b"warning: slow\\n")
        sys.stdout.buffer.write(b"no newline at the end")
        """,
        name="stream",
    )
    assert out == b"epoch 1 loss 0.5\n\xe2\x9c\x93 ok \xff raw\nno newline at the end"
    assert err == b"warning: slow\n"
    assert result.exit_code == 0
    assert result.failure is None
    rec = any_ledger.experiment_record(result.record.id)
    assert (rec.name, rec.status, rec.outcome) == ("stream", "finished", None)
    assert rec.command is not None and rec.command.startswith(sys.executable)


def test_exit_code_is_returned(ledger: Ledger) -> None:
    result, out, err = _run(ledger, "import sys; sys.exit(3)")
    assert result.exit_code == 3
    assert result.record.status == "crashed"
    assert result.record.outcome == "failure"
    assert result.record.outcome_reason == "exit code 3"
    assert result.failure is not None
    assert result.failure.failure.exit_code == 3
    assert result.failure.failure.source == "run"
    assert (out, err) == (b"", b"")


def test_failing_script_is_diagnosed_from_its_log(any_ledger: Ledger, tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import json

            def load_config():
                with open("configs/missing.json") as fh:
                    return json.load(fh)

            print("starting")
            load_config()
            """
        )
    )
    out, err = io.BytesIO(), io.BytesIO()
    result = run_command(
        any_ledger, [sys.executable, str(script)], config={"lr": 0.1}, stdout=out, stderr=err,
        quiet=True,
    )
    assert result.exit_code == 1
    assert b"FileNotFoundError: [Errno 2] No such file or directory" in err.getvalue()
    assert out.getvalue() == b"starting\n"
    rec = any_ledger.experiment_record(result.record.id)
    assert (rec.status, rec.outcome) == ("crashed", "failure")
    assert rec.name == Path(sys.executable).name  # named after the program by default
    f = any_ledger.failure_record(rec.failure_id or "")
    assert f.category == "env.path"
    assert f.exc_type == "FileNotFoundError"
    assert "configs/missing.json" in f.message
    assert f.exit_code == 1
    assert f.log_tail is not None and "configs/missing.json" in f.log_tail
    assert "starting" in f.log_tail  # stdout's tail is kept as context
    assert [(fr["function"], fr["in_user_code"]) for fr in f.frames] == [
        ("<module>", True), ("load_config", True)
    ]
    assert f.evidence["config"] == {"lr": 0.1}


def test_metrics_file_is_judged_against_criteria(any_ledger: Ledger) -> None:
    result, _, err = _run(
        any_ledger,
        """
        import json, os
        with open(os.environ["HINDSIGHT_METRICS_FILE"], "w") as fh:
            json.dump({"acc": 0.93, "loss": 0.2, "note": "not a number", "epochs": 3}, fh)
        """,
        criteria={"acc": ">= 0.9", "loss": "<= 0.1"},
    )
    assert result.exit_code == 0
    assert err == b""
    rec = any_ledger.experiment_record(result.record.id)
    assert rec.status == "finished"
    assert rec.outcome == "partial"
    assert rec.summary == {"acc": 0.93, "loss": 0.2, "epochs": 3.0}
    assert [(v["metric"], v["value"], v["verdict"]) for v in rec.verdicts] == [
        ("acc", 0.93, "met"), ("loss", 0.2, "missed")
    ]


def test_child_sees_the_experiment_id(ledger: Ledger) -> None:
    result, out, _ = _run(
        ledger, "import os; print(os.environ['HINDSIGHT_EXPERIMENT_ID'], end='')"
    )
    assert out.decode() == result.record.id
    assert ledger.experiment_record(result.record.id).status == "finished"


def test_child_killed_by_sigkill(any_ledger: Ledger) -> None:
    result, out, _ = _run(
        any_ledger,
        """
        import os, sys
        print("allocating 64 GB", flush=True)
        print("step 10", file=sys.stderr, flush=True)
        os.kill(os.getpid(), 9)
        """,
    )
    assert result.exit_code == 137
    assert out == b"allocating 64 GB\n"
    rec = any_ledger.experiment_record(result.record.id)
    assert (rec.status, rec.outcome) == ("crashed", "failure")
    assert rec.outcome_reason == "exit code 137"
    f = any_ledger.failure_record(rec.failure_id or "")
    assert f.exit_code == 137
    assert f.category == "dl.cpu_oom"
    assert f.log_tail is not None
    assert "step 10" in f.log_tail and "allocating 64 GB" in f.log_tail
    assert "SIGKILL" in f.log_tail


def test_other_signals_record_the_shell_exit_code(ledger: Ledger) -> None:
    result, _, _ = _run(ledger, "import os, signal; os.kill(os.getpid(), signal.SIGUSR1)")
    assert result.exit_code == 128 + signal.SIGUSR1
    assert result.failure is not None
    assert result.failure.failure.exit_code == 128 + signal.SIGUSR1
    assert "SIGUSR1" in (result.failure.failure.log_tail or "")


def test_child_terminated_is_killed(ledger: Ledger) -> None:
    result, _, _ = _run(ledger, "import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    assert result.exit_code == 143
    assert result.record.status == "killed"
    assert result.record.outcome_reason == "killed by SIGTERM"
    assert result.failure is None


def test_command_not_found(any_ledger: Ledger) -> None:
    out, err = io.BytesIO(), io.BytesIO()
    result = run_command(
        any_ledger, ["hindsight-no-such-command-xyz", "--epochs", "3"], stdout=out, stderr=err,
        quiet=True,
    )
    assert result.exit_code == 127
    rec = any_ledger.experiment_record(result.record.id)
    assert (rec.name, rec.status, rec.outcome) == (
        "hindsight-no-such-command-xyz", "crashed", "failure"
    )
    assert rec.command == "hindsight-no-such-command-xyz --epochs 3"
    assert result.failure is not None
    f = any_ledger.failure_record(rec.failure_id or "")
    assert f.id == result.failure.failure.id
    assert f.exc_type == "FileNotFoundError"
    assert "hindsight-no-such-command-xyz" in f.message


@pytest.mark.parametrize(
    ("content", "why"),
    [("{not json", "is not JSON"), ("[0.9, 0.1]", "must hold a JSON object")],
)
def test_bad_metrics_file_is_reported_and_the_record_closed(
    ledger: Ledger, content: str, why: str
) -> None:
    result, _, err = _run(
        ledger,
        f"""
        import os
        with open(os.environ["HINDSIGHT_METRICS_FILE"], "w") as fh:
            fh.write({content!r})
        """,
        criteria={"acc": ">= 0.9"},
    )
    assert result.exit_code == 0
    assert err.startswith(b"hindsight: ignored the metrics file: ")
    assert why.encode() in err
    rec = ledger.experiment_record(result.record.id)
    assert rec.status == "finished"
    assert rec.outcome == "failure"  # nothing to judge: the criterion is missing
    assert rec.verdicts[0]["verdict"] == "missing"


def test_empty_command_is_refused(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="Nothing to run"):
        run_command(ledger, [])
    assert ledger.experiments() == []


def test_console_script_end_to_end(sqlite_url: str, tmp_path: Path) -> None:
    exe = shutil.which("hindsight", path=str(Path(sys.executable).parent)) or shutil.which(
        "hindsight"
    )
    assert exe is not None, "the hindsight console script is not installed"
    done = subprocess.run(
        [exe, "--store", sqlite_url, "run", "--name", "x", "-c", "acc>=0.9", "--",
         sys.executable, "-c", "import sys; print('hello'); sys.exit(3)"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout == "hello\n"
    led = Ledger.at(sqlite_url, home=str(tmp_path))
    try:
        (rec,) = led.experiments()
        assert (rec.name, rec.status, rec.outcome) == ("x", "crashed", "failure")
        assert rec.criteria == {"acc": ">= 0.9"}
        assert rec.failure_id is not None
        assert rec.id in done.stderr
    finally:
        led.close()


def test_failure_analysis_goes_to_the_given_stderr(ledger: Ledger, capfd: pytest.CaptureFixture[str]) -> None:
    out, err = io.BytesIO(), io.BytesIO()
    result = run_command(
        ledger, [sys.executable, "-c", "open('/nonexistent/config.yaml')"],
        stdout=out, stderr=err, name="analysis",
    )
    assert result.exit_code == 1
    text = err.getvalue().decode()
    assert "FileNotFoundError" in text  # the child's own traceback
    assert result.failure is not None
    assert f"hindsight: recorded failure {result.failure.failure.id}" in text
    assert "env.path" in text
    assert "recorded failure" not in capfd.readouterr().err
