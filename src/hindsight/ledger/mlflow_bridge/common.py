"""Shared pieces of the MLflow bridge: the lazy MLflow import, limits, tags, URIs."""

from __future__ import annotations

import contextlib
import json
import posixpath
import re
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from types import SimpleNamespace
from typing import Any, TypeVar
from urllib.parse import urlsplit

from hindsight.diagnose import flatten_config
from hindsight.errors import HindsightError, MlflowBridgeError
from hindsight.ledger.records import ExperimentRecord, FailureRecord, FailureReport

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
    for key, value in flatten_config(config).items():
        if isinstance(value, (list, tuple, dict)):
            text = json.dumps(value, default=str)
        else:
            text = str(value)
        out.setdefault(_key(key), _clip(text, PARAM_VALUE_MAX))
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

