"""False-positive analysis: planted segments and outcomes found, checked against SciPy;
null data stays quiet; bad input; the lesson candidate in the ledger."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import stats
from scipy.stats.contingency import odds_ratio, relative_risk
from sklearn.metrics import roc_auc_score

from hindsight.errors import ConfigError, DataError
from hindsight.evaluate.false_positives import (
    FalsePositiveReport,
    analyze_false_positives,
    record_lesson_candidate,
)
from hindsight.ledger import Ledger, experiment, list_lessons

N = 20_000
P_NEW = 0.15  # share of new accounts
FP_RATE = {"new_account": 0.15, "other": 0.02}  # P(flagged | genuine, segment)
CHURN_FP, CHURN_REST = 0.32, 0.08  # planted churn rates: false positives vs everyone else


def _planted(seed: int = 7) -> dict[str, Any]:
    """A fraud detector whose false alarms crowd into new accounts and precede churn."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(["new_account", "regular", "business"], N, p=[P_NEW, 0.7, 0.15])
    fraud = rng.random(N) < 0.03
    fp_rate = np.where(segment == "new_account", FP_RATE["new_account"], FP_RATE["other"])
    flagged = np.where(fraud, rng.random(N) < 0.8, rng.random(N) < fp_rate)
    fp = ~fraud & flagged
    return {
        "segment": segment,
        "amount": rng.lognormal(3, 1, N) * np.where(fp, 1.5, 1.0),
        "weekend": rng.random(N) < 0.3,
        "churned_30d": (rng.random(N) < np.where(fp, CHURN_FP, CHURN_REST)).astype(int),
        "spend_next_30d": rng.gamma(2.0, 50.0, N) * np.where(fp, 0.7, 1.0),
        "is_fraud": fraud.astype(int),
        "flagged": flagged.astype(int),
        "score": np.clip(0.5 * flagged + 0.5 * rng.random(N), 0, 1),
    }


@pytest.fixture(scope="module")
def planted() -> tuple[dict[str, Any], FalsePositiveReport]:
    data = _planted()
    report = analyze_false_positives(
        data,
        "is_fraud",
        "flagged",
        scores="score",
        outcomes=["churned_30d", "spend_next_30d"],
    )
    return data, report


def _masks(data: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, p = data["is_fraud"] == 1, data["flagged"] == 1
    return ~y & p, ~y & ~p, y & p


def test_counts_and_default_columns(planted: tuple[dict[str, Any], FalsePositiveReport]) -> None:
    data, report = planted
    fp, tn, tp = _masks(data)
    assert (report.n, report.n_fp, report.n_tn, report.n_tp) == (N, fp.sum(), tn.sum(), tp.sum())
    assert report.n_fn == N - fp.sum() - tn.sum() - tp.sum()
    # y_true, y_pred, scores and outcomes are not attributes.
    assert {r.column for r in report.enrichment} == {"segment", "amount", "weekend"}
    assert [s.column for s in report.shifts] == ["amount"]
    json.dumps(report.to_dict(), allow_nan=False)  # strict JSON


def test_the_planted_segment_is_found_and_matches_scipy(
    planted: tuple[dict[str, Any], FalsePositiveReport],
) -> None:
    data, report = planted
    fp, tn, _ = _masks(data)
    row = next(r for r in report.enrichment if r.predicate == "segment == 'new_account'")
    new = data["segment"] == "new_account"
    a, c = int((fp & new).sum()), int((tn & new).sum())
    table = [[a, int(fp.sum()) - a], [c, int(tn.sum()) - c]]
    assert (row.fp_count, row.tn_count) == (a, c)
    assert row.fp_share == pytest.approx(a / fp.sum()) and row.tn_share == pytest.approx(
        c / tn.sum()
    )
    assert row.enrichment == pytest.approx(row.fp_share / row.tn_share)
    assert row.p_value == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-9)
    expected = odds_ratio(table, kind="sample")
    assert row.odds_ratio == pytest.approx(expected.statistic)
    assert row.odds_ratio_ci == pytest.approx(tuple(expected.confidence_interval(0.95)))
    # The planted odds ratio is odds(flagged | new) / odds(flagged | not new).
    o_new, o_other = (r / (1 - r) for r in (FP_RATE["new_account"], FP_RATE["other"]))
    assert row.odds_ratio_ci is not None
    assert row.odds_ratio_ci[0] <= o_new / o_other <= row.odds_ratio_ci[1]
    assert row.fp_share > row.tn_share and row.finding
    # Not every level is a finding: the weekend flag was planted as noise.
    assert not next(r for r in report.enrichment if r.column == "weekend").finding


