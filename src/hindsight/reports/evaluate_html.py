"""The evaluation report as one self-contained HTML page, in the drift report's style.

:func:`render_evaluation_html` takes the JSON-first dict of
:func:`hindsight.evaluate.evaluation_report` (schema ``hindsight.evaluation/1``): the
verdict against the criteria, the metrics, the cost curve and reliability diagram as
inline SVG, segments, named and found slices, scenario results and what the false
positives have in common. It embeds aggregates only, never rows, and escapes every string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hindsight.reports._format import as_float, fmt_num
from hindsight.reports.drift_html import _environment
from hindsight.reports.lines_svg import Mark, Series, line_chart_svg

__all__ = ["render_evaluation_html"]

_TEMPLATE = "evaluation.html.j2"
_TASK_NAMES = {"binary": "Binary classification", "multiclass": "Multi-class classification",
               "regression": "Regression"}
# The metrics shown first, in this order, when present.
_HEADLINE = ("expected_cost", "accuracy", "precision", "recall", "f1", "auc", "average_precision",
             "brier", "ece", "log_loss", "macro_f1", "macro_recall", "mae", "rmse", "r2", "bias")


def render_evaluation_html(report: Mapping[str, Any]) -> str:
    """The dict of ``evaluation_report(...)`` as one self-contained HTML page."""
    ev = report.get("evaluation") or {}
    verdicts = list(report.get("criteria") or [])
    passed = report.get("passed")
    costs = ev.get("costs") or None
    context = {
        "title": str(ev.get("name") or "Model evaluation"),
        "task": _TASK_NAMES.get(str(ev.get("task")), str(ev.get("task"))),
        "n": int(ev.get("n") or 0),
        "passed": passed,
        "verdicts": [_verdict_view(v) for v in verdicts],
        "facts": _facts(ev, costs),
        "metrics": _metrics_view(ev.get("metrics") or {}),
        "curve_svg": _curve_svg(ev),
        "reliability_svg": _reliability_svg(ev.get("reliability")),
        "segments": _groups(ev.get("segments") or []),
        "slices": _groups(ev.get("slices") or []),
        "found": _found_view(ev.get("found")),
        "scenarios": _scenarios_view(report.get("scenarios")),
        "false_positives": _fp_view(report.get("false_positives")),
        "has_cost": costs is not None,
        "source": str(report.get("source") or ""),
    }
    return _environment().get_template(_TEMPLATE).render(context)


def _verdict_view(v: Mapping[str, Any]) -> dict[str, str]:
    value = v.get("value")
    return {
        "metric": str(v.get("metric")),
        "rule": f"{v.get('op')} {fmt_num(v.get('threshold'), 4)}",
        "value": "not computed" if value is None else fmt_num(value, 4),
        "verdict": str(v.get("verdict")),
    }


def _with_ci(value: Any, ci: Any, label: str = "CI") -> str:
    lo, hi = ci if ci else (None, None)
    return f"{fmt_num(value, 4)} ({label} {fmt_num(lo, 4)} to {fmt_num(hi, 4)})"


def _facts(ev: Mapping[str, Any], costs: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    out = [("Rows", f"{int(ev.get('n') or 0):,}")]
    if ev.get("threshold") is not None:
        out.append(("Decision threshold", fmt_num(ev["threshold"], 4)))
    if costs:
        out.append(("Expected cost per decision",
                    _with_ci(costs.get("expected_cost"), costs.get("expected_cost_ci"), "95% CI")))
        out.append(("Total cost", fmt_num(costs.get("total_cost"), 6)))
        if costs.get("bayes_expected_cost") is not None:
            out.append(("Cost of the cheapest decisions from the probabilities",
                        f"{fmt_num(costs['bayes_expected_cost'], 4)} "
                        f"({fmt_num(100 * (as_float(costs.get('bayes_changed_share')) or 0), 3)}% "
                        "of decisions would change)"))
        if costs.get("best_shift") is not None:
            out.append(("Cheapest shift of the predictions",
                        f"{_with_ci(costs['best_shift'], costs.get('best_shift_ci'))}, cost then "
                        f"{fmt_num(costs.get('cost_after_shift'), 4)}"))
    choice = ev.get("threshold_choice")
    if choice:
        out.append(("Cheapest threshold",
                    f"{_with_ci(choice.get('threshold'), choice.get('ci'))}, cost "
                    f"{fmt_num(choice.get('expected_cost'), 4)}"))
        out.append(("Cost at threshold 0.5", fmt_num(choice.get("cost_at_half"), 4)))
    return out


def _metrics_view(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    keys = [k for k in _HEADLINE if k in metrics]
    keys += sorted(k for k in metrics if k not in keys)
    return [(k, fmt_num(metrics[k], 4)) for k in keys]


def _curve_svg(ev: Mapping[str, Any]) -> Any:
    curve = ev.get("curve")
    if not curve or not curve.get("thresholds"):
        return None
    marks = []
    if ev.get("threshold") is not None:
        marks.append(Mark(float(ev["threshold"]), f"in use {fmt_num(ev['threshold'], 3)}", "mark"))
    choice = ev.get("threshold_choice") or {}
    if choice.get("threshold") is not None:
        marks.append(Mark(float(choice["threshold"]),
                          f"cheapest {fmt_num(choice['threshold'], 3)}", "mark best"))
    xs = [as_float(x) for x in curve["thresholds"]]
    ys = [as_float(y) for y in curve["expected_cost"]]
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None]
    # Thresholds above every score (everything negative) sit past 1: clip to the data range.
    lo, hi = min(p[0] for p in pairs), max(p[0] for p in pairs)
    return line_chart_svg(
        [Series([p[0] for p in pairs], [p[1] for p in pairs], "cur")],
        label="Expected cost per decision at each threshold",
        x_title="decision threshold (score ≥ threshold is positive)",
        y_title="expected cost per decision",
        marks=marks,
        x_range=(min(lo, 0.0), max(hi, 1.0)) if lo >= 0 and hi <= 1.000001 else None,
    )


def _reliability_svg(rel: Mapping[str, Any] | None) -> Any:
    if not rel or not rel.get("edges"):
        return None
    mean = [as_float(v) for v in rel.get("mean_score") or []]
    observed = [as_float(v) for v in rel.get("observed") or []]
    keep = [(m, o) for m, o in zip(mean, observed, strict=True) if m is not None and o is not None]
    if not keep:
        return None
    return line_chart_svg(
        [Series([0.0, 1.0], [0.0, 1.0], "ref-line"),
         Series([k[0] for k in keep], [k[1] for k in keep], "cur"),
         Series([k[0] for k in keep], [k[1] for k in keep], "curdots", dots=True)],
        label="Reliability diagram: observed positive rate against mean score per bin",
        x_title="mean score in bin", y_title="observed positive rate",
        x_range=(0.0, 1.0), y_range=(0.0, 1.0),
    )


def _groups(groups: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    if not groups:
        return None
    keys: list[str] = []
    for g in groups:
        keys += [k for k in (g.get("metrics") or {}) if k not in keys and k != "n"]
    rows = []
    for g in groups:
        m = g.get("metrics") or {}
        rows.append({
            "column": str(g.get("column")),
            "value": str(g.get("value")),
            "expr": g.get("expr"),
            "n": f"{int(g.get('n') or 0):,}",
            "share": fmt_num(100 * (as_float(g.get("share")) or 0.0), 3) + "%",
            "cost": fmt_num(g.get("expected_cost"), 4),
            "cells": [fmt_num(m.get(k), 4) for k in keys],
        })
    return {"cols": keys, "rows": rows,
            "has_cost": any(g.get("expected_cost") is not None for g in groups)}


def _found_view(found: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not found:
        return None
    rows = [
        {
            "expr": str(s.get("expr")),
            "n": f"{int(s.get('size') or 0):,}",
            "share": fmt_num(100 * (as_float(s.get("share")) or 0.0), 3) + "%",
            "loss": fmt_num(s.get("loss"), 4),
            "rest": fmt_num(s.get("rest_loss"), 4),
            "excess": fmt_num(s.get("excess"), 4),
            "total": fmt_num(s.get("excess_total"), 4),
            "q": fmt_num(s.get("q_value"), 3),
        }
        for s in found.get("slices") or []
    ]
    return {"rows": rows, "tested": found.get("tested"),
            "overall": fmt_num(found.get("overall_loss"), 4)}


def _scenarios_view(rep: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not rep:
        return None
    rows = []
    for r in rep.get("results") or []:
        rows.append({
            "name": str(r.get("name")),
            "kind": str(r.get("kind")),
            "passed": bool(r.get("passed")),
            "detail": str(r.get("detail") or r.get("reason") or ""),
        })
    return {"rows": rows, "summary": str(rep.get("summary") or ""),
            "passed": bool(rep.get("passed"))}


def _fp_view(rep: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not rep:
        return None
    return {"findings": [str(f) for f in rep.get("findings") or []],
            "n_fp": rep.get("n_fp"), "n_tn": rep.get("n_tn")}
