"""Learning metrics on a hand-computed fixture: every number below is worked out by hand.

The fixture is written straight into the store with chosen timestamps, so each
definition in the docstring of ``hindsight.ledger.learning`` can be checked
against arithmetic done in the comments.

Time axis: T0 = 1_700_000_000, D = one day, H = one hour, UNTIL = T0 + 14 D (two weeks).

project "recsys" (12 experiments)

=====  ==============  =========  ===================  ======================  ==========
exp    name            started    ended / status       outcome                 tags
=====  ==============  =========  ===================  ======================  ==========
A1     mf              0          +1H finished         success                 mf
A2     mf              1D         +2H crashed  -> F1   failure                 mf
A3     mf              2D         +1H crashed  -> F2   failure                 mf, dropout
A4     mf-tuned        3D         +4H finished         partial (builds on A3)  mf, dropout
A5     mf-tuned        4D         +6H finished         success                 mf, bpr
B1     two-tower       5D         +1H crashed  -> F3   failure                 two-tower
B2     two-tower       6D         +2H killed           (none)                  two-tower
B3     two-tower       8D         +10H finished        success                 two-tower, hard-neg
D1     lightgcn        9D         +1H crashed  -> F8   failure                 gnn
D2     lightgcn-v2     9D+2H      +2H finished         success (builds on D1)  gnn
B4     two-tower       10D        +1H crashed  -> F4   failure                 two-tower
C1     gbdt            12D        +3H crashed  -> F5   failure                 (none)
=====  ==============  =========  ===================  ======================  ==========

project "vision": V1 resnet 7D +1H success [resnet]; V2 resnet 13D +1H crashed -> F9 [resnet].

failures (fingerprint, created): F1 fpX 1D+2H, F2 fpX 2D+1H, F3 fpY 5D+1H, F4 fpY 10D+1H,
F5 fpZ 12D+3H, F6 fpW 9D (serving, no experiment), F7 fpW 11D (serving), F8 fpV 9D+1H,
F9 fpX 13D+1H (vision).

lessons (created, source, applied by): L1 1D+3H from F1, applied by A4 at 3D;
L2 5D+2H from B1; L3 12D+1H from C1 (recorded *during* C1, before its crash);
L5 13D from F6 (after F7 happened); L4 7D+2H from V1 (vision).
"""

from __future__ import annotations

import pytest

import hindsight
from hindsight.errors import LedgerError
from hindsight.ledger import Ledger, learning_metrics
from hindsight.ledger.learning import WEEK
from hindsight.store.schema import SCHEMA_VERSION

T0 = 1_700_000_000.0
H = 3600.0
D = 24 * H
UNTIL = T0 + 14 * D


def _exp(
    ledger: Ledger,
    exp_id: str,
    name: str,
    started: float,
    took: float,
    status: str,
    outcome: str | None,
    tags: list[str],
    project: str = "recsys",
    failure_id: str | None = None,
) -> None:
    ledger.store.insert(
        "experiment",
        {
            "id": exp_id,
            "project": project,
            "name": name,
            "hypothesis": "",
            "approach": "",
            "tags": tags,
            "config": {},
            "criteria": {},
            "status": status,
            "outcome": outcome,
            "verdicts": [],
            "summary": {},
            "started_at": T0 + started,
            "ended_at": T0 + started + took,
            "duration_s": took,
            "failure_id": failure_id,
            "schema_version": SCHEMA_VERSION,
        },
    )


def _failure(
    ledger: Ledger,
    failure_id: str,
    fp: str,
    created: float,
    experiment_id: str | None,
    project: str = "recsys",
) -> None:
    ledger.store.insert(
        "failure",
        {
            "id": failure_id,
            "experiment_id": experiment_id,
            "project": project,
            "source": "experiment" if experiment_id else "serving",
            "created_at": T0 + created,
            "exc_type": "ValueError",
            "message": fp,
            "frames": [],
            "log_tail": None,
            "exit_code": None,
            "fingerprint": fp,
            "masked_message": fp,
            "tokens": fp.lower(),
            "category": "code.error",
            "diagnosis": {},
            "evidence": {},
            "schema_version": SCHEMA_VERSION,
        },
    )


