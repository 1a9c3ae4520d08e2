"""The MLflow bridge: mirror experiments to an MLflow server, import MLflow runs.

MLflow is an optional dependency, so this module is imported only when mirroring
or importing is asked for, and says how to install MLflow when it is missing.
Everything goes through ``MlflowClient``, never the fluent ``mlflow.start_run``
API, so a user's own active MLflow run is left alone.

Importing maps MLflow statuses onto the ledger's: FINISHED → finished, FAILED →
crashed (with a diagnosed failure), KILLED → killed. MLflow has no heartbeat, and
a process that dies hard leaves its run RUNNING forever. A RUNNING (or SCHEDULED)
run whose last sign of life (start or latest metric point) is older than
``stale_after_s`` is imported as crashed, reason "MLflow run never ended (stale
RUNNING)"; a younger one is left out (``ImportResult.still_running``) and picked up
by a later import once it ends. Writing it as running would hand it to the
ledger's heartbeat reaper, which would call it dead a few minutes later.
"""

from __future__ import annotations

import contextlib
import json
import math
import posixpath
import queue
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar
from urllib.parse import urlsplit

import numpy as np
from sqlalchemy import insert, select

from hindsight.diagnose import Evidence
from hindsight.errors import HindsightError, MlflowBridgeError
from hindsight.ledger.core import Ledger
from hindsight.ledger.failures import record_failure
from hindsight.ledger.ids import new_id
from hindsight.ledger.jsonsafe import jsonable
from hindsight.ledger.records import ExperimentRecord, FailureRecord, FailureReport, iso
from hindsight.store.schema import SCHEMA_VERSION, experiments

__all__ = ["ImportResult", "MlflowMirror", "import_runs"]

#: MLflow's limits; the parameter value limit is the one older servers enforce.
PARAM_VALUE_MAX = 500
TAG_VALUE_MAX = 5000
KEY_MAX = 250
PARAMS_PER_BATCH = 100
METRICS_PER_BATCH = 1000

#: How long an imported RUNNING run may stay silent before it counts as dead.
IMPORT_STALE_AFTER_S = 24 * 3600.0

_PROBE_TIMEOUT_S = 3.0
_DRAIN_IDLE_S = 30.0  # on_end waits for metric uploads as long as they keep moving
_IMPORT_BATCH = 50
_LOG_SUFFIXES = (".log", ".txt", ".err", ".out")
_LOG_HINTS = ("traceback", "error", "stderr", "exception", "crash", "log")
_LOG_MAX_BYTES = 20 << 20
_LOG_TAIL_BYTES = 256 << 10
_LOOKS_LIKE_LOG = re.compile(r"Traceback|Error|Exception|Killed|FATAL|CUDA|fail", re.IGNORECASE)
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")

_TO_MLFLOW = {"finished": "FINISHED", "crashed": "FAILED", "killed": "KILLED"}

T = TypeVar("T")


def _mlflow() -> SimpleNamespace:
    """MLflow's client and entity classes, or advice on installing MLflow."""
    try:
        from mlflow.entities import Metric, Param, RunTag, ViewType
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise MlflowBridgeError(
            f"MLflow is not installed ({exc}). Install it with pip install 'hindsight[mlflow]', "
            "or turn mirroring off (mlflow=False, unset HINDSIGHT_MLFLOW_TRACKING_URI)."
        ) from exc
    return SimpleNamespace(
        MlflowClient=MlflowClient, Metric=Metric, Param=Param, RunTag=RunTag, ViewType=ViewType
    )


# -- mirroring ---------------------------------------------------------------------


