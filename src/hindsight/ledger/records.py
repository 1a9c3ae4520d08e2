"""The ledger's record types, read back from the store as frozen values."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "ExperimentRecord",
    "FailureRecord",
    "FailureReport",
    "Lesson",
    "PostMortem",
    "SimilarFailure",
    "iso",
]

STATUSES = ("running", "finished", "crashed", "killed")
OUTCOMES = ("success", "failure", "partial")


def iso(ts: float | None) -> str | None:
    """A UNIX timestamp as an ISO-8601 UTC string."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ExperimentRecord:
    """One experiment: what was tried, why, how it went, and what was learned."""

    id: str
    project: str
    name: str
    hypothesis: str
    approach: str
    tags: list[str]
    config: dict[str, Any]
    criteria: dict[str, Any]
    status: str
    outcome: str | None
    outcome_source: str | None
    outcome_reason: str | None
    verdicts: list[dict[str, Any]]
    summary: dict[str, float]
    started_at: float
    ended_at: float | None
    heartbeat_at: float | None
    duration_s: float | None
    git_commit: str | None
    git_dirty: bool | None
    environment: dict[str, Any]
    host: str | None
    pid: int | None
    command: str | None
    mlflow_run_id: str | None
    failure_id: str | None
    schema_version: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ExperimentRecord:
        values = dict(row)
        values["tags"] = list(values.get("tags") or [])
        values["config"] = dict(values.get("config") or {})
        values["criteria"] = dict(values.get("criteria") or {})
        values["verdicts"] = list(values.get("verdicts") or [])
        values["summary"] = dict(values.get("summary") or {})
        values["environment"] = dict(values.get("environment") or {})
        return cls(**values)

    @property
    def failed(self) -> bool:
        """Crashed, killed, or judged a failure against its criteria."""
        return self.status in ("crashed", "killed") or self.outcome == "failure"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["started"] = iso(self.started_at)
        d["ended"] = iso(self.ended_at)
        return d


@dataclass(frozen=True)
class FailureRecord:
    """One failure with its evidence, fingerprint and diagnosis."""

    id: str
    experiment_id: str | None
    project: str
    source: str
    created_at: float
    exc_type: str
    message: str
    frames: list[dict[str, Any]]
    log_tail: str | None
    exit_code: int | None
    fingerprint: str
    masked_message: str
    tokens: str
    category: str
    diagnosis: dict[str, Any]
    evidence: dict[str, Any]
    schema_version: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> FailureRecord:
        values = dict(row)
        values["frames"] = list(values.get("frames") or [])
        values["diagnosis"] = dict(values.get("diagnosis") or {})
        values["evidence"] = dict(values.get("evidence") or {})
        return cls(**values)

    @property
    def title(self) -> str:
        """A one-line summary: exception type and message, or the diagnosis title."""
        if self.exc_type:
            first = self.message.strip().splitlines()[0] if self.message.strip() else ""
            return f"{self.exc_type}: {first}"[:200] if first else self.exc_type[:200]
        return str(self.diagnosis.get("title") or self.category)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created"] = iso(self.created_at)
        d["title"] = self.title
        return d


@dataclass(frozen=True)
class Lesson:
    """Something learned, linked to where it came from and to who applied it."""

    id: str
    project: str
    text: str
    tags: list[str]
    created_at: float
    schema_version: int
    sources: list[str] = field(default_factory=list)
    applied_by: list[str] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: dict[str, Any], links: Sequence[dict[str, Any]] = ()) -> Lesson:
        mine = [link for link in links if link["lesson_id"] == row["id"]]
        return cls(
            id=row["id"],
            project=row["project"],
            text=row["text"],
            tags=list(row.get("tags") or []),
            created_at=row["created_at"],
            schema_version=row["schema_version"],
            sources=[x["target_id"] for x in mine if x["relation"] == "source"],
            applied_by=[x["target_id"] for x in mine if x["relation"] == "applied"],
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created"] = iso(self.created_at)
        return d


@dataclass(frozen=True)
class SimilarFailure:
    """A past failure like this one, with what was learned and what fixed it."""

    failure: FailureRecord
    score: float
    exact: bool
    occurrences: int
    lessons: list[Lesson]
    fixed_by: str | None = None
    config_change: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "failure": self.failure.to_dict(),
            "score": round(self.score, 4),
            "exact": self.exact,
            "occurrences": self.occurrences,
            "lessons": [les.to_dict() for les in self.lessons],
            "fixed_by": self.fixed_by,
            "config_change": self.config_change,
        }


@dataclass(frozen=True)
class FailureReport:
    """What recording a failure returns: the record, its diagnosis and similar past failures."""

    failure: FailureRecord
    similar: list[SimilarFailure]

    @property
    def diagnosis(self) -> dict[str, Any]:
        return self.failure.diagnosis

    def to_dict(self) -> dict[str, Any]:
        return {
            "failure": self.failure.to_dict(),
            "similar": [s.to_dict() for s in self.similar],
        }


@dataclass(frozen=True)
class PostMortem:
    """A blameless post-mortem: sections of text, a timeline and action items."""

    id: str
    failure_id: str | None
    experiment_id: str | None
    project: str
    title: str
    status: str
    body: dict[str, Any]
    created_at: float
    updated_at: float
    schema_version: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> PostMortem:
        values = dict(row)
        values["body"] = dict(values.get("body") or {})
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created"] = iso(self.created_at)
        d["updated"] = iso(self.updated_at)
        return d
