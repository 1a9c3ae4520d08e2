"""Similar past failures: fingerprints of real crashes, fuzzy ranking, lessons and fixes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hindsight
from hindsight.config import Settings
from hindsight.ledger import (
    Ledger,
    add_lesson,
    experiment,
    record_failure,
    similar_failures,
)
from hindsight.ledger.explain import failure_text, similar_text
from hindsight.ledger.records import FailureReport


def _matmul(n: int) -> np.ndarray:
    """A real shape bug: the inner dimensions never agree, whatever ``n`` is."""
    a = np.ones((n, n + 1))
    b = np.ones((n + 2, 3))
    return a @ b


def _project_embeddings(n: int) -> np.ndarray:
    """The same shape bug reached from another code path."""
    users = np.zeros((2 * n, n + 3))
    items = np.zeros((n + 5, 4))
    return np.matmul(users, items)


def _lookup(key: str) -> int:
    table: dict[str, int] = {}
    return table[key]


def _crash(fn: Callable[..., Any], *args: Any) -> BaseException:
    try:
        fn(*args)
    except Exception as exc:
        return exc
    raise AssertionError(f"{fn.__name__}{args} did not raise")


def _record(ledger: Ledger, exc: BaseException, **kw: Any) -> FailureReport:
    kw.setdefault("source", "training")
    return record_failure(ledger, exc, **kw)


def _run_crashing(
    ledger: Ledger, name: str, config: Mapping[str, Any], fn: Callable[..., Any], *args: Any,
    builds_on: tuple[str, ...] = (),
) -> str:
    with pytest.raises(Exception), experiment(  # noqa: B017 - whatever fn raises
        name, config=config, quiet=True, ledger=ledger, builds_on=builds_on
    ) as exp:
        exp.log_metric("loss", 1.5)
        fn(*args)
    return exp.id


def _run_ok(
    ledger: Ledger, name: str, config: Mapping[str, Any], builds_on: tuple[str, ...] = ()
) -> str:
    with experiment(
        name, config=config, criteria={"ctr": ">= 0.6"}, quiet=True, ledger=ledger,
        builds_on=builds_on,
    ) as exp:
        exp.log_metric("ctr", 0.7)
    assert exp.record.outcome == "success"
    return exp.id


# -- fingerprints of real crashes -----------------------------------------------------


def test_same_crash_with_different_sizes_groups_as_one_exact_entry(any_ledger: Ledger) -> None:
    reports = [_record(any_ledger, _crash(_matmul, n)) for n in (3, 5, 8, 13)]
    fps = {r.failure.fingerprint for r in reports}
    assert len(fps) == 1
    # The sizes differ in the raw messages but not in the masked one.
    assert len({r.failure.message for r in reports}) > 1
    assert "<n>" in reports[0].failure.masked_message
    assert reports[0].failure.category == "dl.shape_mismatch"

    assert reports[0].similar == []
    last = reports[-1].similar
    assert len(last) == 1
    entry = last[0]
    assert entry.exact and entry.score == 1.0
    assert entry.occurrences == 3
    # The entry shows the newest earlier occurrence.
    assert entry.failure.id == reports[2].failure.id


def test_key_errors_on_different_keys_are_different_failures(any_ledger: Ledger) -> None:
    a = _record(any_ledger, _crash(_lookup, "user_id"), source="data")
    b = _record(any_ledger, _crash(_lookup, "item_id"), source="data")
    again = _record(any_ledger, _crash(_lookup, "user_id"), source="data")
    assert a.failure.fingerprint != b.failure.fingerprint
    assert again.failure.fingerprint == a.failure.fingerprint
    exact = [s for s in again.similar if s.exact]
    assert [s.failure.id for s in exact] == [a.failure.id]
    # item_id is near (same code, same kind of error) but not the same failure.
    near = [s for s in again.similar if not s.exact]
    assert [s.failure.id for s in near] == [b.failure.id]
    assert near[0].score < 1.0


# -- fuzzy ranking ----------------------------------------------------------------------


def test_near_identical_message_from_another_path_ranks_above_unrelated(
    any_ledger: Ledger,
) -> None:
    unrelated = _record(any_ledger, _crash(_lookup, "user_id"), source="data")
    disk = _record(
        any_ledger, "OSError: [Errno 28] No space left on device: '/ckpt/step_900.pt'", source="run"
    )
    near = _record(any_ledger, _crash(_project_embeddings, 4))
    query = _record(any_ledger, _crash(_matmul, 6))
    assert near.failure.fingerprint != query.failure.fingerprint

    ranked = similar_failures(any_ledger, query.failure, k=5, min_score=0.0)
    ids = [s.failure.id for s in ranked]
    assert ids[0] == near.failure.id
    assert not ranked[0].exact and 0.35 <= ranked[0].score < 1.0
    scores = {s.failure.id: s.score for s in ranked}
    assert all(scores[ids[0]] > s for i, s in scores.items() if i != ids[0])
    # Scores come out best first.
    assert [s.score for s in ranked] == sorted((s.score for s in ranked), reverse=True)

    # With the default threshold the unrelated failures are not returned at all.
    default = similar_failures(any_ledger, query.failure)
    assert [s.failure.id for s in default] == [near.failure.id]
    assert unrelated.failure.id not in {s.failure.id for s in default}
    assert disk.failure.id not in {s.failure.id for s in default}
    assert query.similar == default


def _score_batch(n: int) -> np.ndarray:
    """The same shape bug on a third code path."""
    return np.ones((n, 2)) @ np.ones((n + 1, 2))


def test_many_occurrences_of_one_group_do_not_hide_other_groups(ledger: Ledger) -> None:
    rare = _record(ledger, _crash(_score_batch, 4))
    for n in range(25):
        _record(ledger, _crash(_project_embeddings, n + 1), similar=0)
    for n in range(30):
        _record(ledger, _crash(_matmul, n + 1), similar=0)
    query = _record(ledger, _crash(_matmul, 50))
    kinds = [(s.exact, s.occurrences) for s in query.similar]
    assert kinds[0] == (True, 30)
    assert (False, 25) in kinds
    assert rare.failure.id in {s.failure.id for s in query.similar}


# -- lessons and fixes ------------------------------------------------------------------


def test_lessons_of_similar_failures_are_surfaced(any_ledger: Ledger) -> None:
    first = _run_crashing(any_ledger, "train-mf", {"lr": 0.1}, _matmul, 3)
    first_failure = any_ledger.experiment_record(first).failure_id
    assert first_failure is not None
    on_exp = add_lesson(any_ledger, "Check the embedding dims match", sources=[first])
    on_fail = add_lesson(any_ledger, "Assert shapes before matmul", sources=[first_failure])

    second = _run_crashing(any_ledger, "train-mf-v2", {"lr": 0.1}, _matmul, 7)
    found = hindsight.similar_failures(second)
    assert len(found) == 1
    assert found[0].failure.id == first_failure
    assert {les.id for les in found[0].lessons} == {on_exp.id, on_fail.id}
    assert found[0].fixed_by is None

    report = FailureReport(any_ledger.failure_record(first_failure), found)
    text = failure_text(report)
    assert "similar past failures:" in text and "same fingerprint, seen 1x" in text
    assert f"lesson {on_fail.id}: Assert shapes before matmul" in text
    assert "fixed by" not in text


def test_a_later_success_of_the_same_name_is_reported_as_the_fix(any_ledger: Ledger) -> None:
    broken = _run_crashing(
        any_ledger, "train-mf", {"lr": 0.1, "batch": 64, "opt": {"name": "sgd"}}, _matmul, 3
    )
    good = _run_ok(any_ledger, "train-mf", {"lr": 0.01, "batch": 64, "warmup": 100})
    _run_ok(any_ledger, "train-mf", {"lr": 0.5})  # a later success is not the first fix
    again = _run_crashing(any_ledger, "train-als", {"lr": 0.1}, _matmul, 9)

    found = hindsight.similar_failures(again)
    assert len(found) == 1
    assert found[0].fixed_by == good
    assert found[0].config_change == {
        "changed": {"lr": [0.1, 0.01]},
        "added": {"warmup": 100},
        "removed": {"opt.name": "sgd"},
    }
    assert broken != good
    d = found[0].to_dict()
    assert d["fixed_by"] == good and d["exact"] and d["occurrences"] == 1
    line = similar_text(found[0])
    assert f"fixed by {good}, which changed lr: 0.1 -> 0.01, +warmup=100, -opt.name" in line


def test_a_success_that_builds_on_the_failure_is_reported_as_the_fix(any_ledger: Ledger) -> None:
    broken = _run_crashing(any_ledger, "train-mf", {"lr": 0.1}, _matmul, 3)
    fix = _run_ok(any_ledger, "mf-smaller-lr", {"lr": 0.01}, builds_on=(broken,))
    _run_ok(any_ledger, "unrelated-success", {"lr": 0.3})
    again = _run_crashing(any_ledger, "train-als", {"lr": 0.1}, _matmul, 4)
    found = hindsight.similar_failures(again)
    assert found[0].fixed_by == fix
    assert found[0].config_change == {"changed": {"lr": [0.1, 0.01]}, "added": {}, "removed": {}}


def test_a_success_two_steps_down_the_line_is_the_fix(ledger: Ledger) -> None:
    broken = _run_crashing(ledger, "train-mf", {"lr": 0.1}, _matmul, 3)
    with experiment(
        "mf-retry", config={"lr": 0.05}, criteria={"ctr": ">= 0.6", "auc": ">= 0.8"},
        builds_on=[broken], quiet=True, ledger=ledger,
    ) as retry:
        retry.log_metrics({"ctr": 0.7, "auc": 0.5})
    assert retry.record.outcome == "partial"
    fix = _run_ok(ledger, "mf-retry-2", {"lr": 0.01}, builds_on=(retry.id,))
    again = _run_crashing(ledger, "train-als", {"lr": 0.1}, _matmul, 4)
    found = hindsight.similar_failures(again)
    assert found[0].fixed_by == fix
    assert found[0].config_change == {"changed": {"lr": [0.1, 0.01]}, "added": {}, "removed": {}}


def test_a_failure_of_an_experiment_belongs_to_its_project(ledger: Ledger) -> None:
    with experiment("mf", project="recsys", quiet=True, ledger=ledger) as exp:
        report = hindsight.record_failure(_crash(_matmul, 3), source="training",
                                          experiment_id=exp.id)
    assert report.failure.project == "recsys"
    assert [f.id for f in ledger.failures(project="recsys")] == [report.failure.id]


def test_an_earlier_success_is_not_a_fix(ledger: Ledger) -> None:
    _run_ok(ledger, "train-mf", {"lr": 0.01})
    _run_crashing(ledger, "train-mf", {"lr": 0.1}, _matmul, 3)
    again = _run_crashing(ledger, "train-als", {"lr": 0.1}, _matmul, 4)
    found = hindsight.similar_failures(again)
    assert len(found) == 1 and found[0].fixed_by is None and found[0].config_change is None


# -- what is never returned ---------------------------------------------------------------


def test_failures_of_the_same_experiment_are_not_similar(any_ledger: Ledger) -> None:
    with pytest.raises(ValueError), experiment("train-mf", quiet=True, ledger=any_ledger) as exp:
        # The training guard records a failure mid-run, then the run crashes the same way.
        guard = _record(any_ledger, _crash(_matmul, 3), experiment_id=exp.id)
        _matmul(5)
    crash = any_ledger.experiment_record(exp.id).failure_id
    assert crash is not None and crash != guard.failure.id
    assert hindsight.similar_failures(exp.id) == []
    assert hindsight.similar_failures(crash) == []


def test_failures_recorded_later_are_not_similar(any_ledger: Ledger) -> None:
    first = _record(any_ledger, _crash(_matmul, 3))
    later = _record(any_ledger, _crash(_matmul, 4))
    near_later = _record(any_ledger, _crash(_project_embeddings, 4))
    assert [s.failure.id for s in later.similar] == [first.failure.id]
    assert similar_failures(any_ledger, first.failure, min_score=0.0) == []
    assert near_later.failure.id not in {
        s.failure.id for s in similar_failures(any_ledger, later.failure, min_score=0.0)
    }


def test_similar_failures_of_an_experiment_without_failure_is_empty(ledger: Ledger) -> None:
    ok = _run_ok(ledger, "train-mf", {"lr": 0.01})
    assert hindsight.similar_failures(ok) == []


# -- the index sees other writers -----------------------------------------------------------


def test_index_picks_up_failures_written_by_another_ledger(
    any_ledger: Ledger, tmp_path: Path
) -> None:
    _record(any_ledger, _crash(_lookup, "user_id"), source="data")
    assert len(any_ledger.index) == 1  # built now, before the other writer

    other = Ledger(Settings(home=tmp_path, store=any_ledger.settings.store_url))
    try:
        near = _record(other, _crash(_project_embeddings, 4))
    finally:
        other.close()

    query = _record(any_ledger, _crash(_matmul, 6))
    assert len(any_ledger.index) == 3
    assert [s.failure.id for s in query.similar] == [near.failure.id]
    assert not query.similar[0].exact


def test_an_exception_without_a_message_is_titled_by_its_type(ledger: Ledger) -> None:
    report = _record(ledger, _crash(next, iter([])))
    assert report.failure.exc_type == "StopIteration"
    assert report.failure.title == "StopIteration"


def test_record_failure_keeps_nan_and_numpy_evidence(any_ledger: Ledger) -> None:
    report = record_failure(
        any_ledger, "RuntimeError: Loss is nan", source="training",
        extra={"last_metrics": {"loss": float("nan"), "acc": np.float32(0.5)}},
    )
    stored = any_ledger.failure_record(report.failure.id).evidence
    assert stored["last_metrics"] == {"loss": "nan", "acc": 0.5}