def test_q_values_are_scipys_bh_over_every_attribute_test(
    planted: tuple[dict[str, Any], FalsePositiveReport],
) -> None:
    _, report = planted
    rows: list[Any] = [*report.enrichment, *report.shifts]
    tested = [r for r in rows if r.p_value is not None]
    q = stats.false_discovery_control([r.p_value for r in tested], method="bh")
    assert [r.q_value for r in tested] == pytest.approx(q.tolist(), rel=1e-9)
    assert all(r.finding == (r.q_value <= report.alpha and _fp(r) >= 10) for r in tested)
    outcome_q = stats.false_discovery_control([o.p_value for o in report.outcomes], method="bh")
    assert [o.q_value for o in report.outcomes] == pytest.approx(outcome_q.tolist(), rel=1e-9)


def _fp(row: Any) -> int:
    return int(getattr(row, "fp_count", getattr(row, "n_fp", 0)))


def test_the_planted_churn_is_found_and_matches_scipy(
    planted: tuple[dict[str, Any], FalsePositiveReport],
) -> None:
    data, report = planted
    fp, tn, tp = _masks(data)
    churn = data["churned_30d"] == 1
    row = next(o for o in report.outcomes if o.column == "churned_30d")
    assert row.kind == "binary" and row.test == "fisher" and row.finding
    a, n1, c, n0 = int((fp & churn).sum()), int(fp.sum()), int((tn & churn).sum()), int(tn.sum())
    assert (row.fp_value, row.tn_value) == pytest.approx((a / n1, c / n0))
    assert row.tp_value == pytest.approx(churn[tp].mean())
    assert row.all_value == pytest.approx(churn.mean())
    rr = relative_risk(a, n1, c, n0)
    assert row.ratio == pytest.approx(rr.relative_risk)
    assert row.ratio_ci == pytest.approx(tuple(rr.confidence_interval(0.95)))
    assert row.ratio_ci is not None and row.ratio_ci[0] <= CHURN_FP / CHURN_REST <= row.ratio_ci[1]
    assert row.difference == pytest.approx(a / n1 - c / n0)
    table = [[a, n1 - a], [c, n0 - c]]
    assert row.p_value == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-9)
    # The detector as a predictor of churn, over all rows.
    flagged = data["flagged"] == 1
    assert row.precision == pytest.approx(churn[flagged].mean())
    assert row.recall == pytest.approx(flagged[churn].mean())
    assert row.lift == pytest.approx(churn[flagged].mean() / churn.mean())
    assert row.score_auc == pytest.approx(roc_auc_score(churn, data["score"]))


def test_a_numeric_outcome_gets_welchs_test(
    planted: tuple[dict[str, Any], FalsePositiveReport],
) -> None:
    data, report = planted
    fp, tn, _ = _masks(data)
    spend = data["spend_next_30d"]
    row = next(o for o in report.outcomes if o.column == "spend_next_30d")
    welch = stats.ttest_ind(spend[fp], spend[tn], equal_var=False)
    assert row.kind == "numeric" and row.test == "welch" and row.finding
    assert row.p_value == pytest.approx(welch.pvalue, rel=1e-6)
    assert row.difference_ci == pytest.approx(tuple(welch.confidence_interval(0.95)), rel=1e-9)
    assert row.difference == pytest.approx(spend[fp].mean() - spend[tn].mean())
    assert row.difference < 0 and row.precision is None and row.score_auc is None


def test_findings_are_ranked_sentences_with_the_numbers(
    planted: tuple[dict[str, Any], FalsePositiveReport],
) -> None:
    _, report = planted
    churn = next(o for o in report.outcomes if o.column == "churned_30d")
    churn_text = next(f for f in report.findings if "`churned_30d`" in f)
    assert f"{100 * churn.fp_value:.1f}% against {100 * churn.tn_value:.1f}%" in churn_text
    assert "the detector may be predicting `churned_30d`" in churn_text
    assert any(
        f.endswith("p < 1e-9).") and "`segment == 'new_account'`" in f for f in report.findings
    )
    # The two planted effects lead; the weekend noise is nowhere.
    top = " ".join(report.findings[:2])
    assert "`segment == 'new_account'`" in top and "`churned_30d`" in top
    assert not any("weekend" in f for f in report.findings)
    lesson = report.lesson_text(model="fraud-gbm")
    assert lesson is not None and lesson.startswith("The false positives of fraud-gbm predict")
    assert "`churned_30d`" in lesson and "new_account" in lesson


