"""The one entry point: diagnose a failure from an exception or a log, plus its config.

:func:`diagnose` reads the evidence, classifies it, fingerprints it, checks the config
and writes advice that uses what it found. The result, :class:`Diagnosis`, is a frozen
value that round-trips through JSON (``to_dict`` / ``from_dict``) so the ledger can
store it.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hindsight.diagnose.advice import recommendations
from hindsight.diagnose.causes import likely_cause
from hindsight.diagnose.classify import classify
from hindsight.diagnose.config_checks import ConfigIssue, check_config
from hindsight.diagnose.evidence import Evidence, signal_of
from hindsight.diagnose.fingerprint import Fingerprint, fingerprint
from hindsight.diagnose.settings import flatten_config
from hindsight.diagnose.taxonomy import category_info
from hindsight.errors import DiagnosisError

__all__ = ["SCHEMA_VERSION", "Diagnosis", "diagnose"]

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """Why a job failed, how sure we are, the evidence, and what to do next.

    >>> d = diagnose(ZeroDivisionError("division by zero"))
    >>> d.category, d.group
    ('code.error', 'code')
    """

    category: str
    group: str
    title: str
    likely_cause: str
    confidence: float
    evidence: tuple[str, ...]
    config_issues: tuple[ConfigIssue, ...]
    recommendations: tuple[str, ...]
    fingerprint: Fingerprint
    exc_type: str
    message: str

    @property
    def summary(self) -> str:
        """One line for a terminal or an alert: title, confidence and likely cause."""
        return f"{self.title} ({self.confidence:.0%}): {self.likely_cause}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of the diagnosis, with a schema version."""
        return {
            "schema_version": SCHEMA_VERSION,
            "category": self.category,
            "group": self.group,
            "title": self.title,
            "likely_cause": self.likely_cause,
            "confidence": self.confidence,
            "evidence": list(self.evidence),
            "config_issues": [i.to_dict() for i in self.config_issues],
            "recommendations": list(self.recommendations),
            "fingerprint": self.fingerprint.to_dict(),
            "exc_type": self.exc_type,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Diagnosis:
        """The diagnosis back from :meth:`to_dict`."""
        if not isinstance(data, Mapping):
            raise DiagnosisError(f"Diagnosis.from_dict() needs a dict; got {type(data).__name__}.")
        version = data.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise DiagnosisError(
                f"This diagnosis has schema version {version!r}; this hindsight reads up to "
                f"{SCHEMA_VERSION}. Upgrade hindsight to read it."
            )
        try:
            info = category_info(str(data["category"]))
            return cls(
                category=info.id.value,
                group=str(data.get("group") or info.group),
                title=str(data.get("title") or info.title),
                likely_cause=str(data.get("likely_cause") or info.likely_cause),
                confidence=float(data.get("confidence", 0.0)),
                evidence=tuple(str(e) for e in data.get("evidence") or ()),
                config_issues=tuple(
                    ConfigIssue.from_dict(i) for i in data.get("config_issues") or ()
                ),
                recommendations=tuple(str(r) for r in data.get("recommendations") or ()),
                fingerprint=Fingerprint.from_dict(data["fingerprint"]),
                exc_type=str(data.get("exc_type") or ""),
                message=str(data.get("message") or ""),
            )
        except KeyError as exc:
            raise DiagnosisError(
                f"A diagnosis dict needs the key {exc}; build it with Diagnosis.to_dict()."
            ) from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, DiagnosisError):
                raise
            raise DiagnosisError(f"Not a diagnosis dict: {exc}.") from None


def diagnose(
    source: BaseException | Evidence | str | bytes,
    config: Mapping[str, Any] | None = None,
    *,
    exit_code: int | None = None,
) -> Diagnosis:
    """Diagnose a failure from an exception, an :class:`Evidence` or the tail of a log.

    ``config`` is the run's settings (nested dicts are fine); it is checked for common
    mistakes and used to make the advice concrete. ``exit_code`` is the process's exit
    status when known (137 = killed by SIGKILL, usually the OOM killer; 143 = SIGTERM).

    >>> d = diagnose("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
    ...              {"batch_size": 512})
    >>> d.category
    'dl.gpu_oom'
    >>> d.recommendations[0].split(" or ")[0]
    'Halve batch_size (512 -> 256)'
    """
    if exit_code is not None and (isinstance(exit_code, bool) or not isinstance(exit_code, int)):
        raise DiagnosisError(f"exit_code must be an int or None; got {exit_code!r}.")
    evidence = _evidence(source, exit_code)
    settings = _as_mapping(config)
    flat = flatten_config(settings) if settings else {}
    issues = tuple(check_config(settings))
    result = classify(evidence)
    category = result.category
    info = category_info(category)
    return Diagnosis(
        category=category.value,
        group=info.group,
        title=info.title,
        likely_cause=likely_cause(category, evidence, flat),
        confidence=result.confidence,
        evidence=result.snippets,
        config_issues=issues,
        recommendations=recommendations(category, evidence, flat, issues),
        fingerprint=fingerprint(evidence, category.value),
        exc_type=evidence.exc_type,
        message=evidence.message,
    )


def _evidence(source: object, exit_code: int | None) -> Evidence:
    if isinstance(source, Evidence):
        if exit_code is not None and source.exit_code is None:
            return dataclasses.replace(
                source, exit_code=exit_code, signal=source.signal or signal_of(exit_code)
            )
        return source
    if isinstance(source, BaseException):
        return Evidence.from_exception(source, exit_code=exit_code)
    if isinstance(source, bytes | bytearray):
        # A log may hold a few bytes of binary garbage; that must not hide the error.
        return Evidence.from_text(bytes(source).decode("utf-8", errors="replace"), exit_code)
    if isinstance(source, str):
        return Evidence.from_text(source, exit_code)
    raise DiagnosisError(
        f"diagnose() needs an exception, an Evidence or log text (str); got "
        f"{type(source).__name__}. Pass the caught exception (`except Exception as e: "
        "diagnose(e)`) or the tail of the job's stdout/stderr."
    )


def _as_mapping(config: object) -> Mapping[str, Any] | None:
    if config is None or isinstance(config, Mapping):
        return config
    if isinstance(config, argparse.Namespace):
        return vars(config)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    dump = getattr(config, "model_dump", None)  # pydantic models
    if callable(dump):
        dumped = dump()
        if isinstance(dumped, Mapping):
            return dumped
    raise DiagnosisError(
        f"config must be a mapping of settings (or an argparse Namespace, dataclass or "
        f"pydantic model); got {type(config).__name__}."
    )
