"""Scheduled monitor runs end to end: the festive-sale fraud scenario, state, sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hindsight.alerts import MemoryChannel
from hindsight.data.profile import ProfileOptions
from hindsight.demo.monitoring import DAY, HOUR, FraudScenario, fraud_during_sale
from hindsight.errors import ConfigError, DataError
from hindsight.ledger import Ledger
from hindsight.monitor import AlertRule, EventReference, Monitor, TrailingReference
from hindsight.monitor.checks import DecisionCheck, DriftCheck, HealthCheck, RateCheck
from hindsight.monitor.config import plan_from_dict
from hindsight.monitor.runner import MonitorPlan, findings, load_state, run_monitor
from hindsight.monitor.sources import ParquetSource, PredictionLogSource

OPTS = ProfileOptions(threads=1)


@pytest.fixture(scope="module")
def sale() -> FraudScenario:
    return fraud_during_sale(per_hour=120, ordinary_days=3)


def _logged(ledger: Ledger, sc: FraudScenario, name: str = "fraud") -> Monitor:
    mon = Monitor(name, ledger=ledger, segments=["account"], options=OPTS)
    tab = sc.table
    mon.log(
        tab.drop_columns(["decision", "score"]),
        predictions=tab.column("decision"),
        confidence=tab.column("score"),
        timestamps="ts",
    )
    return mon


def _plan(
    mon: Monitor, sc: FraudScenario, reference: object, channel: MemoryChannel
) -> MonitorPlan:
    return MonitorPlan(
        mon,
        reference,  # type: ignore[arg-type]
        (DriftCheck(columns=("amount", "tx_per_day")), DecisionCheck(segment="account")),
        rules=(
            AlertRule("spend-drift", "drift", for_windows=3),
            AlertRule(
                "verified-blocks",
                "decisions",
                key="account=verified / block",
                severity="critical",
                for_windows=2,
            ),
        ),
        channels=(channel,),
    )


def test_festive_sale_expected_swing_is_quiet_rising_block_rate_is_an_incident(
    any_ledger: Ledger, sale: FraudScenario
) -> None:
    mon = _logged(any_ledger, sale)
    channel = MemoryChannel()
    calendar = EventReference(
        sale.events,
        current="sale-2026",
        past="sale-2025",
        around=3,
        otherwise=TrailingReference(24),
    )
    plan = _plan(mon, sale, calendar, channel)
    end = sale.events["sale-2026"][0] + 2 * DAY
    since = sale.sale_start - DAY
    result = run_monitor(plan, now=end, since=since)
    assert len(result.windows) == 3 * 24  # the day before the sale and its first two days
    fired = [(d.rule, d.key) for d in result.alerts]
    # Spending and frequency rise as they did in last year's sale: no drift alert.
    assert ("spend-drift", "amount") not in fired and ("spend-drift", "tx_per_day") not in fired
    assert not any(f.flagged for w in result.windows for f in w.findings if f.monitor == "drift")
    # The new model blocks verified customers: one critical alert, an incident, a draft.
    assert fired == [("verified-blocks", "account=verified / block")]
    alert = result.alerts[0]
    assert alert.window_start == sale.sale_start + HOUR  # the second sale window in a row
    assert alert.failure_id and alert.postmortem_id and alert.incident_error is None
    assert [a.title for a in channel.alerts] == ["verified-blocks: account=verified / block"]
    failure = any_ledger.store.get("failure", alert.failure_id)
    assert failure is not None and failure["source"] == "monitor"
    windows = failure["evidence"]["windows"]
    assert [w["window_start"] for w in windows] == [sale.sale_start, sale.sale_start + HOUR]
    assert windows[-1]["evidence"]["reference_n"] > 0  # the numbers behind the verdict
    # The reference said what it used.
    sale_window = next(w for w in result.windows if w.window_start == sale.sale_start + 5 * HOUR)
    assert "same point of 'sale-2025'" in sale_window.reference
    ordinary = next(w for w in result.windows if w.window_start == since)
    assert ordinary.reference.startswith("the 24 windows before")

    # A second pass judges nothing again and repeats no alert; state is in the store.
    again = run_monitor(plan, now=end)
    assert again.windows == [] and again.alerts == []
    state = load_state(mon)
    assert state["last_window"] == end - HOUR and "verified-blocks" in state["rules"]["rules"]
    stored = findings(mon, flagged_only=True)
    assert {r["check"] for r in stored} == {"decisions"}
    assert len(findings(mon)) == sum(len(w.findings) for w in result.windows)


def test_without_the_calendar_the_sale_itself_looks_like_drift(
    ledger: Ledger, sale: FraudScenario
) -> None:
    mon = _logged(ledger, sale)
    plan = _plan(mon, sale, TrailingReference(24), MemoryChannel())
    result = run_monitor(plan, now=sale.sale_start + 12 * HOUR, since=sale.sale_start - 6 * HOUR)
    drift = {d.key: d.window_start for d in result.alerts if d.rule == "spend-drift"}
    assert set(drift) == {"amount", "tx_per_day"}
    assert all(sale.sale_start <= w <= sale.sale_start + 3 * HOUR for w in drift.values())


def test_windows_wait_for_settle_and_missing_references_are_skipped(
    ledger: Ledger,
) -> None:
    mon = Monitor("m", ledger=ledger, options=OPTS)
    rng = np.random.default_rng(0)
    mon.log({"x": rng.normal(size=600)}, timestamps=np.repeat(np.arange(3) * HOUR, 200) + 5.0)
    plan = MonitorPlan(mon, TrailingReference(2), (DriftCheck(),), settle_s=600)
    # At 03:05 the third window (02:00-03:00) is not settled yet.
    first = run_monitor(plan, now=3 * HOUR + 300)
    assert [w.window_start for w in first.windows] == [0.0, HOUR]
    assert first.windows[0].skipped and "found no logged window" in first.windows[0].skipped
    assert first.windows[1].findings and first.windows[1].skipped is None
    second = run_monitor(plan, now=3 * HOUR + 600)
    assert [w.window_start for w in second.windows] == [2 * HOUR]


def test_plan_checks_rules_against_its_checks(ledger: Ledger) -> None:
    mon = Monitor("m", ledger=ledger)
    with pytest.raises(ConfigError, match="watches check 'decisions'"):
        MonitorPlan(
            mon, TrailingReference(2), (DriftCheck(),), rules=(AlertRule("r", "decisions"),)
        )
    with pytest.raises(ConfigError, match="at least one check"):
        MonitorPlan(mon, TrailingReference(2), ())


# --------------------------------------------------------------------------- sources


def test_parquet_files_are_logged_once(ledger: Ledger, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for day in range(2):
        pq.write_table(
            pa.table(
                {
                    "ts": day * DAY + rng.uniform(0, DAY, 500),
                    "amount": rng.normal(size=500),
                    "decision": rng.choice(["approve", "block"], 500),
                }
            ),
            tmp_path / f"day{day}.parquet",
        )
    mon = Monitor("files", ledger=ledger, window="1d", options=OPTS)
    source = ParquetSource(str(tmp_path / "*.parquet"), timestamps="ts", predictions="decision")
    plan = MonitorPlan(mon, TrailingReference(1), (DriftCheck(),), source=source)
    first = run_monitor(plan, now=2 * DAY)
    assert first.rows_pulled == 1000 and mon.windows() == [0.0, DAY]
    assert mon.window_profile(0).columns["prediction"].n == 500
    again = run_monitor(plan, now=2 * DAY)
    assert again.rows_pulled == 0 and mon.window_profile(0).n_rows == 500
    bad = ParquetSource(str(tmp_path / "*.parquet"), timestamps="ts", predictions="nope")
    with pytest.raises(DataError, match="no column 'nope'"):
        run_monitor(
            MonitorPlan(
                Monitor("files2", ledger=ledger), TrailingReference(1), (DriftCheck(),), source=bad
            ),
            now=2 * DAY,
        )


def test_the_serving_prediction_log_feeds_a_monitor(any_ledger: Ledger) -> None:
    from hindsight.serving import MockBackend, RulesBackend
    from hindsight.serving.service import Service

    svc = Service(
        "loans",
        [
            MockBackend("approve", name="model", version="1", fail_every=4, confidence=0.9),
            RulesBackend([], "refer"),
        ],
        store=any_ledger.store,
        deadline_ms=2000,
    )
    try:
        for i in range(400):
            svc.predict_sync({"amount": float(i), "country": "fr" if i % 2 else "de"})
    finally:
        svc.close()  # flushes the log
    mon = Monitor("loans", ledger=any_ledger, window="1h", options=OPTS)
    source = PredictionLogSource("loans", lag_s=0.0)
    plan = MonitorPlan(
        mon,
        TrailingReference(1),
        (RateCheck(column="fell_back"), HealthCheck(), RateCheck(column="abstained")),
        source=source,
    )
    import time

    result = run_monitor(plan, now=time.time() + 2 * HOUR)
    assert result.rows_pulled == 400
    prof = mon.window_profile(mon.windows()[0])
    assert prof.n_rows == 400 and {"amount", "country", "fell_back", "prediction"} <= set(
        prof.columns
    )
    fell = prof.columns["fell_back"].frequencies()
    assert fell.get("true") == 100  # every 4th call failed and the rules answered
    assert load_state(mon)["source"]["predictions"][0] is not None
    assert run_monitor(plan, now=time.time() + 2 * HOUR).rows_pulled == 0
    # Labels arrive through the service's outcomes and join their predictions by id.
    from sqlalchemy import select

    from hindsight.store import schema as t

    with any_ledger.store.read() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                select(t.predictions.c.id).where(t.predictions.c.tier == "model").limit(50)
            )
        ]
    from hindsight.serving.log import PredictionLog  # the service is closed: its log's API

    log = PredictionLog(any_ledger.store)
    try:
        log.record_outcomes(
            [
                {"prediction_id": i, "label": "approve" if k % 5 else "refer"}
                for k, i in enumerate(ids)
            ]
        )
    finally:
        log.close()
    later = run_monitor(plan, now=time.time() + 2 * HOUR)
    assert later.rows_pulled == 50
    confusion = mon.window_counts(mon.windows()[0])["label|prediction"]
    assert confusion == {"approve": {"approve": 40}, "refer": {"approve": 10}}


# --------------------------------------------------------------------------- config


def test_plan_from_dict_builds_the_same_plan(ledger: Ledger, tmp_path: Path) -> None:
    plan = plan_from_dict(
        {
            "name": "fraud",
            "window": "1h",
            "segments": ["account"],
            "reference": {
                "rule": "event",
                "events": {"a": ["2025-12-01", "2025-12-08"], "b": ["2026-11-30", "2026-12-07"]},
                "current": "b",
                "past": "a",
                "around": 3,
                "otherwise": {"rule": "trailing", "n_windows": 24},
            },
            "checks": [
                {"check": "drift", "columns": ["amount"]},
                {"check": "decisions", "segment": "account", "actions": ["block"]},
            ],
            "rules": [
                {
                    "name": "blocks",
                    "check": "decisions",
                    "severity": "critical",
                    "for_windows": 2,
                    "cooldown": "1h",
                }
            ],
            "alerts": ["log://"],
            "settle": "5min",
        },
        ledger=ledger,
    )
    assert plan.monitor.segments == ("account",) and plan.settle_s == 300
    assert isinstance(plan.reference, EventReference) and plan.reference.around == 3
    assert isinstance(plan.reference.otherwise, TrailingReference)
    assert plan.checks[0].to_dict()["columns"] == ("amount",)
    assert plan.rules[0].cooldown_s == 3600 and plan.rules[0].monitor == "decisions"
    for bad, match in (
        (
            {
                "name": "m",
                "reference": {"rule": "trailing", "n_windows": 2},
                "checks": [],
            },
            "non-empty list",
        ),
        (
            {"name": "m", "reference": {"rule": "weekly"}, "checks": [{"check": "drift"}]},
            "reference rule 'weekly' is unknown",
        ),
        (
            {
                "name": "m",
                "reference": {"rule": "trailing", "n_windows": 2},
                "checks": [{"check": "drift", "alpah": 0.1}],
            },
            "unknown: alpah",
        ),
        (
            {
                "name": "m",
                "reference": {"rule": "trailing", "n_windows": 2},
                "checks": [{"check": "drift"}],
                "sourse": {},
            },
            "unknown keys sourse",
        ),
        (
            {
                "name": "m",
                "reference": {"rule": "trailing", "n_windows": 2},
                "checks": [{"check": "drift"}],
                "source": {"kind": "kafka"},
            },
            "source must be",
        ),
    ):
        with pytest.raises(ConfigError, match=match):
            plan_from_dict(bad, ledger=ledger)


def test_a_table_in_the_store_feeds_a_monitor(any_ledger: Ledger) -> None:
    import sqlalchemy as sa

    from hindsight.monitor.sources import SqlTableSource

    md = sa.MetaData()
    scores = sa.Table(
        "model_scores",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ts", sa.Float),
        sa.Column("amount", sa.Float),
        sa.Column("decision", sa.String(20)),
    )
    engine = any_ledger.store.engine
    md.create_all(engine)
    try:
        rows = [
            {
                "id": i,
                "ts": 10.0 * i,
                "amount": float(i % 7),
                "decision": "block" if i % 10 == 0 else "approve",
            }
            for i in range(700)
        ]
        with engine.begin() as conn:
            conn.execute(scores.insert(), rows[:500])
        mon = Monitor("tbl", ledger=any_ledger, options=OPTS)
        source = SqlTableSource(
            "model_scores", timestamps="ts", predictions="decision", lag_s=0.0, batch_rows=128
        )
        plan = MonitorPlan(mon, TrailingReference(1), (HealthCheck(),), source=source)
        first = run_monitor(plan, now=7000.0)
        assert first.rows_pulled == 500 and mon.window_profile(0).n_rows == 360
        with engine.begin() as conn:
            conn.execute(scores.insert(), rows[500:])
        assert run_monitor(plan, now=7000.0).rows_pulled == 200
        assert mon.window_profile(HOUR).n_rows == 340
        assert mon.window_profile(0).columns["prediction"].n == 360
        with pytest.raises(DataError, match="No table 'nope'"):
            run_monitor(
                MonitorPlan(
                    Monitor("t2", ledger=any_ledger),
                    TrailingReference(1),
                    (HealthCheck(),),
                    source=SqlTableSource("nope"),
                ),
                now=7000.0,
            )
    finally:
        md.drop_all(engine)


def test_a_slow_creep_in_a_decision_rate_is_caught_by_the_sequential_detector(
    ledger: Ledger,
) -> None:
    from hindsight.store import schema as t

    rng = np.random.default_rng(12)
    n, hours, start = 2000, 120, 48
    # The block rate creeps from 1 % by 0.01 points an hour: no hour differs from the
    # day before it by more than sampling noise.
    rate = 0.01 + 0.0001 * np.clip(np.arange(hours) - start, 0, None)
    ts = np.repeat(np.arange(hours) * HOUR, n) + 1.0
    blocked = rng.random(hours * n) < np.repeat(rate, n)
    Monitor("creep", ledger=ledger, segments=["kind"], options=OPTS).log(
        {"kind": np.full(hours * n, "card")},
        predictions=np.where(blocked, "block", "approve"),
        timestamps=ts,
    )
    found = {}
    for name, check in (
        ("plain", DecisionCheck(segment="kind", actions=("block",))),
        ("cusum", DecisionCheck(segment="kind", actions=("block",), sequential="cusum")),
    ):
        with ledger.store.write() as conn:
            conn.execute(t.monitor_state.delete())
        mon = Monitor("creep", ledger=ledger, segments=["kind"], options=OPTS)
        run = run_monitor(MonitorPlan(mon, TrailingReference(24), (check,)), now=hours * HOUR)
        found[name] = [w.window_start / HOUR for w in run.windows for f in w.flagged]
        if name == "cusum":
            (memory,) = load_state(mon)["checks"].values()
            assert len(memory["rates"]["card\x1fblock"]) == hours - 1  # all but the first
    only_cusum = set(found["cusum"]) - set(found["plain"])  # what the detector alone saw
    assert only_cusum and min(only_cusum) >= start


def test_a_pass_that_fails_half_way_logs_no_row_twice(ledger: Ledger, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    good = pa.table({"ts": rng.uniform(0, HOUR, 300), "x": rng.normal(size=300)})
    pq.write_table(good, tmp_path / "a.parquet")
    (tmp_path / "b.parquet").write_text("not parquet")
    mon = Monitor("half", ledger=ledger, options=OPTS)
    plan = MonitorPlan(
        mon,
        TrailingReference(1),
        (DriftCheck(),),
        source=ParquetSource(str(tmp_path / "*.parquet"), timestamps="ts"),
    )
    with pytest.raises(DataError, match="as Parquet"):
        run_monitor(plan, now=2 * HOUR)
    # The first file is in, and the state says so, though the pass died on the second.
    assert mon.window_profile(0).n_rows == 300
    assert str(tmp_path / "a.parquet") in load_state(mon)["source"]
    pq.write_table(good.slice(0, 100), tmp_path / "b.parquet")
    again = run_monitor(plan, now=2 * HOUR)
    assert again.rows_pulled == 100 and mon.window_profile(0).n_rows == 400