def _lesson(
    ledger: Ledger, lesson_id: str, created: float, source: str, project: str = "recsys"
) -> None:
    ledger.store.insert(
        "lesson",
        {
            "id": lesson_id,
            "project": project,
            "text": f"lesson {lesson_id}",
            "tags": [],
            "created_at": T0 + created,
            "schema_version": SCHEMA_VERSION,
        },
    )
    ledger.store.link_lesson(lesson_id, source, "source", T0 + created)


@pytest.fixture
def fixture_ledger(any_ledger: Ledger) -> Ledger:
    led = any_ledger
    ok, crashed = ("finished", "success"), ("crashed", "failure")
    _exp(led, "exp_a1", "mf", 0, 1 * H, *ok, ["mf"])
    _exp(led, "exp_a2", "mf", 1 * D, 2 * H, *crashed, ["mf"], failure_id="fail_f1")
    _exp(led, "exp_a3", "mf", 2 * D, 1 * H, *crashed, ["mf", "dropout"], failure_id="fail_f2")
    _exp(led, "exp_a4", "mf-tuned", 3 * D, 4 * H, "finished", "partial", ["mf", "dropout"])
    _exp(led, "exp_a5", "mf-tuned", 4 * D, 6 * H, *ok, ["mf", "bpr"])
    _exp(led, "exp_b1", "two-tower", 5 * D, 1 * H, *crashed, ["two-tower"], failure_id="fail_f3")
    _exp(led, "exp_b2", "two-tower", 6 * D, 2 * H, "killed", None, ["two-tower"])
    _exp(led, "exp_b3", "two-tower", 8 * D, 10 * H, *ok, ["two-tower", "hard-negatives"])
    _exp(led, "exp_d1", "lightgcn", 9 * D, 1 * H, *crashed, ["gnn"], failure_id="fail_f8")
    _exp(led, "exp_d2", "lightgcn-v2", 9 * D + 2 * H, 2 * H, *ok, ["gnn"])
    _exp(led, "exp_b4", "two-tower", 10 * D, 1 * H, *crashed, ["two-tower"], failure_id="fail_f4")
    _exp(led, "exp_c1", "gbdt", 12 * D, 3 * H, *crashed, [], failure_id="fail_f5")
    _exp(led, "exp_v1", "resnet", 7 * D, 1 * H, *ok, ["resnet"], project="vision")
    _exp(led, "exp_v2", "resnet", 13 * D, 1 * H, *crashed, ["resnet"], project="vision",
         failure_id="fail_f9")
    # An experiment started after UNTIL is outside every window below.
    _exp(led, "exp_late", "mf", 15 * D, 1 * H, *crashed, ["late-tag"])
    led.store.add_parent("exp_a4", "exp_a3")
    led.store.add_parent("exp_d2", "exp_d1")

    _failure(led, "fail_f1", "fpX", 1 * D + 2 * H, "exp_a2")
    _failure(led, "fail_f2", "fpX", 2 * D + 1 * H, "exp_a3")
    _failure(led, "fail_f3", "fpY", 5 * D + 1 * H, "exp_b1")
    _failure(led, "fail_f4", "fpY", 10 * D + 1 * H, "exp_b4")
    _failure(led, "fail_f5", "fpZ", 12 * D + 3 * H, "exp_c1")
    _failure(led, "fail_f6", "fpW", 9 * D, None)
    _failure(led, "fail_f7", "fpW", 11 * D, None)
    _failure(led, "fail_f8", "fpV", 9 * D + 1 * H, "exp_d1")
    _failure(led, "fail_f9", "fpX", 13 * D + 1 * H, "exp_v2", project="vision")
    _failure(led, "fail_late", "fpX", 15 * D + 1 * H, "exp_late")

    _lesson(led, "les_l1", 1 * D + 3 * H, "fail_f1")
    led.store.link_lesson("les_l1", "exp_a4", "applied", T0 + 3 * D)
    _lesson(led, "les_l2", 5 * D + 2 * H, "exp_b1")
    _lesson(led, "les_l3", 12 * D + 1 * H, "exp_c1")
    _lesson(led, "les_l5", 13 * D, "fail_f6")
    _lesson(led, "les_l4", 7 * D + 2 * H, "exp_v1", project="vision")
    # Recorded after UNTIL and applied after UNTIL: invisible to every window below.
    _lesson(led, "les_late", 15 * D, "exp_late")
    led.store.link_lesson("les_l2", "exp_late", "applied", T0 + 15 * D)
    return led


