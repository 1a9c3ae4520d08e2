"""Performance from label count tables: equal to scikit-learn; CBPE against realised."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn import metrics as skm

from hindsight.data.profile import ProfileOptions
from hindsight.errors import ConfigError, DataError
from hindsight.ledger import Ledger
from hindsight.monitor import AlertRule, FixedReference, Monitor, TrailingReference
from hindsight.monitor.checks import EstimatedPerformanceCheck, PerformanceCheck, check_from_dict
from hindsight.monitor.checks.performance import binned_auc, cbpe_estimate
from hindsight.monitor.labels import SCORE_BINS
from hindsight.monitor.runner import MonitorPlan, run_monitor

HOUR = 3600.0
OPTS = ProfileOptions(threads=1)


def _window(
    rng: np.random.Generator, n: int, shift: float, spread: float = 1.0
) -> dict[str, np.ndarray]:
    """Calibrated scores (labels drawn from them) of a population moved by ``shift``."""
    x = rng.normal(shift, spread, n)
    score = 1.0 / (1.0 + np.exp(-(1.5 * x - 0.5)))
    label = (rng.random(n) < score).astype(int)
    return {"x": x, "score": score, "label": label, "pred": (score >= 0.5).astype(int)}


def _log(mon: Monitor, w: dict[str, np.ndarray], start: float, *, labels: bool) -> None:
    ts = start + np.linspace(1.0, HOUR - 1.0, w["x"].size)
    mon.log({"x": w["x"]}, predictions=w["pred"].astype(str), confidence=w["score"],
            timestamps=ts)  # fmt: skip
    if labels:
        mon.log_labels(w["label"].astype(str), predictions=w["pred"].astype(str),
                       scores=w["score"], timestamps=ts)  # fmt: skip


def test_realised_metrics_equal_scikit_learn_and_auc_counts_ties_half(ledger: Ledger) -> None:
    rng = np.random.default_rng(4)
    ref, cur = _window(rng, 3000, 0.0), _window(rng, 2000, 0.0)
    cur["pred"] = np.where(rng.random(2000) < 0.2, 1 - cur["pred"], cur["pred"])  # worse
    mon = Monitor("perf", ledger=ledger, options=OPTS)
    _log(mon, ref, 0.0, labels=True)
    _log(mon, cur, HOUR, labels=True)
    check = PerformanceCheck(positive="1", costs={"fp": 5, "fn": 50})
    plan = MonitorPlan(
        mon,
        TrailingReference(1),
        (check,),
        rules=(AlertRule("accuracy", "performance", severity="critical"),),
    )
    result = run_monitor(plan, now=3 * HOUR)
    (finding,) = result.windows[1].findings
    m = finding.evidence["current"]
    y, p = cur["label"], cur["pred"]
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    assert m["precision"] == pytest.approx(skm.precision_score(y, p))
    assert m["recall"] == pytest.approx(skm.recall_score(y, p))
    assert m["f1"] == pytest.approx(skm.f1_score(y, p))
    _tn, fp, fn, _tp = skm.confusion_matrix(y, p).ravel()
    assert m["cost_per_row"] == pytest.approx((5 * fp + 50 * fn) / y.size)
    binned = np.minimum(np.floor(cur["score"] * SCORE_BINS), SCORE_BINS - 1)
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, binned))  # ties counted half
    assert m["coverage"] == 1.0 and finding.flagged
    assert result.alerts and result.alerts[0].failure_id


def test_labels_wait_for_the_check_delay_and_coverage_is_reported(ledger: Ledger) -> None:
    rng = np.random.default_rng(5)
    mon = Monitor("late", ledger=ledger, options=OPTS)
    ref, cur = _window(rng, 1000, 0.0), _window(rng, 1000, 0.0)
    _log(mon, ref, 0.0, labels=True)
    _log(mon, cur, HOUR, labels=False)
    plan = MonitorPlan(mon, TrailingReference(1),
                       (PerformanceCheck(positive="1", delay_s=6 * HOUR),
                        EstimatedPerformanceCheck(positive="1")))  # fmt: skip
    first = run_monitor(plan, now=2 * HOUR + 1)
    # The estimate comes at once; realised performance waits for its labels.
    assert {f.monitor for w in first.windows for f in w.findings} == {"estimated_performance"}
    half = slice(0, 500)
    ts = HOUR + np.linspace(1.0, HOUR - 1.0, 1000)
    mon.log_labels(cur["label"][half].astype(str), predictions=cur["pred"][half].astype(str),
                   timestamps=ts[half], scores=cur["score"][half])  # fmt: skip
    later = run_monitor(plan, now=8 * HOUR)
    perf = [f for w in later.windows for f in w.findings if f.monitor == "performance"]
    assert [f.window_start for f in perf] == [HOUR]  # judged once, late (0:00 has no reference)
    window = perf[0]
    assert window.evidence["current"]["coverage"] == pytest.approx(0.5)
    assert window.evidence["current"]["labelled"] == 500
    assert "estimated beforehand" in window.detail  # estimate and realised side by side
    assert run_monitor(plan, now=9 * HOUR).windows == []


def test_cbpe_tracks_realised_accuracy_under_covariate_shift() -> None:
    """Calibrated scores: the label-free estimate is within three sampling errors."""
    from hindsight.monitor.checks.performance import _hist, calibration

    rng = np.random.default_rng(6)
    ref = _window(rng, 20_000, 0.0)
    bins = np.minimum(np.floor(ref["score"] * SCORE_BINS), SCORE_BINS - 1).astype(int)
    table = {
        lab: {str(b): int(n) for b, n in zip(*np.unique(bins[ref["label"] == int(lab)],
                                                         return_counts=True), strict=True)}
        for lab in ("0", "1")
    }  # fmt: skip
    cal = calibration(table, "1")
    assert cal is not None and np.all(np.diff(cal) >= 0)  # isotonic
    for shift in (-1.0, 0.0, 1.2):
        cur = _window(rng, 5000, shift)
        cb = np.minimum(np.floor(cur["score"] * SCORE_BINS), SCORE_BINS - 1).astype(int)
        hist = _hist({str(b): int(n) for b, n in zip(*np.unique(cb, return_counts=True),
                                                      strict=True)})  # fmt: skip
        est = cbpe_estimate(hist, cal, 0.5)
        assert est is not None
        realised = skm.accuracy_score(cur["label"], cur["pred"])
        assert abs(est["accuracy"] - realised) < 3 * est["sampling_error"] + 0.01


def test_estimated_performance_flags_a_drop_without_labels(ledger: Ledger) -> None:
    rng = np.random.default_rng(7)
    mon = Monitor("cbpe", ledger=ledger, options=OPTS)
    _log(mon, _window(rng, 4000, 0.0), 0.0, labels=True)
    _log(mon, _window(rng, 4000, 0.0), HOUR, labels=False)
    # Cases pile up near the decision boundary: accuracy must fall, no label needed.
    _log(mon, _window(rng, 4000, 0.33, spread=0.3), 2 * HOUR, labels=False)
    labelled_hour = FixedReference(0.0, HOUR)
    plan = MonitorPlan(mon, labelled_hour, (EstimatedPerformanceCheck(positive="1"),))
    result = run_monitor(plan, now=4 * HOUR, since=HOUR)
    found = {w.window_start: w.findings[0] for w in result.windows}
    assert not found[HOUR].flagged
    assert found[2 * HOUR].flagged and "dropping" in found[2 * HOUR].detail
    assert found[2 * HOUR].value < found[HOUR].value - 0.05


def test_binned_auc_and_bad_input() -> None:
    pos = np.zeros(SCORE_BINS)
    neg = np.zeros(SCORE_BINS)
    pos[[80, 50]] = [3, 1]
    neg[[50, 10]] = [1, 4]
    # 3 positives above all 5 negatives; 1 positive ties 1 negative, beats 4.
    assert binned_auc(pos, neg) == pytest.approx((3 * 5 + 4 + 0.5) / 20)
    assert binned_auc(pos, np.zeros(SCORE_BINS)) is None
    with pytest.raises(ConfigError, match="costs"):
        PerformanceCheck(costs={"fp": 1})
    with pytest.raises(ConfigError, match="costs"):
        PerformanceCheck(positive="1", costs={"false_positive": 1})
    assert check_from_dict(PerformanceCheck(positive="1").to_dict()) == PerformanceCheck(
        positive="1"
    )


def test_labels_for_unlogged_windows_are_refused_whole(ledger: Ledger) -> None:
    mon = Monitor("m", ledger=ledger, options=OPTS)
    mon.log({"x": [1.0, 2.0]}, predictions=["a", "b"], timestamps=[10.0, 20.0])
    with pytest.raises(DataError, match="no predictions logged in the window"):
        mon.log_labels(["a", "b"], predictions=["a", "b"], timestamps=[10.0, HOUR * 5])
    assert "label|prediction" not in mon.window_counts(0)
    with pytest.raises(DataError, match="probabilities in \\[0, 1\\]"):
        mon.log_labels(["a"], predictions=["a"], timestamps=[10.0], scores=[1.5])
    with pytest.raises(DataError, match="2 predictions for 1 labels"):
        mon.log_labels(pa.array(["a"]), predictions=["a", "b"], timestamps=[10.0])


def test_labels_sent_later_by_request_id_join_their_predictions(any_ledger: Ledger) -> None:
    rng = np.random.default_rng(8)
    mon = Monitor("ids", ledger=any_ledger, options=OPTS)
    w = _window(rng, 1200, 0.0)
    ts = np.where(np.arange(1200) < 700, 10.0, HOUR + 10.0)  # two windows
    ids = np.array([f"req-{i}" for i in range(1200)])
    mon.log(
        {"x": w["x"]},
        predictions=w["pred"].astype(str),
        confidence=w["score"],
        ids=ids,
        timestamps=ts,
    )
    pick = rng.permutation(1200)[:900]
    got = mon.log_outcomes(
        np.concatenate([ids[pick], ["req-unknown"]]),
        np.concatenate([w["label"][pick].astype(str), ["1"]]),
    )
    assert got == {"labelled": 900, "unmatched": 1}
    for start, mask in ((0.0, ts < HOUR), (HOUR, ts >= HOUR)):
        chosen = np.zeros(1200, bool)
        chosen[pick] = True
        sel = chosen & mask
        conf = mon.window_counts(start)["label|prediction"]
        for lab in ("0", "1"):
            for pred in ("0", "1"):
                want = int(((w["label"][sel] == int(lab)) & (w["pred"][sel] == int(pred))).sum())
                assert conf.get(lab, {}).get(pred, 0) == want
        scores = mon.window_counts(start)["label|score_bin"]
        assert sum(sum(r.values()) for r in scores.values()) == int(sel.sum())
    # The profile is what it was: ids are not a feature.
    assert "__id" not in mon.window_profile(0).columns
    with pytest.raises(DataError, match="unique"):
        mon.log_outcomes(["req-1", "req-1"], ["0", "1"])
    with pytest.raises(DataError, match="ids for"):
        mon.log({"x": [1.0]}, predictions=["1"], ids=["a", "b"], timestamps=[5.0])
