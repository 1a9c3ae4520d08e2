"""Wrapping any command as an experiment: ``hindsight run -- python train.py``.

The command's output streams through unchanged while the tail of its stderr
(and stdout) is kept; a non-zero exit is diagnosed from that text. The child
gets ``HINDSIGHT_EXPERIMENT_ID`` and ``HINDSIGHT_METRICS_FILE``: a JSON object of
final metrics written there is logged and judged against the criteria.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hindsight.errors import LedgerError
from hindsight.ledger.core import Ledger
from hindsight.ledger.experiment import Experiment
from hindsight.ledger.explain import failure_text
from hindsight.ledger.records import ExperimentRecord, FailureReport

__all__ = ["RunResult", "run_command"]

_TAIL_LINES = 200


@dataclass(frozen=True)
class RunResult:
    """How a wrapped command ended, and what the ledger made of it."""

    exit_code: int
    record: ExperimentRecord
    failure: FailureReport | None


def run_command(
    ledger: Ledger,
    command: Sequence[str],
    *,
    name: str | None = None,
    hypothesis: str = "",
    approach: str = "",
    config: Mapping[str, Any] | None = None,
    criteria: Mapping[str, Any] | None = None,
    tags: Iterable[str] = (),
    project: str | None = None,
    builds_on: Iterable[str] = (),
    applies: Iterable[str] = (),
    stdout: IO[bytes] | None = None,
    stderr: IO[bytes] | None = None,
    quiet: bool = False,
) -> RunResult:
    """Run a command as a recorded experiment; returns its exit code and records."""
    if not command:
        raise LedgerError("Nothing to run. Put the command after --, e.g. hindsight run -- python train.py")
    out = stdout if stdout is not None else sys.stdout.buffer
    err = stderr if stderr is not None else sys.stderr.buffer
    exp = Experiment(
        ledger,
        name or Path(command[0]).name,
        hypothesis=hypothesis,
        approach=approach,
        config=config,
        criteria=criteria,
        tags=tags,
        project=project,
        builds_on=builds_on,
        applies=applies,
        quiet=True,  # the analysis goes to the ``stderr`` stream given, below
        command=subprocess.list2cmdline(list(command)),
    )
    with tempfile.TemporaryDirectory(prefix="hindsight-run-") as tmp:
        metrics_file = Path(tmp) / "metrics.json"
        env = dict(os.environ, HINDSIGHT_EXPERIMENT_ID=exp.id,
                   HINDSIGHT_METRICS_FILE=str(metrics_file))
        exp.start()
        try:
            proc = subprocess.Popen(
                list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
            )
        except OSError as exc:
            return _result(127, exp.end(exc), exp, err, quiet)
        err_tail: collections.deque[bytes] = collections.deque(maxlen=_TAIL_LINES)
        out_tail: collections.deque[bytes] = collections.deque(maxlen=_TAIL_LINES)
        pumps = [
            threading.Thread(target=_pump, args=(proc.stdout, out, out_tail), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, err, err_tail), daemon=True),
        ]
        for p in pumps:
            p.start()
        forwarded = _forward_signals(proc)
        try:
            code = proc.wait()
        finally:
            _restore_signals(forwarded)
            for p in pumps:
                p.join()
        try:
            _read_metrics(exp, metrics_file)
        except LedgerError as exc:  # report it, but still close the record
            err.write(f"hindsight: ignored the metrics file: {exc}\n".encode())
    # Death by signal N is -N from Popen and 128 + N from a shell; record what the shell says.
    exit_code = code if code >= 0 else 128 - code
    if code == 0:
        record = exp.end()
    elif code < 0 and -code in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        record = exp.end(killed_by=signal.Signals(-code).name)
    elif code in (130, 143):
        record = exp.end(killed_by="SIGINT" if code == 130 else "SIGTERM")
    else:
        # Log text without a traceback still classifies: keep stdout's tail as context.
        if err_tail and out_tail:
            text = _decode(out_tail) + "\n" + _decode(err_tail)
        else:
            text = _decode(err_tail) or _decode(out_tail)
        if code < 0:
            text += f"\nProcess terminated by signal {_signal_name(-code)} (exit code {exit_code})."
            if -code == signal.SIGKILL:
                text += "\nKilled"
        record = exp.end(log_text=text, exit_code=exit_code)
    return _result(exit_code, record, exp, err, quiet)


def _result(
    exit_code: int, record: ExperimentRecord, exp: Experiment, err: IO[bytes], quiet: bool
) -> RunResult:
    if exp.failure is not None and not quiet:
        err.write((failure_text(exp.failure) + "\n").encode())
        err.flush()
    return RunResult(exit_code, record, exp.failure)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:  # real-time signals have no name
        return str(signum)


def _pump(src: IO[bytes] | None, dst: IO[bytes], tail: collections.deque[bytes]) -> None:
    if src is None:
        return
    for line in iter(src.readline, b""):
        tail.append(line)
        dst.write(line)
        dst.flush()
    src.close()


def _decode(lines: Iterable[bytes]) -> str:
    return b"".join(lines).decode("utf-8", errors="replace")


def _forward_signals(proc: subprocess.Popen[bytes]) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    old: dict[int, Any] = {}

    def forward(signum: int, _frame: object) -> None:
        proc.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        old[sig] = signal.signal(sig, forward)
    return old


def _restore_signals(old: dict[int, Any]) -> None:
    for sig, handler in old.items():
        signal.signal(sig, handler)


def _read_metrics(exp: Experiment, path: Path) -> None:
    if not path.is_file():
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise LedgerError(
            f"The command wrote {path} but it is not JSON ({exc}). Write a JSON object of "
            "metric name -> number, e.g. {\"accuracy\": 0.91}."
        ) from exc
    if not isinstance(data, dict):
        raise LedgerError(f"{path} must hold a JSON object of metric name -> number.")
    exp.log_metrics({k: v for k, v in data.items() if isinstance(v, (int, float))})