def test_recsys_over_two_weeks(fixture_ledger: Ledger) -> None:
    m = learning_metrics(fixture_ledger, project="recsys", until=UNTIL)

    # velocity: 12 experiments started in [T0 (first one), UNTIL]; 14 D = 2 weeks -> 12 / 2 = 6.
    assert m.experiments == 12
    assert m.weeks == pytest.approx(2.0)
    assert m.velocity_per_week == pytest.approx(6.0)

    # recovery, per line of work (same name, or joined by builds_on):
    #   line mf + mf-tuned (A4 builds on A3): A1 ok, A2 fails (ends 1D+2H), A3 fails (streak
    #     already open), A4 partial (neither), A5 succeeds (ends 4D+6H):
    #     4D+6H - (1D+2H) = 3D+4H = 76 H.
    #   line two-tower: B1 fails (ends 5D+1H), B2 killed (streak open), B3 succeeds
    #     (ends 8D+10H): 3D+9H = 81 H; then B4 fails and nothing follows: 1 unrecovered.
    #   line lightgcn (+ lightgcn-v2 by builds_on): D1 fails (ends 9D+1H), D2 succeeds
    #     (ends 9D+4H): 3 H.
    #   line gbdt: C1 fails: 1 unrecovered.
    #   recoveries [3, 76, 81] H: median 76, mean 160 / 3 = 53.33; unrecovered 2.
    assert m.recoveries == 3
    assert m.recovery_hours_median == pytest.approx(76.0)
    assert m.recovery_hours_mean == pytest.approx(160.0 / 3.0)
    assert m.unrecovered == 2

    # lesson application: L1, L2, L3, L5 recorded in the window; only L1 applied (by A4);
    # L2's application happened after UNTIL -> 1 / 4 = 0.25.
    assert m.lessons == 4
    assert m.lessons_applied == 1
    assert m.lesson_application_rate == pytest.approx(0.25)

    # repeats, over F1..F8 (8 failures; F9 is vision):
    #   F2 (fpX, 2D+1H): F1 had lesson L1 since 1D+3H < 2D+1H            -> repeat
    #   F4 (fpY, 10D+1H): F3's experiment B1 had L2 since 5D+2H < 10D+1H  -> repeat
    #   F5 (fpZ): L3 was recorded on C1 during the run, before F5 itself; the only failure
    #     with that lesson is F5 itself, so it is not a repeat (self-repeat guard).
    #   F7 (fpW, 11D): F6's lesson L5 came at 13D, after F7                -> not a repeat
    #   F1, F3, F6, F8: no earlier failure with a lesson.
    #   2 / 8 = 0.25.
    assert m.failures == 8
    assert m.repeat_failures == 2
    assert m.repeat_failure_rate == pytest.approx(0.25)

    # innovation, in start order: A1 (mf new), A3 (dropout), A5 (bpr), B1 (two-tower),
    # B3 (hard-negatives), D1 (gnn) introduce a tag; A2, A4, B2, D2, B4, C1 (no tags) do
    # not -> 6 / 12 = 0.5.
    assert m.innovative_experiments == 6
    assert m.innovation_index == pytest.approx(0.5)

    # efficiency: 0.3*0.25 + 0.3*(1 - 0.25) + 0.2*0.5 + 0.2*min(6/10, 1)
    #           = 0.075 + 0.225 + 0.1 + 0.12 = 0.52
    assert m.learning_efficiency == pytest.approx(0.52)
    d = m.to_dict()
    assert d["until_iso"] == "2023-11-28T22:13:20+00:00" and d["since_iso"] is None


