"""Lessons: where they came from, who applied them, and finding them again."""

from __future__ import annotations

import pytest

import hindsight
from hindsight.errors import LedgerError, NotFound
from hindsight.ledger import (
    Ledger,
    add_lesson,
    apply_lesson,
    experiment,
    list_lessons,
    record_failure,
)


def _exp(ledger: Ledger, name: str, project: str = "recsys") -> str:
    with experiment(name, project=project, quiet=True, ledger=ledger) as exp:
        exp.log_metric("loss", 0.5)
    return exp.id


def test_add_resolves_sources_and_takes_the_project_from_them(any_ledger: Ledger) -> None:
    exp_id = _exp(any_ledger, "mf-baseline")
    failure = record_failure(
        any_ledger, "ValueError: bad", source="data", project="recsys", similar=0
    ).failure
    lesson = add_lesson(
        any_ledger,
        "  Normalise the embeddings before the dot product.  ",
        tags=["embeddings", " mf ", "mf", ""],
        sources=[exp_id[:-3], failure.id],  # a unique prefix is resolved to the full id
    )
    assert lesson.id.startswith("les_")
    assert lesson.project == "recsys"  # not the ledger's default project
    assert lesson.text == "Normalise the embeddings before the dot product."
    assert lesson.tags == ["embeddings", "mf"]
    assert sorted(lesson.sources) == sorted([exp_id, failure.id])
    assert lesson.applied_by == []
    assert any_ledger.lessons_for([failure.id]) == [lesson]


def test_add_without_sources_uses_the_given_or_default_project(ledger: Ledger) -> None:
    assert add_lesson(ledger, "Log the seed").project == ledger.settings.project
    assert add_lesson(ledger, "Log the seed", project="vision").project == "vision"


@pytest.mark.parametrize("text", ["", "   \n", None])
def test_empty_text_is_refused(ledger: Ledger, text: object) -> None:
    with pytest.raises(LedgerError, match="needs text"):
        add_lesson(ledger, text)  # type: ignore[arg-type]
    assert list_lessons(ledger) == []


def test_a_lesson_cannot_be_the_source_of_a_lesson(ledger: Ledger) -> None:
    first = add_lesson(ledger, "Warm up the learning rate")
    with pytest.raises(LedgerError, match="another lesson"):
        add_lesson(ledger, "Warm up longer", sources=[first.id])
    assert [les.id for les in list_lessons(ledger)] == [first.id]


def test_an_unknown_source_is_refused(ledger: Ledger) -> None:
    with pytest.raises(NotFound):
        add_lesson(ledger, "Something", sources=["exp_doesnotexist"])
    assert list_lessons(ledger) == []


def test_list_by_project_and_tag_newest_first(any_ledger: Ledger) -> None:
    a = add_lesson(any_ledger, "Clip gradients", tags=["optim"], project="recsys")
    b = add_lesson(any_ledger, "Check label leakage", tags=["data"], project="recsys")
    c = add_lesson(any_ledger, "Lower the learning rate", tags=["optim"], project="vision")
    assert [les.id for les in list_lessons(any_ledger)] == [c.id, b.id, a.id]
    assert [les.id for les in list_lessons(any_ledger, project="recsys")] == [b.id, a.id]
    assert [les.id for les in list_lessons(any_ledger, tag="optim")] == [c.id, a.id]
    assert [les.id for les in list_lessons(any_ledger, tag="optim", limit=1)] == [c.id]
    assert [les.id for les in list_lessons(any_ledger, project="vision", tag="data")] == []
    assert [les.id for les in list_lessons(any_ledger, limit=2)] == [c.id, b.id]


def test_search_needs_every_word_case_insensitively(any_ledger: Ledger) -> None:
    a = add_lesson(any_ledger, "Clip Gradients when the LOSS spikes")
    b = add_lesson(any_ledger, "The loss goes NaN with fp16: use bf16")
    add_lesson(any_ledger, "Check 100% of the labels_v2 for leakage")
    assert {les.id for les in list_lessons(any_ledger, query="loss")} == {a.id, b.id}
    assert [les.id for les in list_lessons(any_ledger, query="loss CLIP")] == [a.id]
    assert [les.id for les in list_lessons(any_ledger, query="spikes nan")] == []
    assert [les.id for les in list_lessons(any_ledger, query="gradients   loss")] == [a.id]
    # LIKE wildcards in the query are plain characters.
    assert len(list_lessons(any_ledger, query="100%")) == 1
    assert list_lessons(any_ledger, query="labels%v2") == []
    assert len(list_lessons(any_ledger, query="labels_v2")) == 1
    assert list_lessons(any_ledger, query="labelsxv2") == []


def test_apply_links_the_lesson_to_experiments(any_ledger: Ledger) -> None:
    source = _exp(any_ledger, "mf-baseline")
    lesson = add_lesson(any_ledger, "Normalise the embeddings", sources=[source])
    later = _exp(any_ledger, "mf-normalised")
    with experiment(
        "mf-normalised-2", project="recsys", applies=[lesson.id], quiet=True, ledger=any_ledger
    ) as exp:
        pass
    apply_lesson(any_ledger, lesson.id, later)
    apply_lesson(any_ledger, lesson.id, later)  # twice is once

    got = list_lessons(any_ledger)[0]
    assert got.sources == [source]
    assert sorted(got.applied_by) == sorted([later, exp.id])
    with pytest.raises(NotFound):
        apply_lesson(any_ledger, lesson.id, "exp_missing")
    with pytest.raises(NotFound):
        apply_lesson(any_ledger, "les_missing", later)


def test_module_level_add_lesson_uses_the_default_ledger(ledger: Ledger) -> None:
    exp_id = _exp(ledger, "mf")
    lesson = hindsight.add_lesson("Cache the features", sources=[exp_id])
    assert lesson.sources == [exp_id]
    assert lesson.project == "recsys"
    assert lesson.to_dict()["created"].endswith("+00:00")