def test_numeric_attribute_cohen_d_mann_whitney_and_bins(
    planted: tuple[dict[str, Any], FalsePositiveReport],
) -> None:
    data, report = planted
    fp, tn, _ = _masks(data)
    x, z = data["amount"][fp], data["amount"][tn]
    pooled = ((x.size - 1) * x.var(ddof=1) + (z.size - 1) * z.var(ddof=1)) / (x.size + z.size - 2)
    shift = report.shifts[0]
    assert shift.cohen_d == pytest.approx((x.mean() - z.mean()) / np.sqrt(pooled), rel=1e-9)
    assert shift.p_value == pytest.approx(stats.mannwhitneyu(x, z).pvalue, rel=1e-9)
    assert shift.cohen_d > 0 and shift.finding  # amounts were planted 1.5x higher
    bins = [r for r in report.enrichment if r.column == "amount"]
    assert len(bins) == 5
    assert bins[0].predicate.startswith("amount < ") and bins[-1].predicate.startswith("amount >= ")
    assert all(" <= amount < " in r.predicate for r in bins[1:-1])
    assert sum(r.fp_count for r in bins) == fp.sum() and sum(r.tn_count for r in bins) == tn.sum()
    neg_share = np.array([r.fp_count + r.tn_count for r in bins]) / (fp.sum() + tn.sum())
    assert neg_share == pytest.approx(np.full(5, 0.2), abs=0.002)  # quantiles of the negatives


def test_few_valued_numbers_missing_values_and_input_forms() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    tier = rng.integers(1, 4, n).astype(float)
    city = rng.choice(["a", "b", None], n).tolist()
    churn = rng.integers(0, 2, n).astype(float)
    churn[:100] = np.nan  # not yet observed
    y = rng.integers(0, 2, n) * (rng.random(n) < 0.1)
    p = (rng.random(n) < 0.2).astype(int)
    frame = pd.DataFrame({"tier": tier, "city": city, "churn": churn, "y": y, "p": p})
    report = analyze_false_positives(frame, "y", "p", outcomes="churn")
    assert [r.predicate for r in report.enrichment if r.column == "tier"] == [
        "tier == 1",
        "tier == 2",
        "tier == 3",
    ]
    assert "city is missing" in [r.predicate for r in report.enrichment if r.column == "city"]
    fp = (y == 0) & (p == 1)
    assert report.outcomes[0].n_fp == int((fp & ~np.isnan(churn)).sum())
    same = analyze_false_positives(
        pl.from_pandas(frame), y, p, outcomes=["churn"], columns=["tier", "city"]
    )
    assert same.to_dict() == report.to_dict()


def _null(seed: int, n: int = 5000) -> FalsePositiveReport:
    rng = np.random.default_rng(seed)
    data = {
        "segment": rng.choice(list("abcd"), n),
        "amount": rng.lognormal(3, 1, n),
        "flag": rng.random(n) < 0.3,
        "churned_30d": (rng.random(n) < 0.1).astype(int),
        "spend": rng.gamma(2, 50, n),
    }
    y, p = (rng.random(n) < 0.05).astype(int), (rng.random(n) < 0.1).astype(int)
    return analyze_false_positives(
        data, y, p, scores=rng.random(n), outcomes=["churned_30d", "spend"]
    )


def test_null_data_stays_quiet() -> None:
    reports = [_null(seed) for seed in range(20)]
    noisy = [r for r in reports if r.findings]
    # Two BH families at 0.05: about one data set in ten has any finding.
    assert len(noisy) <= 4
    assert all((r.lesson_text() is None) == (not r.significant) for r in reports)
    # Without the correction, most data sets would raise something.
    raw = [
        r
        for r in reports
        if any(
            x.p_value is not None and x.p_value <= 0.05
            for x in [*r.enrichment, *r.shifts, *r.outcomes]
        )
    ]
    assert len(raw) >= max(6, 2 * len(noisy))