def test_all_projects(fixture_ledger: Ledger) -> None:
    m = learning_metrics(fixture_ledger, until=UNTIL)
    # velocity: 12 + V1 + V2 = 14 experiments over 2 weeks -> 7.
    assert m.experiments == 14
    assert m.velocity_per_week == pytest.approx(7.0)
    # recovery: as for recsys, plus the resnet line V1 ok, V2 fails -> unrecovered 3.
    assert m.recoveries == 3
    assert m.recovery_hours_median == pytest.approx(76.0)
    assert m.unrecovered == 3
    # lessons: L1..L5 = 5, applied 1 -> 0.2.
    assert (m.lessons, m.lessons_applied) == (5, 1)
    assert m.lesson_application_rate == pytest.approx(0.2)
    # repeats: F2, F4 as before, plus F9 (fpX, 13D+1H) matching F1 with L1 -> 3 / 9.
    assert (m.failures, m.repeat_failures) == (9, 3)
    assert m.repeat_failure_rate == pytest.approx(1.0 / 3.0)
    # innovation: 6 in recsys + V1 (resnet is new *in vision*) -> 7 / 14 = 0.5.
    assert m.innovative_experiments == 7
    assert m.innovation_index == pytest.approx(0.5)
    # efficiency: 0.3*0.2 + 0.3*(2/3) + 0.2*0.5 + 0.2*0.7 = 0.06 + 0.2 + 0.1 + 0.14 = 0.5
    assert m.learning_efficiency == pytest.approx(0.5)


def test_project_filter(fixture_ledger: Ledger) -> None:
    m = hindsight.learning_metrics("vision", until=UNTIL)
    # velocity: 2 experiments; the window starts at V1 (7D) -> 7 days = 1 week -> 2.
    assert m.experiments == 2
    assert m.weeks == pytest.approx(1.0)
    assert m.velocity_per_week == pytest.approx(2.0)
    # recovery: V1 ok, V2 fails -> nothing recovered, 1 unrecovered.
    assert (m.recoveries, m.unrecovered) == (0, 1)
    assert m.recovery_hours_median is None and m.recovery_hours_mean is None
    # lessons: L4, not applied -> 0 / 1.
    assert (m.lessons, m.lessons_applied, m.lesson_application_rate) == (1, 0, 0.0)
    # repeats: F9 matches recsys' F1 only across projects -> 0 / 1 here.
    assert (m.failures, m.repeat_failures, m.repeat_failure_rate) == (1, 0, 0.0)
    # innovation: V1 (resnet) -> 1 / 2.
    assert m.innovation_index == pytest.approx(0.5)
    # efficiency: 0.3*0 + 0.3*(1 - 0) + 0.2*0.5 + 0.2*min(2/10, 1) = 0.3 + 0.1 + 0.04 = 0.44
    assert m.learning_efficiency == pytest.approx(0.44)


def test_since_window(fixture_ledger: Ledger) -> None:
    m = learning_metrics(fixture_ledger, project="recsys", since=T0 + 7 * D, until=UNTIL)
    # velocity: B3, D1, D2, B4, C1 started in [7D, 14D]; 7 days = 1 week -> 5.
    assert m.experiments == 5
    assert m.weeks == pytest.approx(1.0)
    assert m.velocity_per_week == pytest.approx(5.0)
    # recovery within the window: B3 ok then B4 fails (unrecovered); D1 fails at 9D+1H,
    # D2 succeeds at 9D+4H (3 H); C1 fails (unrecovered).
    assert m.recoveries == 1
    assert m.recovery_hours_median == pytest.approx(3.0)
    assert m.recovery_hours_mean == pytest.approx(3.0)
    assert m.unrecovered == 2
    # lessons recorded in the window: L3 (12D+1H), L5 (13D); neither applied -> 0 / 2.
    assert (m.lessons, m.lessons_applied) == (2, 0)
    assert m.lesson_application_rate == 0.0
    # failures in the window: F6 (9D), F8 (9D+1H), F4 (10D+1H), F7 (11D), F5 (12D+3H) = 5;
    # F4 repeats F3 (outside the window, but earlier and with a lesson) -> 1 / 5 = 0.2.
    assert (m.failures, m.repeat_failures) == (5, 1)
    assert m.repeat_failure_rate == pytest.approx(0.2)
    # innovation: B3 (hard-negatives) and D1 (gnn) are new against *all* earlier
    # experiments of the project; D2, B4, C1 are not -> 2 / 5 = 0.4.
    assert m.innovative_experiments == 2
    assert m.innovation_index == pytest.approx(0.4)
    # efficiency: 0.3*0 + 0.3*(1 - 0.2) + 0.2*0.4 + 0.2*min(5/10, 1) = 0.24 + 0.08 + 0.1 = 0.42
    assert m.learning_efficiency == pytest.approx(0.42)


