"""diagnose() measured on the held-out labelled corpus (written blind to the rules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hindsight.diagnose.corpus import evaluate_corpus, load_corpus
from hindsight.diagnose.taxonomy import CATEGORIES
from hindsight.errors import DiagnosisError

CORPUS = Path(__file__).parent / "corpus"


def test_corpus_is_large_and_covers_every_category() -> None:
    cases = load_corpus(CORPUS)
    assert len(cases) >= 80
    labels = {c.category for c in cases}
    assert labels == set(CATEGORIES) - {"unknown"}


def test_category_accuracy_is_at_least_90_percent() -> None:
    report = evaluate_corpus(load_corpus(CORPUS))
    assert report.accuracy >= 0.90, report.misses
    # No category may be mostly wrong, whatever the overall number says.
    for category, (correct, total) in report.per_category.items():
        assert correct / total >= 0.6, (category, report.misses)


def test_loader_rejects_malformed_cases(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("category: dl.gpu_oom\nno separator here\n")
    with pytest.raises(DiagnosisError, match="---"):
        load_corpus(tmp_path)
    (tmp_path / "bad.txt").write_text("category: nope\n---\ntext\n")
    with pytest.raises(DiagnosisError, match="unknown category"):
        load_corpus(tmp_path)
