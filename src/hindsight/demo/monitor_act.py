"""The demo's monitoring act: a month of the live recommender, watched by a monitor.

The ranking policy feeds on its own clicks (the self-reinforcing recommender of
:func:`~hindsight.demo.monitoring.recommender_feedback_loop`): exposure concentrates on
fewer items day after day, and treated users end up clicking less than a random 15 %
holdout. A daily monitor compares each day with the first week; its rules warn on the
concentration and open an incident (a ledger failure with a post-mortem draft) when
treated traffic falls behind the holdout. The days are simulated, so this takes seconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from hindsight.data import profile, save_profile
from hindsight.demo.monitoring import DAY, recommender_feedback_loop
from hindsight.drift import drift_report, save_drift_report
from hindsight.ledger import Ledger
from hindsight.monitor.alerting import AlertRule
from hindsight.monitor.checks import ExposureCheck, HoldoutCheck
from hindsight.monitor.core import Monitor
from hindsight.monitor.runner import MonitorPlan, run_monitor
from hindsight.monitor.windows import FixedReference

__all__ = ["MonitorResult", "run_monitor_demo"]

Say = Callable[[str], None]


@dataclass
class MonitorResult:
    """What the monitoring act found."""

    monitor: str
    days: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)
    incident: str | None = None
    postmortem: str | None = None
    gini_first: float | None = None
    gini_last: float | None = None
    profile: str | None = None
    drift_report: str | None = None
    drifted: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_monitor_demo(
    ledger: Ledger, *, project: str | None = None, seed: int = 3, say: Say = print
) -> MonitorResult:
    """Log four weeks of recommendations into a daily monitor and run it once."""
    if project is not None and project != ledger.settings.project:
        # The monitor, its windows and its incidents belong to the demo's project.
        ledger = Ledger(dataclasses.replace(ledger.settings, project=project), store=ledger.store)
    sc = recommender_feedback_loop(seed=seed)
    mon = Monitor("recommend-live", ledger=ledger, window="1d", crosstabs=[("slice", "clicked")])
    table = sc.table
    mon.log(
        table.drop_columns(["prediction"]), predictions=table.column("prediction"), timestamps="ts"
    )
    plan = MonitorPlan(
        mon,
        FixedReference(sc.start, sc.start + 7 * DAY),
        (ExposureCheck(), HoldoutCheck()),
        rules=(
            AlertRule("exposure-concentration", "exposure", severity="warning", for_windows=2),
            AlertRule("treated-behind-holdout", "holdout", severity="critical", for_windows=2),
        ),
    )
    say(
        f"\n[11] monitor: {sc.days} days of the live recommender ({table.num_rows:,} "
        "recommendations, a 15% random holdout), each day against the first week"
    )
    run = run_monitor(plan, now=sc.start + sc.days * DAY, since=sc.start + 7 * DAY)
    result = MonitorResult(mon.name, days=len(run.windows))
    gini = [f.value for w in run.windows for f in w.findings if f.monitor == "exposure"]
    result.gini_first, result.gini_last = gini[0], gini[-1]
    say(f"  exposure Gini {gini[0]:.2f} -> {gini[-1]:.2f} over {len(gini)} days")
    for d in run.alerts:
        result.alerts.append(
            {
                "rule": d.rule,
                "key": d.key,
                "window": d.alert.fields["window_start"],
                "severity": d.alert.severity,
                "failure": d.failure_id,
            }
        )
        say(f"  {d.alert.severity}: {d.alert.title} on {d.alert.fields['window_start'][:10]}")
        if d.failure_id:
            result.incident, result.postmortem = d.failure_id, d.postmortem_id
            say(f"  incident {d.failure_id} in the ledger, post-mortem draft {d.postmortem_id}")
    _store_data(ledger, sc.table, sc.start, sc.days, result, say)
    return result


def _store_data(
    ledger: Ledger, table: pa.Table, start: float, days: int, result: MonitorResult, say: Say
) -> None:
    """The first week's profile as the reference, and the last week's drift report against it,
    stored for the dashboard's Data page."""
    ts = table.column("ts")
    columns = ["slice", "prediction", "clicked"]
    first = table.filter(pc.less(ts, start + 7 * DAY)).select(columns)
    last = table.filter(pc.greater_equal(ts, start + (days - 7) * DAY)).select(columns)
    reference = profile(first)
    result.profile = save_profile(reference, "recommend-live-week1", ledger=ledger)
    report = drift_report(reference, last)
    result.drift_report = save_drift_report(report, "recommend-live-last-week", ledger=ledger)
    result.drifted = report.drifted_columns
    say(
        f"  data: the last week against the first, drifted: "
        f"{', '.join(result.drifted) or 'nothing'} (report {result.drift_report})"
    )