def test_an_application_after_until_does_not_count(fixture_ledger: Ledger) -> None:
    # As of 2D+12H, L1 (recorded 1D+3H) exists but A4 applies it only at 3D -> 0 / 1.
    m = learning_metrics(fixture_ledger, project="recsys", until=T0 + 2 * D + 12 * H)
    assert (m.lessons, m.lessons_applied, m.lesson_application_rate) == (1, 0, 0.0)
    # 3 experiments (A1..A3), window shorter than a week -> 1 week -> 3 / week.
    assert m.experiments == 3 and m.velocity_per_week == pytest.approx(3.0)
    # F2 is already a repeat of F1 (lesson at 1D+3H < 2D+1H) -> 1 / 2.
    assert (m.failures, m.repeat_failures) == (2, 1)
    # A2 and A3 fail, no success yet -> 1 unrecovered streak.
    assert (m.recoveries, m.unrecovered) == (0, 1)


def test_a_long_window_counts_its_real_length(fixture_ledger: Ledger) -> None:
    # 12 experiments over 28 days = 4 weeks -> 3 / week.
    m = learning_metrics(fixture_ledger, project="recsys", since=T0, until=T0 + 28 * D)
    assert m.weeks == pytest.approx(28 * D / WEEK) == 4.0
    # exp_late (15D) is inside this window: 13 experiments -> 13 / 4.
    assert m.experiments == 13
    assert m.velocity_per_week == pytest.approx(13 / 4)


def test_empty_ledger(any_ledger: Ledger) -> None:
    m = learning_metrics(any_ledger, until=UNTIL)
    assert m.experiments == 0 and m.failures == 0 and m.lessons == 0
    assert m.weeks == 1.0 and m.velocity_per_week == 0.0
    assert m.recovery_hours_median is None and m.recovery_hours_mean is None
    assert m.recoveries == 0 and m.unrecovered == 0
    assert m.lesson_application_rate is None
    assert m.repeat_failure_rate is None
    assert m.innovation_index is None
    # Undefined rates count as 0, and no failures as no repeats: 0.3 * (1 - 0).
    assert m.learning_efficiency == pytest.approx(0.3)


def test_default_until_is_now(fixture_ledger: Ledger) -> None:
    # Everything is in the past, so "now" sees the late records too, but not their future.
    now = learning_metrics(fixture_ledger, project="vision")
    fixed = learning_metrics(fixture_ledger, project="vision", until=UNTIL)
    assert now.experiments == fixed.experiments == 2
    assert now.lessons == fixed.lessons


def test_a_run_without_an_outcome_is_not_a_recovery(ledger: Ledger) -> None:
    # x1 crashes (ends 0+1H), x2 finishes without criteria (no outcome: not a success),
    # x3 succeeds (ends 2D+2H): recovery = 2D+2H - 1H = 49 H. A running x4 is left out.
    _exp(ledger, "exp_x1", "x", 0, 1 * H, "crashed", "failure", [])
    _exp(ledger, "exp_x2", "x", 1 * D, 1 * H, "finished", None, [])
    _exp(ledger, "exp_x3", "x", 2 * D, 2 * H, "finished", "success", [])
    m = learning_metrics(ledger, until=UNTIL)
    assert (m.recoveries, m.unrecovered) == (1, 0)
    assert m.recovery_hours_median == pytest.approx(49.0)


def test_a_window_that_ends_before_it_starts_is_refused(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="starts after it ends"):
        learning_metrics(ledger, since=UNTIL, until=T0)