class MlflowMirror:
    """Mirrors one experiment to an MLflow run (a :class:`~hindsight.ledger.mirror.RunMirror`).

    Metric points are sent by a background thread, so a slow or unreachable
    MLflow never holds up the training loop or the ledger's heartbeat.
    """

    def __init__(self, tracking_uri: str | None) -> None:
        self._api = _mlflow()
        self.client = self._api.MlflowClient(tracking_uri=tracking_uri)
        self.tracking_uri = str(tracking_uri or self.client.tracking_uri)
        self.run_id: str | None = None
        self._queue: queue.Queue[Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None]
        self._queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._moved_at = 0.0
        self._dropped = 0
        self._errors: list[str] = []

    def on_start(self, record: ExperimentRecord) -> str | None:
        """Create the MLflow run with the experiment's tags and config; returns its id."""
        _probe(self.tracking_uri)
        with _calling(self.tracking_uri, f"start a run for experiment {record.id}"):
            exp_id = _experiment_id(self.client, record.project)
            run = self.client.create_run(
                exp_id,
                start_time=_ms(record.started_at),
                tags=_start_tags(record),
                run_name=record.name,
            )
            run_id = str(run.info.run_id)
            params = [self._api.Param(k, v) for k, v in _params(record.config).items()]
            try:
                for chunk in _chunked(params, PARAMS_PER_BATCH):
                    self.client.log_batch(run_id, params=chunk)
            except Exception:  # leave no half-made run RUNNING forever
                with contextlib.suppress(Exception), contextlib.redirect_stdout(sys.stderr):
                    self.client.set_terminated(run_id, status="FAILED")
                raise
        self.run_id = run_id
        return run_id

    def on_metrics(self, series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Queue a batch of metric points for the background sender."""
        if self.run_id is None or not series:
            return
        if self._worker is None:
            self._moved_at = time.monotonic()
            self._worker = threading.Thread(
                target=self._send_loop, name=f"hindsight-mlflow-{self.run_id}", daemon=True
            )
            self._worker.start()
        self._queue.put(series)

    def on_end(
        self, record: ExperimentRecord, failure: FailureReport | None, notes: Sequence[str]
    ) -> None:
        """Send what is queued, the outcome tags and failure artifacts; end the run."""
        if self.run_id is None:
            return
        self._drain()
        _probe(self.tracking_uri)
        run_id = self.run_id
        tags = _end_tags(record, failure, notes)
        with _calling(self.tracking_uri, f"end run {run_id} of experiment {record.id}"):
            rt = [self._api.RunTag(k, v) for k, v in tags.items()]
            for chunk in _chunked(rt, PARAMS_PER_BATCH):
                self.client.log_batch(run_id, tags=chunk)
            if failure is not None:
                self.client.log_text(
                    run_id, _traceback_text(failure.failure), "hindsight/traceback.txt"
                )
                self.client.log_dict(
                    run_id, jsonable(failure.to_dict(), "failure"), "hindsight/failure_analysis.json"
                )
            # MLflow prints a link to the run on stdout; keep stdout for our --json output.
            with contextlib.redirect_stdout(sys.stderr):
                self.client.set_terminated(
                    run_id,
                    status=_TO_MLFLOW.get(record.status, "FAILED"),
                    end_time=_ms(record.ended_at or time.time()),
                )
        if self._dropped or self._errors:
            raise MlflowBridgeError(
                f"Up to {self._dropped} metric point(s) of experiment {record.id} did not reach MLflow "
                f"at {_redact(self.tracking_uri)} ({'; '.join(self._errors[:3])}). "
                "The ledger has every point; check the MLflow server's logs."
            )

    # -- background sender -------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            series = self._queue.get()
            if series is None:
                return
            points = sum(len(v[0]) for v in series.values())
            try:
                if self._errors and not _reachable(self.tracking_uri):
                    raise MlflowBridgeError("server unreachable")
                self._send(series)
            except Exception as exc:  # kept for on_end: the sender must not die
                self._dropped += points
                if len(self._errors) < 10:
                    self._errors.append(str(exc).splitlines()[0][:300] if str(exc) else repr(exc))
            finally:
                self._moved_at = time.monotonic()

    def _send(self, series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        metric = self._api.Metric
        run_id = self.run_id

        def points() -> Iterator[Any]:
            for key, (steps, vals, times) in series.items():
                name = _key(key)
                stamps = np.round(np.asarray(times, dtype=np.float64) * 1000.0).astype(np.int64)
                for s, v, ts in zip(steps.tolist(), vals.tolist(), stamps.tolist(), strict=True):
                    yield metric(name, v, ts, s)

        for chunk in _chunked(points(), METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=chunk)
            self._moved_at = time.monotonic()

    def _drain(self) -> None:
        worker = self._worker
        if worker is None:
            return
        self._queue.put(None)
        while worker.is_alive():
            worker.join(timeout=0.2)
            if time.monotonic() - self._moved_at > _DRAIN_IDLE_S:
                left = sum(
                    sum(len(v[0]) for v in item.values())
                    for item in list(self._queue.queue)
                    if item is not None
                )
                self._dropped += left
                self._errors.append(f"gave up after {_DRAIN_IDLE_S:.0f} s without progress")
                return


def _experiment_id(client: Any, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return str(client.create_experiment(name))
        except Exception:  # another process created it first
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if getattr(exp, "lifecycle_stage", "active") == "deleted":
        raise MlflowBridgeError(
            f"The MLflow experiment {name!r} is deleted. Restore it "
            f"(mlflow experiments restore --experiment-id {exp.experiment_id}) or use another "
            "hindsight project."
        )
    return str(exp.experiment_id)


def _start_tags(record: ExperimentRecord) -> dict[str, str]:
    note = f"**Hypothesis:** {record.hypothesis or '—'}\n\n**Approach:** {record.approach or '—'}"
    tags = {
        "hindsight.experiment_id": record.id,
        "hindsight.project": record.project,
        "hindsight.hypothesis": record.hypothesis,
        "hindsight.approach": record.approach,
        "hindsight.tags": json.dumps(record.tags),
        "hindsight.criteria": json.dumps(record.criteria, default=str),
        "mlflow.note.content": note,
    }
    if record.git_commit:
        tags["mlflow.source.git.commit"] = record.git_commit
    return {k: _clip(v, TAG_VALUE_MAX) for k, v in tags.items()}


def _end_tags(
    record: ExperimentRecord, failure: FailureReport | None, notes: Sequence[str]
) -> dict[str, str]:
    tags = {
        "hindsight.status": record.status,
        "hindsight.outcome": record.outcome or "none",
        "hindsight.outcome_reason": record.outcome_reason or "",
    }
    if failure is not None:
        tags["hindsight.failure_category"] = failure.failure.category
        tags["hindsight.fingerprint"] = failure.failure.fingerprint
        tags["hindsight.failure_id"] = failure.failure.id
    if notes:
        tags["hindsight.next_steps"] = "\n".join(f"- {n}" for n in notes)
    return {k: _clip(v, TAG_VALUE_MAX) for k, v in tags.items() if v != ""}


def _traceback_text(failure: FailureRecord) -> str:
    """A failure's evidence as text a person (and ``diagnose``) can read back."""
    if failure.frames:
        lines = ["Traceback (most recent call last):"]
        for f in failure.frames:
            lines.append(f'  File "{f.get("filename")}", line {f.get("lineno")}, in {f.get("function")}')
            if f.get("line"):
                lines.append(f"    {f['line']}")
        lines.append(f"{failure.exc_type}: {failure.message}" if failure.exc_type else failure.message)
        text = "\n".join(lines)
        return f"{failure.log_tail}\n{text}" if failure.log_tail and not failure.exc_type else text
    if failure.log_tail:
        return failure.log_tail
    return f"{failure.exc_type}: {failure.message}" if failure.exc_type else failure.message


def _params(config: Mapping[str, Any]) -> dict[str, str]:
    """The config as MLflow params: dotted keys, string values, within MLflow's limits."""
    out: dict[str, str] = {}
    for key, value in _flatten(config).items():
        if isinstance(value, (list, tuple, dict)):
            text = json.dumps(value, default=str)
        else:
            text = str(value)
        out.setdefault(_key(key), _clip(text, PARAM_VALUE_MAX))
    return out


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _key(name: str) -> str:
    """A metric or param name MLflow accepts (it refuses odd characters and path tricks)."""
    key = _BAD_KEY_CHARS.sub("_", str(name))[:KEY_MAX] or "_"
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith(("..", "/")):
        key = re.sub(r"[/.]", "_", key)
    return key


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ms(ts: float) -> int:
    return round(ts * 1000.0)


def _chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


# -- reaching MLflow ---------------------------------------------------------------


def _redact(uri: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", uri)


def _reachable(uri: str) -> bool:
    try:
        _probe(uri)
    except MlflowBridgeError:
        return False
    return True


def _probe(uri: str) -> None:
    """Fail fast if an HTTP tracking server does not answer; MLflow's client would retry for minutes."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "localhost", port), _PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise MlflowBridgeError(
            f"MLflow at {_redact(uri)} is unreachable ({exc}). Check that the tracking server is "
            "running and that the URI (HINDSIGHT_MLFLOW_TRACKING_URI or --tracking-uri) is right."
        ) from exc


@contextlib.contextmanager
def _calling(uri: str, what: str) -> Iterator[None]:
    """Turn whatever the MLflow client raises into one MlflowBridgeError that names the server."""
    try:
        yield
    except HindsightError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else repr(exc)
        raise MlflowBridgeError(
            f"MLflow at {_redact(uri)} could not {what}: {first}. Check the server is up, "
            "its version and its logs, and that you may write to it."
        ) from exc


# -- importing ---------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    """What an import did: new experiment ids, runs skipped and failed runs diagnosed."""

    imported: list[str] = field(default_factory=list)
    skipped: int = 0
    failed: int = 0
    still_running: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "imported": list(self.imported),
            "skipped": self.skipped,
            "failed": self.failed,
            "still_running": self.still_running,
        }


@dataclass
class _Pending:
    row: dict[str, Any]
    run: Any
    chunks: list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray]]


def import_runs(
    ledger: Ledger,
    tracking_uri: str,
    experiment_names: Sequence[str] | None = None,
    *,
    project: str | None = None,
    stale_after_s: float = IMPORT_STALE_AFTER_S,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Bring the runs of MLflow experiments (all of them by default) into the ledger.

    Runs imported before (same MLflow run id) are skipped; every FAILED run is
    diagnosed from its logged traceback or log artifact. ``progress(done, total)``
    is called as runs are processed.
    """
    api = _mlflow()
    uri = str(tracking_uri)
    _probe(uri)
    client = api.MlflowClient(tracking_uri=uri)
    with _calling(uri, "list experiments and runs"):
        exps = _experiments(client, api, uri, experiment_names)
        names = {str(e.experiment_id): str(e.name) for e in exps}
        runs = _runs(client, api, list(names))
    known = _imported(ledger, [str(r.info.run_id) for r in runs])
    total, done = len(runs), 0
    imported: list[str] = []
    skipped = failed = still_running = 0
    if progress is not None:
        progress(0, total)
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="hindsight-mlflow-") as tmp:
        for batch in _chunked(runs, _IMPORT_BATCH):
            pending: list[_Pending] = []
            for run in batch:
                run_id = str(run.info.run_id)
                old = known.get(run_id)
                if old is not None:
                    skipped += 1
                    if _needs_diagnosis(old):  # an earlier import stopped before diagnosing it
                        _diagnose(ledger, client, uri, run, old, Path(tmp))
                        failed += 1
                else:
                    with _calling(uri, f"read run {run_id}"):
                        item = _build(client, uri, run, names, project, now, stale_after_s)
                    if item is None:
                        still_running += 1
                    else:
                        pending.append(item)
            _write(ledger, pending)
            for item in pending:
                imported.append(item.row["id"])
                if item.row["status"] == "crashed":
                    _diagnose(ledger, client, uri, item.run, item.row, Path(tmp))
                    failed += 1
            done += len(batch)
            if progress is not None:
                progress(done, total)
    return ImportResult(imported, skipped, failed, still_running)


def _experiments(
    client: Any, api: SimpleNamespace, uri: str, names: Sequence[str] | None
) -> list[Any]:
    if names:
        found, missing = [], []
        for name in dict.fromkeys(names):
            exp = client.get_experiment_by_name(name)
            if exp is None:
                missing.append(name)
            else:
                found.append(exp)
        if missing:
            there = sorted(str(e.name) for e in _all_experiments(client, api))[:20]
            raise MlflowBridgeError(
                f"No MLflow experiment named {', '.join(map(repr, missing))} at {_redact(uri)}. "
                f"Experiments there: {', '.join(there) or 'none'}."
            )
        return found
    return _all_experiments(client, api)


def _all_experiments(client: Any, api: SimpleNamespace) -> list[Any]:
    out: list[Any] = []
    token = None
    while True:
        page = client.search_experiments(
            view_type=api.ViewType.ACTIVE_ONLY, max_results=1000, page_token=token
        )
        out.extend(page)
        token = page.token
        if not token:
            return out


def _runs(client: Any, api: SimpleNamespace, experiment_ids: list[str]) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(experiment_ids), 100):  # the server takes a bounded id list
        ids, token = experiment_ids[i : i + 100], None
        while True:
            page = client.search_runs(
                ids,
                run_view_type=api.ViewType.ACTIVE_ONLY,
                max_results=1000,
                order_by=["attributes.start_time ASC"],
                page_token=token,
            )
            out.extend(page)
            token = page.token
            if not token:
                break
    return out