def test_a_segment_the_false_positives_avoid_still_makes_a_lesson() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    p = rng.random(n) < 0.2
    verified = rng.random(n) < np.where(p, 0.1, 0.5)  # flagged rows are rarely verified
    report = analyze_false_positives({"verified": verified}, np.zeros(n, int), p)
    (row,) = report.enrichment
    assert row.predicate == "verified == True" and row.odds_ratio < 1 and row.finding
    lesson = report.lesson_text()
    assert (
        lesson == f"The detector's false positives differ from true negatives: {report.findings[0]}"
    )


def test_no_false_positives_is_a_report_not_an_error() -> None:
    data = {"segment": ["a", "b", "a", "b"], "churn": [0, 1, 0, 1]}
    report = analyze_false_positives(data, [0, 0, 1, 1], [0, 0, 1, 0], outcomes=["churn"])
    assert report.n_fp == 0 and report.enrichment == [] and report.outcomes == []
    assert report.findings and "No false positives to analyse" in report.findings[0]
    assert report.lesson_text() is None and not report.significant


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"y_true": [0, 2, 1, 0]}, DataError, "0/1"),
        ({"y_pred": [0.0, np.nan, 1.0, 0.0]}, DataError, "missing"),
        ({"y_true": [0, 1, 1]}, DataError, "4 rows"),
        ({"outcomes": ["churned"]}, DataError, "Available columns: segment, amount, label"),
        ({"outcomes": ["label"]}, DataError, "outcomes must be 0/1"),
        ({"columns": ["nope"]}, DataError, "no attribute column 'nope'"),
        ({"scores": [0.1, np.inf, 0.3, 0.4]}, DataError, "finite"),
        ({"bins": 1}, ConfigError, "'bins' parameter"),
        ({"alpha": 0.0}, ConfigError, "'alpha' parameter"),
        ({"min_count": 0}, ConfigError, "'min_count' parameter"),
    ],
)
def test_bad_input_is_refused_with_a_message(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    data = {"segment": ["a", "b", "a", "b"], "amount": [1.0, 2.0, 3.0, 4.0], "label": list("wxyz")}
    args: dict[str, Any] = {"y_true": [0, 0, 1, 0], "y_pred": [1, 0, 1, 0]} | kwargs
    with pytest.raises(error, match=match):
        analyze_false_positives(data, args.pop("y_true"), args.pop("y_pred"), **args)


def test_a_lesson_candidate_is_recorded_from_the_experiment(
    ledger: Ledger, planted: tuple[dict[str, Any], FalsePositiveReport]
) -> None:
    _, report = planted
    with experiment("fraud-gbm", project="fraud", quiet=True, ledger=ledger) as exp:
        lesson = record_lesson_candidate(report, ledger=ledger, experiment=exp, tags=["fraud"])
    assert lesson is not None
    stored = list_lessons(ledger, tag="candidate")
    assert [x.id for x in stored] == [lesson.id]
    assert stored[0].tags == ["candidate", "false-positives", "fraud"]
    assert stored[0].sources == [exp.id] and stored[0].project == "fraud"
    assert stored[0].text.startswith("The false positives of fraud-gbm predict `churned_30d`")
    assert ledger.lessons_for([exp.id]) == stored


def test_a_candidate_by_experiment_id_on_the_default_ledger(
    ledger: Ledger, planted: tuple[dict[str, Any], FalsePositiveReport]
) -> None:
    _, report = planted
    with experiment("fraud-gbm-v2", quiet=True, ledger=ledger) as exp:
        pass
    lesson = record_lesson_candidate(report, experiment=exp.id, text="Check new accounts.")
    assert lesson is not None and lesson.sources == [exp.id]
    assert [x.text for x in list_lessons(ledger, tag="false-positives")] == ["Check new accounts."]


def test_no_candidate_when_nothing_is_significant(ledger: Ledger) -> None:
    report = next(r for r in (_null(s) for s in range(20)) if not r.significant)
    assert record_lesson_candidate(report, ledger=ledger) is None
    assert list_lessons(ledger) == []
    with pytest.raises(ConfigError, match="experiment must be"):
        record_lesson_candidate(report, ledger=ledger, experiment=42)  # type: ignore[arg-type]
