"""The demo's evaluation act: the recommenders judged by what their misses cost, by slice.

Every evaluated user gets a top-10 list; a list that earns no click is a miss. A returning
user's miss costs one lost session. A new user's miss costs :data:`MISS_COST` ``["new"]``
sessions: a newcomer whose first lists show nothing relevant rarely comes back (the
weights are the demo team's assumption, stated in the report). ``hindsight.evaluate``
prices each model's misses per user, breaks them down by new and returning users and
searches for the slices where the cost concentrates; for the collaborative-filtering
baseline it finds ``user == 'new'``, the reason the baseline failed. The verdicts against
:data:`EVAL_CRITERIA` are logged to each experiment and the reports (JSON and offline HTML)
written next to the post-mortems. The journey judges each model while its experiment
runs (:func:`judge_lists`, then ``Evaluation.log_to``); :func:`run_evaluation_demo` tells
the story and writes the reports.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from hindsight.demo.recsys import CTR_NEW_USERS_TARGET, Recommender, RecsysData
from hindsight.demo.recsys.evaluation import user_outcomes

if TYPE_CHECKING:
    from hindsight.evaluate import Evaluation
    from hindsight.ledger import Experiment

__all__ = [
    "EVAL_CRITERIA",
    "MISS_COST",
    "EvaluationActResult",
    "judge_lists",
    "run_evaluation_demo",
]

Say = Callable[[str], None]

#: Lost sessions a list without a click costs, by kind of user.
MISS_COST = {"returning": 1.0, "new": 4.0}
#: What a recommender must meet when judged by cost and by slice.
EVAL_CRITERIA = {
    "expected_cost": "<= 0.45",
    "recall@user=new": f">= {CTR_NEW_USERS_TARGET}",
}
#: Only slices at least one lost session per user worse than the rest are worth a line.
FIND = {"min_effect": 1.0, "columns": ["user", "history", "held_out"]}


@dataclass
class EvaluationActResult:
    """Each model's verdict, cost and worst slice, and where its reports were written."""

    models: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def judge_lists(model: Recommender, data: RecsysData, *, k: int = 10) -> Evaluation:
    """Price ``model``'s top-``k`` lists per user, by new and returning users, with slices.

    Each row is a user who clicked something held out (``wanted``); the list delivered
    (``hit``) or missed, so recall is the hit rate and the false negatives are the misses,
    each costing :data:`MISS_COST` of that user's kind.
    """
    from hindsight.evaluate import evaluate

    outcomes = user_outcomes(model, data, k)
    kind = outcomes["user"]
    table = pa.table(
        {
            "user": kind,
            "history": outcomes["history"],
            "held_out": outcomes["held_out"],
            "wanted": np.ones(kind.size, dtype=bool),
            "hit": outcomes["hit"],
            "miss_cost": np.where(kind == "new", MISS_COST["new"], MISS_COST["returning"]),
        }
    )
    return evaluate(
        "wanted",
        "hit",
        costs={"fn": "miss_cost", "fp": 0.0},
        segments="user",
        find=FIND,
        data=table,
        name=f"top-{k} lists, priced by lost sessions",
    )


def run_evaluation_demo(
    judged: dict[str, tuple[Evaluation, Experiment]],
    *,
    out_dir: Path | None = None,
    say: Say = print,
) -> EvaluationActResult:
    """Report each experiment's :func:`judge_lists` evaluation: verdicts, cost, worst slice.

    The evaluations were logged to their experiments while they ran (``Evaluation.log_to``),
    so the ledger judged :data:`EVAL_CRITERIA` with the rest of their criteria.
    """
    from hindsight.evaluate import evaluation_report, write_evaluation_html

    say(
        "\n[8] judged by cost: a list without a click costs a returning user 1 session, "
        f"a new user {MISS_COST['new']:g}"
    )
    result = EvaluationActResult()
    for name, (ev, exp) in judged.items():
        report = evaluation_report(ev, criteria=EVAL_CRITERIA, source=f"{name} ({exp.id})")
        flat = ev.flat()
        worst = ev.found.slices[0] if ev.found is not None and ev.found.slices else None
        entry: dict[str, Any] = {
            "experiment": exp.id,
            "passed": report["passed"],
            "expected_cost": flat["expected_cost"],
            "expected_cost_ci": list(ev.costs["expected_cost_ci"]) if ev.costs else None,
            "hit_rate_returning": flat["recall@user=returning"],
            "hit_rate_new": flat["recall@user=new"],
            "cost_new": flat["expected_cost@user=new"],
            "cost_returning": flat["expected_cost@user=returning"],
            "worst_slice": None if worst is None else worst.to_dict(),
            "missed": [v["metric"] for v in report["criteria"] if v["verdict"] != "met"],
        }
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            base = out_dir / f"evaluation-{name}"
            base.with_suffix(".json").write_text(json.dumps(report, indent=2), encoding="utf-8")
            entry["report"] = str(write_evaluation_html(report, base.with_suffix(".html")))
        result.models[name] = entry
        lo, hi = entry["expected_cost_ci"] or (float("nan"), float("nan"))
        verdict = (
            "meets the criteria" if entry["passed"] else "misses " + ", ".join(entry["missed"])
        )
        say(
            f"  {name}: {entry['expected_cost']:.3f} lost sessions per user "
            f"(95% CI {lo:.3f}-{hi:.3f}); new users {entry['cost_new']:.2f}, returning "
            f"{entry['cost_returning']:.2f}; hit rate new {entry['hit_rate_new']:.2f}: {verdict}"
        )
        if worst is not None:
            say(
                f"    where the cost concentrates: {worst.expr} ({worst.size} users, "
                f"{worst.loss:.2f} against {worst.rest_loss:.2f} for the rest, "
                f"q={worst.q_value:.1g})"
            )
        else:
            say("    no slice is a session per user worse than the rest")
        if "report" in entry:
            say(f"    report: {entry['report']}")
    return result