def _imported(ledger: Ledger, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Experiments already holding one of these MLflow run ids, by run id."""
    e = experiments
    cols = (e.c.id, e.c.project, e.c.status, e.c.failure_id, e.c.config, e.c.environment,
            e.c.ended_at, e.c.mlflow_run_id)
    out: dict[str, dict[str, Any]] = {}
    with ledger.store.read() as conn:
        for i in range(0, len(run_ids), 500):
            q = select(*cols).where(e.c.mlflow_run_id.in_(list(run_ids[i : i + 500])))
            for row in conn.execute(q).mappings():
                out[str(row["mlflow_run_id"])] = dict(row)
    return out


def _needs_diagnosis(row: Mapping[str, Any]) -> bool:
    env = row.get("environment") or {}
    return row["status"] == "crashed" and not row.get("failure_id") and "mlflow_import" in env


def _build(
    client: Any,
    uri: str,
    run: Any,
    names: Mapping[str, str],
    project: str | None,
    now: float,
    stale_after_s: float,
) -> _Pending | None:
    info, data = run.info, run.data
    run_id = str(info.run_id)
    tags: dict[str, str] = dict(data.tags)
    chunks = []
    last_seen = float(info.start_time or 0) / 1000.0
    for key in sorted(data.metrics):
        hist = client.get_metric_history(run_id, key)
        n = len(hist)
        if not n:
            continue
        steps = np.fromiter((m.step for m in hist), dtype=np.int64, count=n)
        vals = np.fromiter((m.value for m in hist), dtype=np.float64, count=n)
        times = np.fromiter((m.timestamp for m in hist), dtype=np.float64, count=n) / 1000.0
        chunks.append((key, steps, vals, times))
        last_seen = max(last_seen, float(times.max()))
    started = float(info.start_time or 0) / 1000.0 or last_seen or now
    ended = float(info.end_time) / 1000.0 if info.end_time else None
    mstatus = str(info.status)
    stale = False
    if mstatus == "FINISHED":
        status = "finished"
    elif mstatus == "FAILED":
        status = "crashed"
    elif mstatus == "KILLED":
        status = "killed"
    elif now - last_seen < stale_after_s:
        return None
    else:
        status, ended, stale = "crashed", last_seen, True
    outcome, source, reason = _outcome(status, tags, stale)
    exp_id = new_id("experiment")
    summary = {k: (float(v) if math.isfinite(v) else str(v)) for k, v in data.metrics.items()}
    user_tags = {k: v for k, v in tags.items() if not k.startswith(("mlflow.", "hindsight."))}
    row = {
        "id": exp_id,
        "project": (project or names.get(str(info.experiment_id)) or "default")[:200],
        "name": str(info.run_name or tags.get("mlflow.runName") or run_id)[:300],
        "hypothesis": tags.get("hindsight.hypothesis", tags.get("mlflow.note.content", "")),
        "approach": tags.get("hindsight.approach", ""),
        "tags": _json_list(tags.get("hindsight.tags")),
        "config": jsonable({k: _parse_param(v) for k, v in data.params.items()}),
        "criteria": _json_dict(tags.get("hindsight.criteria")),
        "status": status,
        "outcome": outcome,
        "outcome_source": source,
        "outcome_reason": reason,
        "verdicts": [],
        "summary": summary,
        "started_at": started,
        "ended_at": ended,
        "heartbeat_at": ended or started,
        "duration_s": max(0.0, ended - started) if ended is not None else None,
        "git_commit": (tags.get("mlflow.source.git.commit") or None),
        "git_dirty": None,
        "environment": {
            "mlflow_import": {
                "tracking_uri": _redact(uri),
                "experiment_id": str(info.experiment_id),
                "experiment_name": names.get(str(info.experiment_id)),
                "run_id": run_id,
                "status": mstatus,
                "user": tags.get("mlflow.user"),
                "tags": user_tags,
                "imported_at": now,
            }
        },
        "host": None,
        "pid": None,
        "command": tags.get("mlflow.source.name"),
        "mlflow_run_id": run_id,
        "failure_id": None,
        "schema_version": SCHEMA_VERSION,
    }
    if row["git_commit"]:
        row["git_commit"] = str(row["git_commit"])[:64]
    metric_chunks = [(exp_id, k, s, v, t) for k, s, v, t in chunks]
    return _Pending(row, run, metric_chunks)


def _outcome(status: str, tags: Mapping[str, str], stale: bool) -> tuple[str | None, str | None, str]:
    if status == "crashed":
        why = "MLflow run never ended (stale RUNNING)" if stale else "MLflow run FAILED"
        return "failure", "crash", why
    if status == "killed":
        return None, None, "killed (MLflow status KILLED)"
    outcome = tags.get("hindsight.outcome")
    if outcome in ("success", "failure", "partial"):
        return outcome, "import", tags.get("hindsight.outcome_reason") or "outcome tag in MLflow"
    return None, None, "no criteria"


def _write(ledger: Ledger, pending: Sequence[_Pending]) -> None:
    """One transaction for a batch's experiments, one for their metric series."""
    if not pending:
        return
    store = ledger.store
    with store.write() as conn:
        conn.execute(insert(experiments), [p.row for p in pending])
    try:
        store.append_metrics([c for p in pending for c in p.chunks])
    except BaseException:
        for p in pending:  # no experiment without its metrics: the next import retries them
            store.delete_experiment(p.row["id"])
        raise


def _diagnose(
    ledger: Ledger,
    client: Any,
    uri: str,
    run: Any,
    row: Mapping[str, Any],
    tmp: Path,
) -> None:
    run_id = str(run.info.run_id)
    stale = str(run.info.status) not in ("FINISHED", "FAILED", "KILLED")
    with _calling(uri, f"read the artifacts of run {run_id}"):
        text = _log_text(client, run_id, tmp)
    if text is None:
        text = _stale_text(run, row.get("ended_at")) if stale else _status_text(run)
    evidence = Evidence.from_text(text)
    headline = f"{evidence.exc_type}: {evidence.message}" if evidence.exc_type else evidence.message
    reason = (
        "MLflow run never ended (stale RUNNING)"
        if stale
        else (f"MLflow run FAILED: {headline}" if headline else "MLflow run FAILED")
    )
    record_failure(
        ledger,
        evidence,
        source="import",
        experiment_id=row["id"],
        project=row["project"],
        config=row.get("config") or {},
        extra={"mlflow_run_id": run_id, "tracking_uri": _redact(uri)},
        similar=0,
        experiment_update={
            "outcome": "failure",
            "outcome_source": "crash",
            "outcome_reason": reason[:2000],
        },
    )


def _log_text(client: Any, run_id: str, tmp: Path) -> str | None:
    """The failure's text from the run's artifacts: our traceback, else a log that reads like one."""
    files: list[tuple[str, int]] = []
    dirs, seen = [None], 0
    while dirs and seen < 200:
        path = dirs.pop(0)
        for f in client.list_artifacts(run_id, path):
            seen += 1
            if f.is_dir:
                if str(f.path).count("/") < 2:
                    dirs.append(f.path)
            elif str(f.path).lower().endswith(_LOG_SUFFIXES):
                files.append((str(f.path), int(f.file_size or 0)))
    if not files:
        return None

    def rank(item: tuple[str, int]) -> tuple[int, int]:
        path = item[0].lower()
        if path == "hindsight/traceback.txt":
            return (0, 0)
        hint = next((i for i, h in enumerate(_LOG_HINTS) if h in posixpath.basename(path)), 99)
        return (1 + hint, item[1])

    for path, size in sorted(files, key=rank)[:3]:
        if size > _LOG_MAX_BYTES:
            continue
        local = Path(client.download_artifacts(run_id, path, str(tmp)))
        with local.open("rb") as fh:
            fh.seek(max(0, local.stat().st_size - _LOG_TAIL_BYTES))
            text = fh.read().decode("utf-8", errors="replace")
        if path == "hindsight/traceback.txt" or _LOOKS_LIKE_LOG.search(text):
            return text
    return None


def _stale_text(run: Any, last_seen: float | None) -> str:
    info = run.info
    return (
        f"MLflow run {info.run_name or info.run_id} ({info.run_id}) is still {info.status} in "
        f"MLflow but shows no sign of life since {iso(last_seen) or 'it started'} UTC: the process "
        "most likely died without telling MLflow (killed, out of memory, or its machine was lost)."
    )


def _status_text(run: Any) -> str:
    info, tags = run.info, dict(run.data.tags)
    lines = [
        f"MLflow run {info.run_name or info.run_id} ({info.run_id}) ended with status {info.status}."
    ]
    for k, v in sorted(tags.items()):
        if any(w in k.lower() for w in ("error", "exception", "failure", "traceback")):
            lines.append(f"{k}: {v}")
    lines.append("No traceback or log artifact was logged with the run.")
    return "\n".join(lines)


def _parse_param(text: str) -> Any:
    """An MLflow param value back as the number, boolean, list or dict it was, else the string."""
    s = text.strip()
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    if re.fullmatch(r"[+-]?\d+", s):
        return int(s)
    if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?", s):
        return float(s)
    if s[:1] in "[{" and s:
        try:
            return json.loads(s)
        except ValueError:
            return text
    return text


def _json_list(text: str | None) -> list[str]:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _json_dict(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
