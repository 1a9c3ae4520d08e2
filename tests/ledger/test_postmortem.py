"""Post-mortems: drafted from a real crash's evidence, round-tripped and edited as Markdown."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import hindsight
from hindsight.errors import LedgerError
from hindsight.ledger import (
    Ledger,
    PostMortem,
    add_lesson,
    draft_postmortem,
    experiment,
    parse_markdown,
    postmortem_markdown,
    record_failure,
    update_postmortem,
)
from hindsight.ledger.postmortem import SECTIONS


def _forward(users: int, dim: int) -> np.ndarray:
    """A real shape bug: the user embeddings and the item matrix disagree on ``dim``."""
    return np.ones((users, dim)) @ np.ones((dim - 1, 8))


@dataclass
class Story:
    good: str
    earlier: str
    earlier_failure: str
    lesson: str
    crashed: str
    failure: str


def _story(ledger: Ledger, *, apply_lesson: bool = False) -> Story:
    with experiment(
        "train-mf", config={"lr": 0.01, "batch": 64}, criteria={"ctr": ">= 0.6"},
        quiet=True, ledger=ledger,
    ) as good:
        good.log_metric("ctr", 0.65)
    with pytest.raises(ValueError), experiment(
        "train-mf-sweep", config={"lr": 0.05}, quiet=True, ledger=ledger
    ) as earlier:
        _forward(16, 32)
    earlier_failure = earlier.record.failure_id
    assert earlier_failure is not None
    lesson = add_lesson(
        ledger, "Derive the item matrix shape from emb_dim", sources=[earlier_failure]
    )
    with pytest.raises(ValueError), experiment(
        "train-mf",
        hypothesis="A larger embedding lifts CTR",
        config={"lr": 0.1, "batch": 64, "emb_dim": 33},
        applies=[lesson.id] if apply_lesson else [],
        quiet=True,
        ledger=ledger,
    ) as crashed:
        for step in range(3):
            crashed.log_metric("loss", 2.0 - 0.5 * step)
        crashed.flush()
        crashed.next_step("Try emb_dim 32 again with the fixed projection")
        _forward(128, 33)
    failure = crashed.record.failure_id
    assert failure is not None
    return Story(good.id, earlier.id, earlier_failure, lesson.id, crashed.id, failure)


def test_draft_fills_every_section_from_the_evidence(any_ledger: Ledger) -> None:
    s = _story(any_ledger)
    pm = hindsight.draft_postmortem(s.failure)
    failure = any_ledger.failure_record(s.failure)
    d = failure.diagnosis
    b = pm.body

    assert pm.id.startswith("pm_") and pm.status == "draft"
    assert (pm.failure_id, pm.experiment_id, pm.project) == (s.failure, s.crashed, "default")
    assert pm.title.startswith("train-mf: ")
    assert any_ledger.postmortem(pm.id) == pm

    for key in [*SECTIONS, "timeline", "action_items", "lessons", "evidence"]:
        assert b.get(key), key
    assert s.crashed in b["summary"] and "crashed" in b["summary"]
    assert "A larger embedding lifts CTR" in b["summary"]
    assert "ValueError" in b["summary"]
    assert "happened 1 time(s) before" in b["impact"]
    assert "1 metric(s)" in b["impact"]
    assert d["likely_cause"] in b["root_cause"] and d["category"] in b["root_cause"]
    assert d["category"] == "dl.shape_mismatch"
    # The trigger names what changed since the last good run of the same name.
    assert s.good in b["trigger"]
    assert "lr: 0.01 -> 0.1" in b["trigger"] and "+emb_dim=33" in b["trigger"]
    assert failure.fingerprint in b["detection"]
    assert "earlier lesson exists" in b["went_well"]
    assert s.lesson in b["went_wrong"] and "not applied" in b["went_wrong"]

    # Timeline: in time order, from the earlier occurrence to this failure.
    events = [e["event"] for e in b["timeline"]]
    ats = [e["at"] for e in b["timeline"]]
    assert ats == sorted(ats)
    assert events[0] == f"Earlier occurrence {s.earlier_failure}"
    assert events[-1].startswith(f"Failure {s.failure} recorded: ValueError")
    order = [
        next(i for i, e in enumerate(events) if e.startswith(prefix))
        for prefix in (
            "Earlier occurrence",
            f"Experiment {s.crashed} started",
            "Last 'loss' logged at step 2",
            "Next step noted: Try emb_dim 32",
            f"Failure {s.failure}",
        )
    ]
    assert order == sorted(order)

    assert b["action_items"] == [
        {"text": r, "owner": "", "status": "open"} for r in d["recommendations"]
    ]
    assert b["lessons"] == [{"id": s.lesson, "text": "Derive the item matrix shape from emb_dim"}]
    ev = b["evidence"]
    assert ev["failure_id"] == s.failure and ev["experiment_id"] == s.crashed
    assert ev["category"] == "dl.shape_mismatch"
    assert ev["last_metrics"] == {"loss": 1.0}
    assert [x["id"] for x in ev["similar"]] == [s.earlier_failure]
    assert ev["similar"][0]["occurrences"] == 1


def test_a_lesson_the_run_applied_is_not_called_unapplied(ledger: Ledger) -> None:
    s = _story(ledger, apply_lesson=True)
    pm = draft_postmortem(ledger, s.failure)
    assert "not applied" not in pm.body["went_wrong"]
    assert s.lesson in pm.body["went_wrong"] and "happened again" in pm.body["went_wrong"]


def test_draft_of_a_failure_outside_any_experiment(ledger: Ledger) -> None:
    report = record_failure(
        ledger, "OSError: [Errno 28] No space left on device: '/ckpt/a.pt'", source="serving"
    )
    pm = draft_postmortem(ledger, report.failure.id)
    assert pm.experiment_id is None
    assert pm.title.startswith("serving: ")
    assert "from the serving" in pm.body["summary"]
    assert [e["event"].split(" ")[0] for e in pm.body["timeline"]] == ["Failure"]
    assert pm.body["action_items"]  # disk-full advice
    assert "To determine" in pm.body["trigger"]


def test_markdown_round_trip_preserves_sections_items_and_lessons(any_ledger: Ledger) -> None:
    s = _story(any_ledger)
    pm = draft_postmortem(any_ledger, s.failure)
    md = postmortem_markdown(pm)
    assert md.startswith(f"# {pm.title}\n")
    assert "Blameless" in md and "## Evidence" in md
    for heading in [*SECTIONS.values(), "Timeline", "Action items", "Lessons"]:
        assert f"\n## {heading}\n" in md

    parsed = parse_markdown(md)
    assert parsed["title"] == pm.title
    sections = parsed["sections"]
    for key in SECTIONS:
        assert sections[key] == pm.body[key].strip(), key
    assert sections["timeline"] == pm.body["timeline"]
    assert sections["action_items"] == pm.body["action_items"]
    assert sections["lessons"] == pm.body["lessons"]
    assert "evidence" not in sections

    # Updating with an unchanged round trip changes nothing and records no lesson.
    same = update_postmortem(any_ledger, pm.id, title=parsed["title"], sections=sections)
    assert {k: v for k, v in same.body.items()} == pm.body
    assert len(hindsight.ledger.list_lessons(any_ledger)) == 1


def test_editing_the_markdown_records_new_lessons(any_ledger: Ledger) -> None:
    s = _story(any_ledger)
    pm = draft_postmortem(any_ledger, s.failure)
    md = postmortem_markdown(pm)
    first_action = pm.body["action_items"][0]["text"]
    md = md.replace(f"- [ ] {first_action}", f"- [x] {first_action} (owner: alice)")
    md = md.replace(
        "## Lessons\n\n",
        "## Lessons\n\n- Check the projection shape in a unit test\n",
    )
    md = md.replace("## Impact\n\n", "## Impact\n\nTwo GPU hours lost; no user impact.\n\n")
    parsed = parse_markdown(md)

    edited = update_postmortem(
        any_ledger, pm.id, title="MF crash on emb_dim 33", status="reviewed",
        sections=parsed["sections"],
    )
    assert edited.title == "MF crash on emb_dim 33" and edited.status == "reviewed"
    assert edited.updated_at >= pm.updated_at
    assert edited.body["impact"].startswith("Two GPU hours lost; no user impact.")
    assert edited.body["action_items"][0] == {
        "text": first_action, "owner": "alice", "status": "done",
    }
    assert all(a["status"] == "open" for a in edited.body["action_items"][1:])

    lessons = edited.body["lessons"]
    assert [les["text"] for les in lessons] == [
        "Check the projection shape in a unit test",
        "Derive the item matrix shape from emb_dim",
    ]
    new_id = lessons[0]["id"]
    assert new_id and new_id.startswith("les_") and lessons[1]["id"] == s.lesson
    new = any_ledger.lessons_by_id([new_id])[0]
    assert set(new.sources) == {pm.id, s.failure, s.crashed}
    assert new.project == pm.project
    assert new in any_ledger.lessons_for([pm.id])

    # Editing again keeps the lesson's id: no duplicate.
    again = update_postmortem(
        any_ledger, pm.id, sections=parse_markdown(postmortem_markdown(edited))["sections"]
    )
    assert again.body["lessons"] == lessons
    assert len(any_ledger.lessons_for([pm.id])) == 1
    md2 = postmortem_markdown(again)
    assert f"- [x] {first_action} (owner: alice)" in md2
    assert f"- Check the projection shape in a unit test ({new_id})" in md2
    assert "status: reviewed" in md2


def test_edits_through_the_api_take_plain_lesson_strings(ledger: Ledger) -> None:
    report = record_failure(ledger, "RuntimeError: CUDA error: device-side assert", source="training")
    pm = draft_postmortem(ledger, report.failure.id)
    out = update_postmortem(
        ledger, pm.id, sections={"root_cause": "Label 10 in a 10-class head.",
                                 "lessons": ["Validate label range before training"]},
    )
    assert out.body["root_cause"] == "Label 10 in a 10-class head."
    assert out.body["lessons"][0]["text"] == "Validate label range before training"
    les = ledger.lessons_by_id([out.body["lessons"][0]["id"]])[0]
    assert set(les.sources) == {pm.id, report.failure.id}


def test_unknown_section_and_bad_status_are_refused(ledger: Ledger) -> None:
    report = record_failure(ledger, "ValueError: bad", source="data")
    pm = draft_postmortem(ledger, report.failure.id)
    with pytest.raises(LedgerError, match="Unknown post-mortem section 'blame'"):
        update_postmortem(ledger, pm.id, sections={"blame": "Bob"})
    with pytest.raises(LedgerError, match="Unknown post-mortem section 'evidence'"):
        update_postmortem(ledger, pm.id, sections={"evidence": {}})
    with pytest.raises(LedgerError, match="status must be one of"):
        update_postmortem(ledger, pm.id, status="done", sections={"lessons": ["Never lose this"]})
    # Nothing was written by the refused edits, not even the lesson.
    assert ledger.postmortem(pm.id) == pm
    assert hindsight.ledger.list_lessons(ledger) == []
    with pytest.raises(LedgerError, match="Unknown section '## Blame'"):
        parse_markdown(postmortem_markdown(pm) + "\n## Blame\n\nBob\n")


def test_postmortem_to_dict(ledger: Ledger) -> None:
    report = record_failure(ledger, "ValueError: bad", source="data")
    pm: PostMortem = draft_postmortem(ledger, report.failure.id)
    d = pm.to_dict()
    assert d["id"] == pm.id and d["created"] and d["updated"]


def test_hand_written_markdown_is_not_lost(ledger: Ledger) -> None:
    report = record_failure(ledger, "ValueError: bad", source="data")
    pm = draft_postmortem(ledger, report.failure.id)
    md = postmortem_markdown(pm)
    md = md.replace(
        "## Action items\n\n",
        "## Action items\n\n- Add a schema check (owner: bob)\n* [x] Re-run the import\n",
    )
    md = md.replace("## Lessons\n\n", "## Lessons\n\n* Validate inputs at the boundary\n")
    md = md.replace("## Timeline\n\n", "## Timeline\n\n- Paged the on-call\n")
    sections = parse_markdown(md)["sections"]
    assert sections["action_items"][:2] == [
        {"text": "Add a schema check", "owner": "bob", "status": "open"},
        {"text": "Re-run the import", "owner": "", "status": "done"},
    ]
    assert sections["lessons"] == [{"text": "Validate inputs at the boundary", "id": None}]
    assert sections["timeline"][0] == {"at": "", "event": "Paged the on-call"}
    assert sections["timeline"][1:] == pm.body["timeline"]

    edited = update_postmortem(ledger, pm.id, sections=sections)
    again = parse_markdown(postmortem_markdown(edited))["sections"]
    assert again["timeline"] == edited.body["timeline"]
    assert again["action_items"] == edited.body["action_items"]
    assert again["lessons"] == edited.body["lessons"]


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"action_items": [{"text": "Fix it", "status": "wip"}]}, "status must be one of open"),
        ({"action_items": [{"owner": "bob"}]}, "needs a non-empty 'text'"),
        ({"action_items": "Fix it"}, "is a list"),
        ({"lessons": ["Keep this", {"text": ""}]}, "needs a non-empty 'text'"),
        ({"timeline": [{"at": "10:00"}]}, "needs a non-empty 'event'"),
        ({"summary": ["not", "text"]}, "is text"),
    ],
)
def test_malformed_sections_are_refused_before_anything_is_written(
    ledger: Ledger, sections: dict[str, object], message: str
) -> None:
    report = record_failure(ledger, "ValueError: bad", source="data")
    pm = draft_postmortem(ledger, report.failure.id)
    with pytest.raises(LedgerError, match=message):
        update_postmortem(ledger, pm.id, sections=sections)
    assert ledger.postmortem(pm.id) == pm
    assert hindsight.ledger.list_lessons(ledger) == []


def test_api_edits_are_stored_in_one_shape(ledger: Ledger) -> None:
    report = record_failure(ledger, "ValueError: bad", source="data")
    pm = draft_postmortem(ledger, report.failure.id)
    out = update_postmortem(
        ledger, pm.id,
        sections={"action_items": ["Add a check", {"text": "Page", "owner": "al"}],
                  "timeline": ["Rolled back"], "impact": None},
    )
    assert out.body["action_items"] == [
        {"text": "Add a check", "owner": "", "status": "open"},
        {"text": "Page", "owner": "al", "status": "open"},
    ]
    assert out.body["timeline"] == [{"at": "", "event": "Rolled back"}]
    assert out.body["impact"] == ""


def test_trigger_falls_back_to_the_run_it_builds_on(ledger: Ledger) -> None:
    # No earlier success of the same name: the config is diffed against the parent run.
    with experiment("ranker", config={"emb_dim": 32}, quiet=True, ledger=ledger) as parent:
        parent.log_metric("ctr", 0.7)
    with pytest.raises(ValueError), experiment(
        "ranker-v2", config={"emb_dim": 48}, builds_on=[parent.id], quiet=True, ledger=ledger
    ) as child:
        _forward(4, 48)
    assert child.failure is not None
    pm = draft_postmortem(ledger, child.failure.failure.id)
    assert f"since the run it builds on {parent.id}" in pm.body["trigger"]
    assert "emb_dim: 32 -> 48" in pm.body["trigger"]
