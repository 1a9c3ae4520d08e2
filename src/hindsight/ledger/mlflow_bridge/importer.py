"""Importing MLflow runs into the ledger, diagnosing the failed ones."""

from __future__ import annotations

import json
import math
import posixpath
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from sqlalchemy import insert, select

from hindsight.diagnose import Evidence
from hindsight.errors import MlflowBridgeError
from hindsight.ledger.core import Ledger
from hindsight.ledger.failures import record_failure
from hindsight.ledger.ids import new_id
from hindsight.ledger.jsonsafe import jsonable
from hindsight.ledger.mlflow_bridge.common import (
    _IMPORT_BATCH,
    _LOG_HINTS,
    _LOG_MAX_BYTES,
    _LOG_SUFFIXES,
    _LOG_TAIL_BYTES,
    _LOOKS_LIKE_LOG,
    IMPORT_STALE_AFTER_S,
    _calling,
    _chunked,
    _mlflow,
    _probe,
    _redact,
)
from hindsight.ledger.records import iso
from hindsight.store.schema import SCHEMA_VERSION, experiments

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

