"""The ingest protocol: the write operations a client sends to ``POST /api/v1/ingest``.

Each operation carries an ``op_id`` (a UUID the client makes when it records it) and
the server applies it at most once, in one transaction with the operation's writes,
so a batch sent again after a lost reply changes nothing. Operations reference
records by their full ids (``exp_…``, ``les_…``); a client makes those ids itself.

Metric series travel as base64 of little-endian arrays (int64 steps, float64 values
and UNIX times): exact, NaN-safe and a third the size of JSON numbers.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_OPS",
    "ArtifactAdd",
    "Batch",
    "BatchResult",
    "ExperimentRow",
    "ExperimentStart",
    "ExperimentUpdate",
    "ExperimentUpdateValues",
    "FailureRecordOp",
    "FailureRow",
    "Heartbeat",
    "LessonAdd",
    "LessonApply",
    "MetricSeries",
    "Metrics",
    "NoteAdd",
    "Op",
    "OpResult",
    "ParentAdd",
    "decode_series",
    "encode_series",
]

#: The most operations, and the most bytes of JSON, a client puts in one request.
MAX_BATCH_OPS = 500
MAX_BATCH_BYTES = 8 * 1024 * 1024

_Id = Annotated[str, Field(min_length=5, max_length=40, pattern=r"^[a-z]+_[A-Za-z0-9_.-]+$")]
_ExpId = Annotated[str, Field(min_length=5, max_length=40, pattern=r"^exp_[A-Za-z0-9_.-]+$")]
_LesId = Annotated[str, Field(min_length=5, max_length=40, pattern=r"^les_[A-Za-z0-9_.-]+$")]
_FailId = Annotated[str, Field(min_length=6, max_length=40, pattern=r"^fail_[A-Za-z0-9_.-]+$")]
def _whole_number(v: Any) -> Any:
    # As in JSON Schema: 498.0 is an integer, true and "498" are not.
    if isinstance(v, bool | str):
        raise ValueError("must be an integer")
    return v


# JSON's numbers as JSON Schema reads them: a ``false`` is not a duration, a ``"3"`` is
# not a step (pydantic's lax mode would take both).
_Whole = BeforeValidator(_whole_number)
_Pid = Annotated[int, Field(ge=0, le=2**31 - 1), _Whole]
_ExitCode = Annotated[int, Field(ge=-(2**31), le=2**31 - 1), _Whole]
_Version = Annotated[int, Field(ge=1, le=1000), _Whole]
_Size = Annotated[int, Field(ge=0, le=2**53), _Whole]  # 2**53: exact in a JSON Schema check too
_Float = Annotated[float, Field(strict=True, allow_inf_nan=False)]
_Bool = Annotated[bool, Field(strict=True)]
_Time = Annotated[float, Field(strict=True, ge=0, le=1e11, allow_inf_nan=False)]
_OpId = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
_Project = Annotated[str, Field(min_length=1, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExperimentRow(_Strict):
    """A new experiment as its running record (what ``Experiment.start`` writes)."""

    id: _ExpId
    project: _Project
    name: Annotated[str, Field(min_length=1, max_length=300)]
    hypothesis: str = ""
    approach: str = ""
    tags: list[Annotated[str, Field(max_length=200)]] = []
    config: dict[str, Any] = {}
    criteria: dict[str, Any] = {}
    status: Literal["running"] = "running"
    summary: dict[str, Any] = {}
    verdicts: list[dict[str, Any]] = []
    started_at: _Time
    heartbeat_at: _Time | None = None
    git_commit: Annotated[str, Field(max_length=64)] | None = None
    git_dirty: _Bool | None = None
    environment: dict[str, Any] = {}
    host: Annotated[str, Field(max_length=255)] | None = None
    pid: _Pid | None = None
    command: str | None = None
    schema_version: _Version


class _Op(_Strict):
    op_id: _OpId


class ExperimentStart(_Op):
    """An experiment starts."""

    op: Literal["experiment.start"]
    row: ExperimentRow


_B64 = Annotated[
    str,
    Field(pattern=r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"),
]


class MetricSeries(_Strict):
    """One metric's new points, as base64 of little-endian arrays of one length.

    The arrays' lengths are checked when the operation is applied
    (:func:`decode_series`); a mismatch rejects the operation.
    """

    key: Annotated[str, Field(min_length=1, max_length=250)]
    steps: _B64  # int64
    values: _B64  # float64
    times: _B64  # float64


class Metrics(_Op):
    """A batch of metric points and the experiment's summary (last values) after it."""

    op: Literal["experiment.metrics"]
    experiment_id: _ExpId
    series: Annotated[list[MetricSeries], Field(min_length=1, max_length=10_000)]
    summary: dict[str, Any] = {}


class Heartbeat(_Op):
    """The run is alive."""

    op: Literal["experiment.heartbeat"]
    experiment_id: _ExpId
    at: _Time


class ExperimentUpdateValues(_Strict):
    """The experiment columns an update may set (status, outcome, verdicts, timing)."""

    status: Literal["running", "finished", "crashed", "killed"] | None = None
    outcome: Literal["success", "failure", "partial"] | None = None
    outcome_source: Annotated[str, Field(max_length=16)] | None = None
    outcome_reason: str | None = None
    verdicts: list[dict[str, Any]] | None = None
    ended_at: _Time | None = None
    duration_s: Annotated[_Float, Field(ge=0)] | None = None

    def values(self) -> dict[str, Any]:
        """The columns to set: the fields the client sent (``None`` included)."""
        return self.model_dump(include=self.model_fields_set - {"op", "op_id", "experiment_id"})


