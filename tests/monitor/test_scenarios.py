"""The issue's monitoring scenarios end to end: resume screening and a feedback loop.

(The festive-sale fraud scenario is in test_runner.py.)
"""

from __future__ import annotations

import pyarrow as pa

from hindsight.data.profile import ProfileOptions, profile_table
from hindsight.demo.monitoring import DAY, recommender_feedback_loop, resume_screening
from hindsight.ledger import Ledger
from hindsight.monitor import AlertRule, FixedReference, Monitor
from hindsight.monitor.checks import DriftCheck, ExposureCheck, HoldoutCheck
from hindsight.monitor.runner import MonitorPlan, run_monitor

OPTS = ProfileOptions(threads=1)


def test_resume_screening_drift_names_the_changed_features(ledger: Ledger) -> None:
    sc = resume_screening()
    mon = Monitor("resumes", ledger=ledger, window="1d", options=OPTS)
    t = sc.table
    mon.log(t.drop_columns(["score", "decision"]), predictions=t.column("decision"),
            confidence=t.column("score"), timestamps="ts")  # fmt: skip
    tr = sc.training
    # The reference is the training data's profile, columns named as the monitor logs them.
    training = profile_table(
        pa.table({**{c: tr.column(c) for c in tr.column_names if c not in ("score", "decision")},
                  "prediction": tr.column("decision"), "confidence": tr.column("score")}),
        OPTS,
    )  # fmt: skip
    plan = MonitorPlan(mon, training, (DriftCheck(),),
                       rules=(AlertRule("input-drift", "drift", for_windows=2),))  # fmt: skip
    result = run_monitor(plan, now=sc.change_start + 7 * DAY)
    before = [w for w in result.windows if w.window_start < sc.change_start]
    after = [w for w in result.windows if w.window_start >= sc.change_start]
    assert len(before) == len(after) == 7
    assert not any(w.flagged for w in before)
    features = {"years_experience", "education", "top_skill", "n_skills", "keyword_density"}
    for w in after:
        assert {f.key for f in w.flagged} & features == set(sc.changed)
    # The new skills are named in the evidence.
    skill = next(f for f in after[0].findings if f.key == "top_skill")
    assert set(skill.evidence["details"]["unseen_categories"]) == {
        "llm-ops", "rag", "prompt-engineering"
    }  # fmt: skip
    alerted = {d.key for d in result.alerts}
    assert set(sc.changed) <= alerted and not alerted & {"years_experience", "education"}
    assert all(d.window_start == sc.change_start + DAY for d in result.alerts)


def test_a_recommender_reinforcing_itself(ledger: Ledger) -> None:
    sc = recommender_feedback_loop()
    mon = Monitor("recs", ledger=ledger, window="1d", options=OPTS,
                  crosstabs=[("slice", "clicked")])  # fmt: skip
    t = sc.table
    mon.log(t.drop_columns(["prediction"]), predictions=t.column("prediction"), timestamps="ts")
    assert mon.window_counts(sc.start)["slice|clicked"]["holdout"].keys() == {"true", "false"}
    first_week = FixedReference(sc.start, sc.start + 7 * DAY)
    plan = MonitorPlan(
        mon, first_week, (ExposureCheck(), HoldoutCheck()),
        rules=(AlertRule("concentration", "exposure", for_windows=2),
               AlertRule("holdout-gap", "holdout", severity="critical", for_windows=2)),
    )  # fmt: skip
    result = run_monitor(plan, now=sc.start + sc.days * DAY, since=sc.start + 7 * DAY)
    gini = [next(f for f in w.findings if f.monitor == "exposure").value for w in result.windows]
    assert all(g is not None for g in gini) and gini[-1] > gini[0] + 0.15  # concentrating
    fired = {d.rule: d for d in result.alerts}
    assert set(fired) == {"concentration", "holdout-gap"}
    assert fired["concentration"].window_start < fired["holdout-gap"].window_start
    gap = fired["holdout-gap"]
    assert gap.key == "slice=treated" and gap.failure_id is not None  # an incident
    first = next(f for f in result.windows[0].findings if f.monitor == "holdout")
    assert not first.flagged and first.value is not None and first.value > 0.08
