"""Labelled failure corpora: load them and measure diagnose() against their labels.

A corpus is a folder of ``*.txt`` files, each a header of ``key: value`` lines
(``category`` required; ``exit_code`` and one-line JSON ``config`` optional), a
line ``---``, then the raw log or traceback text. Teams can keep their own
corpus of real failures in this format and measure the classifier on it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hindsight.diagnose.diagnose import diagnose
from hindsight.diagnose.taxonomy import CATEGORIES
from hindsight.errors import DiagnosisError

__all__ = ["CorpusCase", "CorpusReport", "evaluate_corpus", "load_corpus"]


@dataclass(frozen=True)
class CorpusCase:
    """One labelled failure text."""

    name: str
    category: str
    text: str
    exit_code: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CorpusReport:
    """Accuracy of diagnose() on a corpus, overall and per category, with the misses."""

    total: int
    correct: int
    per_category: dict[str, tuple[int, int]]
    misses: list[tuple[str, str, str]]
    confusion: dict[tuple[str, str], int]

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "per_category": {k: {"correct": c, "total": t} for k, (c, t) in self.per_category.items()},
            "misses": [{"case": n, "expected": e, "got": g} for n, e, g in self.misses],
        }


def load_corpus(directory: str | Path) -> list[CorpusCase]:
    """Read every ``*.txt`` case of a corpus folder, sorted by file name."""
    root = Path(directory)
    if not root.is_dir():
        raise DiagnosisError(f"Corpus folder {root} does not exist.")
    cases = []
    for path in sorted(root.glob("*.txt")):
        raw = path.read_text(encoding="utf-8")
        head, sep, body = raw.partition("\n---\n")
        if not sep or not body.strip():
            raise DiagnosisError(f"{path}: expected header lines, a '---' line, then the text.")
        headers = {}
        for line in head.splitlines():
            key, colon, value = line.partition(":")
            if not colon:
                raise DiagnosisError(f"{path}: header line {line!r} is not 'key: value'.")
            headers[key.strip()] = value.strip()
        category = headers.get("category", "")
        if category not in CATEGORIES:
            raise DiagnosisError(f"{path}: unknown category {category!r}.")
        exit_code = int(headers["exit_code"]) if headers.get("exit_code") else None
        config = json.loads(headers["config"]) if headers.get("config") else {}
        cases.append(CorpusCase(path.stem, category, body, exit_code, config, headers))
    if not cases:
        raise DiagnosisError(f"Corpus folder {root} has no *.txt cases.")
    return cases


def evaluate_corpus(cases: Sequence[CorpusCase]) -> CorpusReport:
    """Diagnose every case and compare the category with its label."""
    per: dict[str, list[int]] = {}
    misses = []
    confusion: Counter[tuple[str, str]] = Counter()
    correct = 0
    for case in cases:
        got = diagnose(case.text, case.config, exit_code=case.exit_code).category
        stats = per.setdefault(case.category, [0, 0])
        stats[1] += 1
        confusion[(case.category, got)] += 1
        if got == case.category:
            stats[0] += 1
            correct += 1
        else:
            misses.append((case.name, case.category, got))
    return CorpusReport(
        total=len(cases),
        correct=correct,
        per_category={k: (v[0], v[1]) for k, v in sorted(per.items())},
        misses=misses,
        confusion=dict(confusion),
    )
