"""Recording an experiment: ``with hindsight.experiment(...) as exp:``.

The block's record is written when it starts, metrics are buffered and written
in batches, a heartbeat proves the process is alive, and however the block ends
(finished, exception, SIGTERM, Ctrl-C) the ledger says so. A process killed
without a word is reaped later from its stale heartbeat (see ``Ledger.reap_stale``).
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import numpy as np

from hindsight.diagnose import Evidence
from hindsight.errors import HindsightError, HindsightWarning, LedgerError
from hindsight.ledger.core import Ledger, get_ledger
from hindsight.ledger.criteria import judge, outcome_of, parse_criteria
from hindsight.ledger.environment import capture_environment, git_state, hostname
from hindsight.ledger.explain import failure_text
from hindsight.ledger.failures import record_failure
from hindsight.ledger.ids import new_id
from hindsight.ledger.jsonsafe import jsonable
from hindsight.ledger.lessons import add_lesson, lesson_row
from hindsight.ledger.mirror import RunMirror
from hindsight.ledger.mlflow_bridge.mirror import MlflowMirror
from hindsight.ledger.records import ExperimentRecord, FailureReport, Lesson
from hindsight.store.schema import SCHEMA_VERSION

__all__ = ["Experiment", "HindsightWarning", "Terminated", "current_experiment", "experiment"]

_FLUSH_EVERY = 50_000

# The experiment running in this context (thread or task), for code deep inside a
# training loop (the training guard) to find without being handed it.
_CURRENT: contextvars.ContextVar[Experiment | None] = contextvars.ContextVar(
    "hindsight_current_experiment", default=None
)
_RUNNING: list[Experiment] = []
_RUNNING_LOCK = threading.Lock()


def current_experiment() -> Experiment | None:
    """The experiment running around the caller, or ``None``.

    The innermost experiment started in this thread (or asyncio task) wins. A thread
    that started none (a framework's worker thread) sees the process's running
    experiment when there is exactly one; with several it sees none, as it cannot tell
    which is its own.

    >>> current_experiment() is None
    True
    """
    here = _CURRENT.get()
    if here is not None and here._active:
        return here
    with _RUNNING_LOCK:
        running = [e for e in _RUNNING if e._active]
    return running[0] if len(running) == 1 else None


class Terminated(SystemExit):
    """Raised in the main thread when SIGTERM arrives inside an experiment block."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def experiment(
    name: str,
    *,
    hypothesis: str = "",
    approach: str = "",
    config: Mapping[str, Any] | None = None,
    criteria: Mapping[str, Any] | None = None,
    tags: Iterable[str] = (),
    project: str | None = None,
    builds_on: Iterable[str] = (),
    applies: Iterable[str] = (),
    mlflow: bool | None = None,
    quiet: bool = False,
    ledger: Ledger | None = None,
) -> Experiment:
    """Start recording an experiment; use it as a context manager."""
    return Experiment(
        ledger or get_ledger(),
        name,
        hypothesis=hypothesis,
        approach=approach,
        config=config,
        criteria=criteria,
        tags=tags,
        project=project,
        builds_on=builds_on,
        applies=applies,
        mlflow=mlflow,
        quiet=quiet,
    )