class ExperimentUpdate(ExperimentUpdateValues):
    """The run's end (status, outcome, verdicts, timing) or its MLflow run id."""

    op_id: _OpId
    op: Literal["experiment.update"]
    experiment_id: _ExpId
    mlflow_run_id: Annotated[str, Field(max_length=64)] | None = None


class NoteAdd(_Op):
    """A next step (or another note) on an experiment."""

    op: Literal["experiment.note"]
    experiment_id: _ExpId
    kind: Literal["next_step"] = "next_step"
    text: Annotated[str, Field(min_length=1, max_length=100_000)]
    at: _Time


class ParentAdd(_Op):
    """An experiment builds on an earlier one."""

    op: Literal["experiment.parent"]
    experiment_id: _ExpId
    parent_id: _ExpId


class LessonApply(_Op):
    """An experiment applies an earlier lesson."""

    op: Literal["lesson.apply"]
    lesson_id: _LesId
    experiment_id: _ExpId
    at: _Time


class ArtifactAdd(_Op):
    """A file an experiment produced: its path on the client, size and SHA-256."""

    op: Literal["experiment.artifact"]
    experiment_id: _ExpId
    name: Annotated[str, Field(min_length=1, max_length=300)]
    path: Annotated[str, Field(min_length=1, max_length=4096)]
    size: _Size
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    created_at: _Time


class LessonAdd(_Op):
    """A lesson learned, with the records it came from."""

    op: Literal["lesson.add"]
    id: _LesId
    project: _Project
    text: Annotated[str, Field(min_length=1, max_length=100_000)]
    tags: list[Annotated[str, Field(max_length=200)]] = []
    sources: Annotated[list[_Id], Field(max_length=100)] = []
    created_at: _Time
    schema_version: _Version

    @field_validator("text")
    @classmethod
    def _text(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a lesson needs text")
        return v


class FailureRow(_Strict):
    """A failure as the client diagnosed and fingerprinted it."""

    id: _FailId
    experiment_id: _ExpId | None = None
    project: _Project
    source: Literal["experiment", "run", "training", "data", "serving", "canary", "monitor"]
    created_at: _Time
    exc_type: Annotated[str, Field(max_length=300)] = ""
    message: str = ""
    frames: list[dict[str, Any]] = []
    log_tail: str | None = None
    exit_code: _ExitCode | None = None
    fingerprint: Annotated[str, Field(min_length=1, max_length=32)]
    masked_message: str = ""
    tokens: str = ""
    category: Annotated[str, Field(min_length=1, max_length=40)]
    diagnosis: dict[str, Any]
    evidence: dict[str, Any] = {}
    schema_version: _Version


class FailureRecordOp(_Op):
    """A failure, and the experiment's outcome it decides, written together."""

    op: Literal["failure.record"]
    row: FailureRow
    experiment_update: ExperimentUpdateValues | None = None


Op = Annotated[
    ExperimentStart
    | Metrics
    | Heartbeat
    | ExperimentUpdate
    | NoteAdd
    | ParentAdd
    | LessonApply
    | ArtifactAdd
    | LessonAdd
    | FailureRecordOp,
    Field(discriminator="op"),
]


class Batch(_Strict):
    """What a client posts: operations in the order it recorded them."""

    ops: Annotated[list[Op], Field(min_length=1, max_length=MAX_BATCH_OPS)]


class OpResult(BaseModel):
    """What became of one operation."""

    op_id: str
    status: Literal["applied", "duplicate", "rejected"]
    error: str | None = None


class BatchResult(BaseModel):
    """The server's answer: one result per operation, in the order sent."""

    results: list[OpResult]
    applied: int
    duplicates: int
    rejected: int


# -- metric arrays -------------------------------------------------------------------------


def encode_series(
    key: str, steps: np.ndarray, values: np.ndarray, times: np.ndarray
) -> dict[str, str]:
    """One metric's points as the protocol's base64 arrays."""

    def b64(a: np.ndarray, dtype: str) -> str:
        return base64.b64encode(np.ascontiguousarray(a, dtype=dtype).tobytes()).decode("ascii")

    return {
        "key": key,
        "steps": b64(steps, "<i8"),
        "values": b64(values, "<f8"),
        "times": b64(times, "<f8"),
    }


def decode_series(series: MetricSeries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, values, times) of one series; ValueError names what is malformed."""
    out = []
    for name, dtype in (("steps", "<i8"), ("values", "<f8"), ("times", "<f8")):
        try:
            raw = base64.b64decode(getattr(series, name), validate=True)
        except ValueError as exc:
            raise ValueError(f"{name} of metric {series.key!r} is not base64: {exc}") from exc
        if len(raw) % 8:
            raise ValueError(
                f"{name} of metric {series.key!r} holds {len(raw)} bytes, not a whole number "
                "of 8-byte values"
            )
        out.append(np.frombuffer(raw, dtype=dtype))
    steps, values, times = out
    if not (len(steps) == len(values) == len(times)) or len(steps) == 0:
        raise ValueError(
            f"metric {series.key!r} needs as many steps, values and times, at least one: "
            f"got {len(steps)}, {len(values)} and {len(times)}"
        )
    return steps, values, times
