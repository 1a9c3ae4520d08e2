"""The demo's evaluation act: per-user outcomes, the pricing of misses and the reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hindsight.demo.evaluation_act import (
    EVAL_CRITERIA,
    MISS_COST,
    judge_lists,
    run_evaluation_demo,
)
from hindsight.demo.recsys import (
    HybridRecommender,
    MatrixFactorization,
    RecsysData,
    evaluate,
    make_dataset,
)
from hindsight.demo.recsys.evaluation import per_user_hits, user_outcomes
from hindsight.evaluate import Evaluation
from hindsight.ledger import Ledger, experiment


@pytest.fixture(scope="module")
def data() -> RecsysData:
    return make_dataset(seed=7)


@pytest.fixture(scope="module")
def mf(data: RecsysData) -> MatrixFactorization:
    return MatrixFactorization().fit(data)


@pytest.fixture(scope="module")
def hybrid(data: RecsysData) -> HybridRecommender:
    return HybridRecommender().fit(data)


def test_per_user_hits_by_hand() -> None:
    top = np.array([[1, 2, 3], [4, 5, 6]])
    hits, ndcg = per_user_hits(top, [np.array([3, 9]), np.array([7])])
    assert hits.tolist() == [True, False]
    # A hit at rank 3 of an ideal list of two: (1/log2 4) / (1 + 1/log2 3).
    assert ndcg[0] == pytest.approx(0.5 / (1 + 1 / np.log2(3)))
    assert ndcg[1] == 0.0


def test_user_outcomes_agree_with_the_offline_evaluation(
    data: RecsysData, mf: MatrixFactorization
) -> None:
    out = user_outcomes(mf, data)
    metrics = evaluate(mf, data, latency_requests=3)
    kind = out["user"]
    assert (kind == "returning").sum() == data.n_users and (kind == "new").sum() == data.n_new_users
    assert out["hit"][kind == "returning"].mean() == pytest.approx(metrics["ctr"])
    assert out["hit"][kind == "new"].mean() == pytest.approx(metrics["ctr_new_users"])
    assert out["ndcg"][kind == "returning"].mean() == pytest.approx(metrics["ndcg_at_10"])
    np.testing.assert_array_equal(
        out["history"][kind == "returning"], np.bincount(data.train_users, minlength=data.n_users)
    )
    assert np.all(out["history"][kind == "new"] == 0)
    assert out["held_out"].sum() == data.test_users.size + data.new_test_users.size
    with pytest.raises(ValueError, match="k must be in"):
        user_outcomes(mf, data, k=0)


def test_misses_are_priced_by_kind_of_user(data: RecsysData, mf: MatrixFactorization) -> None:
    out = user_outcomes(mf, data)
    ev = judge_lists(mf, data)
    cost = np.where(out["hit"], 0.0, np.where(out["user"] == "new", MISS_COST["new"], 1.0))
    flat = ev.flat()
    assert flat["expected_cost"] == pytest.approx(cost.mean())
    assert flat["expected_cost@user=new"] == pytest.approx(cost[out["user"] == "new"].mean())
    assert flat["recall@user=new"] == pytest.approx(out["hit"][out["user"] == "new"].mean())
    assert flat["recall"] == pytest.approx(out["hit"].mean())
    assert ev.found is not None and [s.expr for s in ev.found.slices] == ["user == 'new'"]
    assert not ev.passes(EVAL_CRITERIA)


def test_the_hybrid_meets_the_criteria_and_the_act_reports_it(
    data: RecsysData,
    mf: MatrixFactorization,
    hybrid: HybridRecommender,
    ledger: Ledger,
    tmp_path: Path,
) -> None:
    judged: dict[str, tuple[Evaluation, object]] = {}
    for name, model in (("cf", mf), ("hybrid", hybrid)):
        with experiment(name, criteria=EVAL_CRITERIA, ledger=ledger, quiet=True) as exp:
            ev = judge_lists(model, data)
            ev.log_to(exp)
        judged[name] = (ev, exp)
        assert exp.record.outcome == ("success" if name == "hybrid" else "failure")
    lines: list[str] = []
    result = run_evaluation_demo(judged, out_dir=tmp_path, say=lines.append)  # type: ignore[arg-type]
    cf, hy = result.models["cf"], result.models["hybrid"]
    assert cf["passed"] is False and hy["passed"] is True
    assert cf["worst_slice"]["expr"] == "user == 'new'" and hy["worst_slice"] is None
    report = json.loads((tmp_path / "evaluation-cf.json").read_text(encoding="utf-8"))
    assert report["passed"] is False
    assert {v["metric"] for v in report["criteria"]} == set(EVAL_CRITERIA)
    page = Path(hy["report"]).read_text(encoding="utf-8")
    assert "user = new" in page and "Every criterion met" in page
    assert 'src="http' not in page and 'href="http' not in page  # an offline page
    assert any("user == 'new'" in line for line in lines)