class Experiment:
    """A running experiment: log metrics, lessons and next steps; judged at the end.

    ``ambient=False`` records an experiment that runs in the background of a process (a
    canary a server watches): it is not :func:`current_experiment` for other code and
    does not take over SIGTERM.
    """

    def __init__(
        self,
        ledger: Ledger,
        name: str,
        *,
        hypothesis: str = "",
        approach: str = "",
        config: Mapping[str, Any] | None = None,
        criteria: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        project: str | None = None,
        builds_on: Iterable[str] = (),
        applies: Iterable[str] = (),
        mlflow: bool | None = None,
        quiet: bool = False,
        command: str | None = None,
        ambient: bool = True,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise LedgerError("An experiment needs a non-empty name, e.g. experiment('mf-baseline').")
        self.ledger = ledger
        # The store, or the team server when HINDSIGHT_SERVER_URL is set.
        self._writer = ledger.writer
        self._row: dict[str, Any] = {}  # the record as written, for a remote run
        self.name = name.strip()
        self.hypothesis = hypothesis
        self.approach = approach
        self.config: dict[str, Any] = jsonable(dict(config or {}))
        self._criteria = parse_criteria(criteria)
        self.criteria = dict(criteria or {})
        self.tags = [str(t) for t in tags]
        self.project = project or ledger.settings.project
        self.id = new_id("experiment")
        self.failure: FailureReport | None = None
        self.quiet = quiet
        self.command = command if command is not None else " ".join(sys.argv)
        self._builds_on = list(builds_on)
        self._applies = list(applies)
        self._want_mlflow = mlflow
        self._mirrors: list[RunMirror] = []
        self._outcome: tuple[str, str] | None = None
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._buf: dict[str, tuple[list[int], list[float], list[float]]] = {}
        self._steps: dict[str, int] = {}
        self._last: dict[str, float] = {}
        self._pending = 0
        self._started = 0.0
        self._active = False
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._old_sigterm: Any = None
        self._notes: list[str] = []
        self._failed: tuple[str, str] | None = None  # (source, reason) of a recorded failure
        self._outer: Experiment | None = None
        # An ambient experiment is the "current" one for code around it (training guards,
        # track()) and ends on SIGTERM; a background one (a canary watched by a server)
        # is neither: it must not capture unrelated work in the same process.
        self._ambient = bool(ambient)

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Experiment:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.end(exc)

    def start(self) -> Experiment:
        """Write the running record and start the heartbeat."""
        if self._active:
            raise LedgerError(f"Experiment {self.id} is already running.")
        # Unknown ids must fail before the running record exists, or it is left behind.
        parents = [self._writer.resolve(p, "experiment") for p in self._builds_on]
        lessons = [self._writer.resolve(x, "lesson") for x in self._applies]
        self._started = time.time()
        commit, dirty = git_state(os.getcwd())
        row = {
            "id": self.id,
            "project": self.project,
            "name": self.name,
            "hypothesis": self.hypothesis,
            "approach": self.approach,
            "tags": self.tags,
            "config": self.config,
            "criteria": self.criteria,
            "status": "running",
            "summary": {},
            "verdicts": [],
            "started_at": self._started,
            "heartbeat_at": self._started,
            "git_commit": commit,
            "git_dirty": dirty,
            "environment": capture_environment(),
            "host": hostname(),
            "pid": os.getpid(),
            "command": self.command,
            "schema_version": SCHEMA_VERSION,
        }
        self._writer.start(row)
        self._row = {**row, "failure_id": None, "mlflow_run_id": None, "outcome": None,
                     "outcome_source": None, "outcome_reason": None, "ended_at": None,
                     "duration_s": None}
        self._active = True
        if self._ambient:
            self._outer = _CURRENT.get()
            _CURRENT.set(self)
            with _RUNNING_LOCK:
                _RUNNING.append(self)
        for parent in parents:
            self.builds_on(parent)
        for lesson_id in lessons:
            self.applies(lesson_id)
        self._start_mirrors()
        if self._ambient:
            self._install_sigterm()
        self._beat = threading.Thread(
            target=self._heartbeat_loop, name=f"hindsight-heartbeat-{self.id}", daemon=True
        )
        self._beat.start()
        return self

    def end(
        self,
        exc: BaseException | None = None,
        *,
        log_text: str | None = None,
        exit_code: int | None = None,
        killed_by: str | None = None,
    ) -> ExperimentRecord:
        """Flush, judge and close the record.

        ``exc`` is the exception that ended the block; ``log_text`` and
        ``exit_code`` describe a wrapped process that failed; ``killed_by`` names
        the signal that stopped it.
        """
        if not self._active:
            raise LedgerError(f"Experiment {self.id} is not running.")
        self._active = False
        if _CURRENT.get() is self:
            _CURRENT.set(self._outer)
        with _RUNNING_LOCK:
            if self in _RUNNING:
                _RUNNING.remove(self)
        self._stop.set()
        self._restore_sigterm()
        if self._beat is not None:
            self._beat.join(timeout=5)
        self.flush()
        ended = time.time()
        values: dict[str, Any] = {"ended_at": ended, "duration_s": ended - self._started}
        verdicts = judge(self._criteria, self._last)
        # A NaN metric (a diverged loss) is not JSON: PostgreSQL would refuse the record.
        values["verdicts"] = jsonable([v.to_dict() for v in verdicts], "verdicts")
        if isinstance(exc, SystemExit) and not isinstance(exc, Terminated) and exc.code in (None, 0):
            exc = None  # sys.exit(0) ends a script normally
        if isinstance(exc, (KeyboardInterrupt, Terminated)):
            killed_by = "SIGTERM" if isinstance(exc, Terminated) else "KeyboardInterrupt (Ctrl-C)"
        if killed_by is not None:
            values.update(status="killed", outcome=None, outcome_reason=f"killed by {killed_by}")
            if self._outcome is not None:
                values.update(outcome=self._outcome[0], outcome_source="manual",
                              outcome_reason=self._outcome[1])
            self._update(values)
        elif exc is None and log_text is None and not exit_code:
            values["status"] = "finished"
            values.update(self._judged(verdicts))
            self._update(values)
        else:
            evidence: BaseException | str = exc if exc is not None else (log_text or "")
            reason = (
                f"{type(exc).__name__}: {exc}" if exc is not None else f"exit code {exit_code}"
            )
            values.update(
                status="crashed",
                outcome="failure",
                outcome_source="crash",
                outcome_reason=reason[:2000],
            )
            self.failure = record_failure(
                self.ledger,
                evidence,
                source="experiment" if exc is not None else "run",
                experiment_id=self.id,
                project=self.project,
                config=self.config,
                exit_code=exit_code,
                extra={
                    "last_metrics": jsonable(dict(self._last), "last_metrics"),
                    "duration_s": values["duration_s"],
                    "environment": capture_environment(),
                    "git": dict(zip(("commit", "dirty"), git_state(os.getcwd()), strict=True)),
                },
                experiment_update=values,
                writer=self._writer,
            )
            self._row.update(values, failure_id=self.failure.failure.id)
            if not self.quiet:
                print(failure_text(self.failure), file=sys.stderr)
        if self._writer.remote and not self._writer.flush():
            warnings.warn(
                f"Experiment {self.id}'s records did not all reach the team server in "
                f"{self.ledger.settings.server_timeout_s:g} s; they stay in "
                f"{self.ledger.settings.spool_path} and are sent later (`hindsight sync`).",
                HindsightWarning,
                stacklevel=2,
            )
        record = self.record
        for mirror in self._mirrors:
            self._safely(mirror.on_end, record, self.failure, list(self._notes))
        return record

    @property
    def record(self) -> ExperimentRecord:
        """The experiment as stored now (as sent, when it logs through the team server)."""
        if self._writer.remote:
            if not self._row:
                raise LedgerError(f"Experiment {self.id} has not started.")
            return ExperimentRecord.from_row(self._row)
        return ExperimentRecord.from_row(self.ledger.store.get("experiment", self.id))

    def _update(self, values: dict[str, Any]) -> None:
        self._writer.update(self.id, values)
        self._row.update(values)

    def _judged(self, verdicts: list[Any]) -> dict[str, Any]:
        if self._outcome is not None:
            manual, reason = self._outcome
            return {"outcome": manual, "outcome_source": "manual", "outcome_reason": reason}
        if self._failed is not None:
            source, reason = self._failed
            return {"outcome": "failure", "outcome_source": source, "outcome_reason": reason}
        outcome = outcome_of(verdicts)
        if outcome is None:
            return {"outcome": None, "outcome_source": None, "outcome_reason": "no criteria"}
        missed = [
            f"{v.criterion} (got {'nothing' if v.value is None else f'{v.value:g}'})"
            for v in verdicts
            if not v.met
        ]
        reason = "all criteria met" if not missed else "missed: " + "; ".join(missed)
        return {"outcome": outcome, "outcome_source": "criteria", "outcome_reason": reason}

    # -- metrics ---------------------------------------------------------------------

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Record one point of a metric's step series (buffered, written in batches)."""
        _check_key(key)
        try:
            v = float(value)
            given = None if step is None else int(step)
        except (TypeError, ValueError) as exc:
            raise LedgerError(
                f"Metric {key!r} must be a number at an integer step. "
                f"Got {value!r} ({type(value).__name__}) at step {step!r}."
            ) from exc
        now = time.time()
        with self._lock:
            buf = self._buf.setdefault(key, ([], [], []))
            s = self._steps.get(key, 0) if given is None else given
            buf[0].append(s)
            buf[1].append(v)
            buf[2].append(now)
            self._steps[key] = s + 1
            self._last[key] = v
            self._pending += 1
            full = self._pending >= _FLUSH_EVERY
        if full:
            self.flush()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record several metrics at one step."""
        if not isinstance(metrics, Mapping):
            raise LedgerError(f"log_metrics takes a dict of name -> number. Got {type(metrics).__name__}.")
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def log_series(self, key: str, values: Any, steps: Any = None) -> None:
        """Record a whole step series at once from arrays (vectorised)."""
        _check_key(key)
        try:
            vals = np.asarray(values, dtype=np.float64).ravel()
            st = np.arange(len(vals)) if steps is None else np.asarray(steps, dtype=np.int64).ravel()
        except (TypeError, ValueError) as exc:
            raise LedgerError(
                f"log_series({key!r}) needs arrays of numbers (values) and integers (steps): {exc}."
            ) from exc
        if st.shape != vals.shape:
            raise LedgerError(
                f"log_series({key!r}): {len(st)} steps for {len(vals)} values; pass one step per value."
            )
        if len(vals) == 0:
            return
        now = time.time()
        with self._lock:
            buf = self._buf.setdefault(key, ([], [], []))
            buf[0].extend(st.tolist())
            buf[1].extend(vals.tolist())
            buf[2].extend([now] * len(vals))
            self._steps[key] = int(st[-1]) + 1
            self._last[key] = float(vals[-1])
            self._pending += len(vals)

    @property
    def metrics(self) -> dict[str, float]:
        """The last value of every metric logged so far."""
        with self._lock:
            return dict(self._last)

    def flush(self) -> None:
        """Write buffered metric points now (one transaction)."""
        with self._flush_lock:
            with self._lock:
                buf, self._buf, self._pending = self._buf, {}, 0
                last = dict(self._last)
            if not buf:
                return
            series = {
                k: (
                    np.asarray(s, dtype=np.int64),
                    np.asarray(v, dtype=np.float64),
                    np.asarray(t, dtype=np.float64),
                )
                for k, (s, v, t) in buf.items()
            }
            summary = jsonable(last, "summary")
            try:
                self._writer.metrics(self.id, series, summary)
                self._row["summary"] = summary
            except HindsightError:
                with self._lock:  # keep the points for the next try
                    for k, (s, v, t) in buf.items():
                        cur = self._buf.setdefault(k, ([], [], []))
                        self._buf[k] = (s + cur[0], v + cur[1], t + cur[2])
                        self._pending += len(s)
                raise
        for mirror in self._mirrors:
            self._safely(mirror.on_metrics, series)

    # -- notes, lessons, links -------------------------------------------------------

    def lesson(self, text: str, tags: Iterable[str] = ()) -> Lesson:
        """Record a lesson learned from this experiment."""
        if not self._writer.remote:
            return add_lesson(
                self.ledger, text, tags=tags, sources=[self.id], project=self.project
            )
        row = lesson_row(text, tags=tags, project=self.project)
        self._writer.lesson(row, [self.id])
        return Lesson.from_row(
            row, [{"lesson_id": row["id"], "target_id": self.id, "relation": "source"}]
        )

    def next_step(self, text: str) -> None:
        """Record what to try next and why."""
        if not text or not text.strip():
            raise LedgerError("next_step needs some text: what to try next and why.")
        self._writer.note(self.id, text.strip(), time.time())
        self._notes.append(text.strip())

    def applies(self, lesson_id: str) -> None:
        """Say that this experiment applies an earlier lesson."""
        full = self._writer.resolve(lesson_id, "lesson")
        self._writer.apply_lesson(full, self.id, time.time())

    def builds_on(self, experiment_id: str) -> None:
        """Say that this experiment continues an earlier one (same line of work)."""
        full = self._writer.resolve(experiment_id, "experiment")
        if full == self.id:
            raise LedgerError("An experiment cannot build on itself.")
        self._writer.parent(self.id, full)

    def artifact(self, path: str | os.PathLike[str], name: str | None = None) -> None:
        """Record a file the experiment produced (path, size and SHA-256)."""
        p = Path(path)
        if not p.is_file():
            raise LedgerError(f"Artifact {p} is not a file. Write it first, then record it.")
        digest = hashlib.sha256()
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        self._writer.artifact(
            {
                "experiment_id": self.id,
                "name": name or p.name,
                "path": str(p.resolve()),
                "size": p.stat().st_size,
                "sha256": digest.hexdigest(),
                "created_at": time.time(),
            }
        )

    def record_failure(
        self,
        evidence: BaseException | Evidence | str,
        *,
        source: str,
        reason: str,
        extra: Mapping[str, Any] | None = None,
    ) -> FailureReport:
        """Record a failure of this running experiment that did not end its process.

        For a run stopped on purpose (the training guard saw a doomed run): the failure,
        diagnosed and fingerprinted, and the experiment's outcome (``failure``, with
        ``reason``) are written in one transaction now, so they survive whatever happens
        next. The experiment keeps running; when it ends normally its status is
        ``finished`` and its outcome stays ``failure``, unless :meth:`set_outcome`
        overrides it. Returns the failure with similar past failures.
        """
        if not self._active:
            raise LedgerError(
                f"Experiment {self.id} is not running; record a failure while it runs, "
                "or use hindsight.ledger.record_failure for a finished one."
            )
        if not reason or not reason.strip():
            raise LedgerError("record_failure needs a reason, e.g. 'training guard: overfitting'.")
        self.flush()  # the metric curve up to the failure is part of its evidence
        reason = reason.strip()[:2000]
        report = record_failure(
            self.ledger,
            evidence,
            source=source,
            experiment_id=self.id,
            project=self.project,
            config=self.config,
            extra={
                "last_metrics": jsonable(dict(self._last), "last_metrics"),
                "duration_s": time.time() - self._started,
                **dict(extra or {}),
            },
            experiment_update={
                "outcome": "failure",
                "outcome_source": source,
                "outcome_reason": reason,
            },
            writer=self._writer,
        )
        self._row.update(
            outcome="failure", outcome_source=source, outcome_reason=reason,
            failure_id=report.failure.id,
        )
        self.failure = report
        self._failed = (source, reason)
        return report

    def set_outcome(self, outcome: str, reason: str) -> None:
        """Override the outcome judged from the criteria, with a reason."""
        if outcome not in ("success", "failure", "partial"):
            raise LedgerError(
                f"outcome must be 'success', 'failure' or 'partial'. Got {outcome!r}."
            )
        if not reason or not reason.strip():
            raise LedgerError("set_outcome needs a reason, so the ledger says why it overrode the criteria.")
        self._outcome = (outcome, reason.strip())

    # -- background ------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        interval = self.ledger.settings.heartbeat_s
        while not self._stop.wait(interval):
            try:
                self.flush()
                self._writer.heartbeat(self.id, time.time())
            except HindsightError as exc:
                warnings.warn(
                    f"hindsight could not write experiment {self.id}'s heartbeat: {exc}. "
                    "Will retry; metrics stay buffered.",
                    HindsightWarning,
                    stacklevel=1,
                )

    def _install_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def _on_sigterm(signum: int, frame: FrameType | None) -> None:
            raise Terminated(signum)

        self._old_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)

    def _restore_sigterm(self) -> None:
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None

    def _start_mirrors(self) -> None:
        uri = self.ledger.settings.mlflow_tracking_uri
        if self._want_mlflow is False or (self._want_mlflow is None and not uri):
            return
        try:
            mirror = MlflowMirror(uri)
            run_id = mirror.on_start(self.record)
        except Exception as exc:  # a tracker outage must not stop the experiment
            warnings.warn(
                f"Could not mirror experiment {self.id} to MLflow: {exc}", HindsightWarning,
                stacklevel=3,
            )
            return
        self._mirrors.append(mirror)
        if run_id:
            self._update({"mlflow_run_id": run_id})

    def _safely(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # a tracker outage must not stop the experiment
            warnings.warn(
                f"Mirroring experiment {self.id} failed: {exc}", HindsightWarning, stacklevel=3
            )


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not key or len(key) > 250:
        raise LedgerError(
            f"Metric names must be non-empty strings of at most 250 characters. Got {key!r}."
        )
