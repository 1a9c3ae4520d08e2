"""``hindsight evaluate``: judge a file of predictions by cost, segment and slice, for CI.

Exit codes: 0 every criterion met (or none given); 1 a criterion missed; 2 bad input or usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from hindsight.cli.common import (
    console,
    load_config_file,
    parse_criteria_options,
    print_json,
    table,
)
from hindsight.data.frames import to_arrow
from hindsight.errors import ConfigError
from hindsight.evaluate.core import Evaluation, evaluate
from hindsight.evaluate.false_positives import FalsePositiveReport, analyze_false_positives
from hindsight.evaluate.report import evaluation_report, write_evaluation_html
from hindsight.reports._format import fmt_num

__all__ = ["register"]

_SHOWN = ("expected_cost", "accuracy", "precision", "recall", "f1", "auc", "brier", "ece",
          "macro_f1", "mae", "rmse", "r2")


def _number_or_column(value: str | None) -> float | str | None:
    """``--cost-fp 5`` is a number, ``--cost-fn amount`` a column of per-row costs."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value


def _slices(values: list[str] | None) -> dict[str, str] | None:
    """``--slice 'big=amount > 1000'`` (named) or ``--slice 'amount > 1000'``."""
    if not values:
        return None
    out: dict[str, str] = {}
    for v in values:
        name, sep, expr = v.partition("=")
        # "name=expr" only when the part before "=" is a plain name (not "a == b").
        if sep and name.strip().replace("_", "").replace("-", "").replace(" ", "").isalnum() \
                and not expr.startswith("="):
            out[name.strip()] = expr.strip()
        else:
            out[v.strip()] = v.strip()
    return out


def _costs(
    fp: str | None, fn: str | None, tp: str | None, tn: str | None, under: str | None,
    over: str | None, matrix: Path | None,
) -> Any:
    binary = {k: _number_or_column(v) for k, v in (("fp", fp), ("fn", fn), ("tp", tp), ("tn", tn))
              if v is not None}
    regression = {k: _number_or_column(v) for k, v in (("under", under), ("over", over))
                  if v is not None}
    given = [bool(binary), bool(regression), matrix is not None]
    if sum(given) > 1:
        raise ConfigError(
            "Give one kind of costs: --cost-fp/--cost-fn (binary), --cost-under/--cost-over "
            "(regression) or --cost-matrix (multi-class)."
        )
    if matrix is not None:
        return load_config_file(matrix)
    return binary or regression or None


def evaluate_cmd(
    predictions: Annotated[Path, typer.Argument(help="A .parquet or .csv file of predictions.")],
    label: Annotated[str, typer.Option("--label", "-y", help="Column of true labels/values.")],
    score: Annotated[str | None, typer.Option(help="Column of scores (binary).")] = None,
    pred: Annotated[str | None, typer.Option(help="Column of decisions or predicted values.")] = None,
    task: Annotated[str | None, typer.Option(help="binary, multiclass or regression (inferred).")] = None,
    positive: Annotated[str | None, typer.Option(help="The positive class, for text labels.")] = None,
    threshold: Annotated[str, typer.Option(help='Decision threshold for scores, or "cheapest".')] = "0.5",
    cost_fp: Annotated[str | None, typer.Option(help="Cost of a false positive: a number or a column.")] = None,
    cost_fn: Annotated[str | None, typer.Option(help="Cost of a false negative: a number or a column.")] = None,
    cost_tp: Annotated[str | None, typer.Option(help="Cost of a true positive (a review, say).")] = None,
    cost_tn: Annotated[str | None, typer.Option(help="Cost of a true negative.")] = None,
    cost_under: Annotated[str | None, typer.Option(help="Regression: cost per unit predicted too low.")] = None,
    cost_over: Annotated[str | None, typer.Option(help="Regression: cost per unit predicted too high.")] = None,
    cost_matrix: Annotated[Path | None, typer.Option(help="Multi-class: a JSON/YAML cost matrix {true: {decided: cost}}.")] = None,
    segment: Annotated[list[str] | None, typer.Option(help="Column to break results down by (repeat).")] = None,
    slice_: Annotated[list[str] | None, typer.Option("--slice", help="A slice 'name=amount > 1000' or 'amount > 1000' (repeat).")] = None,
    find: Annotated[bool, typer.Option("--find", help="Find the slices where errors (or cost) concentrate.")] = False,
    criteria: Annotated[list[str] | None, typer.Option(help="A criterion like 'expected_cost<=0.8' or 'recall@segment=new>=0.5' (repeat).")] = None,
    false_positives: Annotated[bool, typer.Option("--false-positives", help="Report what the false positives have in common (binary).")] = False,
    outcome: Annotated[list[str] | None, typer.Option(help="A later-outcome column for the false-positive analysis (repeat).")] = None,
    name: Annotated[str | None, typer.Option(help="A title for the report.")] = None,
    html: Annotated[Path | None, typer.Option(help="Write the report as one offline HTML page.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap intervals.")] = 0,
) -> None:
    """Evaluate predictions by cost, segment and slice; exit 1 when a criterion is missed."""
    table_ = to_arrow(str(predictions), what="predictions")
    wanted = parse_criteria_options(criteria)
    cut: float | str = threshold if threshold == "cheapest" else _threshold(threshold)
    ev = evaluate(
        label, pred, scores=score, task=task, positive=positive, threshold=cut,
        costs=_costs(cost_fp, cost_fn, cost_tp, cost_tn, cost_under, cost_over, cost_matrix),
        segments=segment or None, slices=_slices(slice_), find=find, data=table_, seed=seed,
        name=name or predictions.name,
    )
    fps = None
    if false_positives:
        fps = _false_positives(ev, table_, label, pred, score, outcome, positive)
    report = evaluation_report(ev, criteria=wanted or None, false_positives=fps,
                               source=str(predictions))
    if html is not None:
        write_evaluation_html(report, html)
    if as_json:
        print_json(report)
    else:
        _print(ev, report, fps, html)
    if report["passed"] is False:
        raise typer.Exit(1)


def _threshold(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f'--threshold must be a number or "cheapest". Got {text!r}.') from None


def _false_positives(
    ev: Evaluation, data: Any, label: str, pred: str | None, score: str | None,
    outcome: list[str] | None, positive: str | None,
) -> FalsePositiveReport:
    if ev.task != "binary":
        raise ConfigError("--false-positives is for binary tasks; this one is " + ev.task + ".")
    y = data.column(label).to_numpy(zero_copy_only=False)
    if positive is not None:
        y = y.astype(str) == positive
    if pred is not None:
        decided = data.column(pred).to_numpy(zero_copy_only=False)
    else:
        if ev.threshold is None or score is None:
            raise ConfigError("--false-positives needs --pred or --score.")
        decided = data.column(score).to_numpy(zero_copy_only=False) >= ev.threshold
    skip = {label, pred, score}
    columns = [c for c in data.column_names if c not in skip and c not in (outcome or [])]
    return analyze_false_positives(
        data, y.astype(int), decided.astype(int), outcomes=outcome or (), columns=columns,
        scores=None if score is None else score,
    )


def _print(ev: Evaluation, report: dict[str, Any], fps: FalsePositiveReport | None,
           html: Path | None) -> None:
    flat = ev.flat()
    t = table(f"{ev.task} evaluation of {ev.n:,} rows")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for key in _SHOWN:
        if key in flat:
            t.add_row(key, fmt_num(flat[key], 4))
    if ev.threshold_choice is not None:
        c = ev.threshold_choice
        ci = "" if c.ci is None else f" (CI {fmt_num(c.ci[0], 3)} to {fmt_num(c.ci[1], 3)})"
        t.add_row("cheapest threshold", f"{fmt_num(c.threshold, 3)}{ci}")
        t.add_row("cost at cheapest", fmt_num(c.expected_cost, 4))
    console.print(t)
    groups = ev.segments + ev.slices
    if groups:
        g = table("segments and slices")
        keys = [k for k in ("recall", "precision", "accuracy", "macro_f1", "mae") if
                any(k in s.metrics for s in groups)][:3]
        for col in ("where", "rows", *keys, *(["expected cost"] if ev.costs else [])):
            g.add_column(col, justify="left" if col == "where" else "right")
        for s in groups:
            cells = [fmt_num(s.metrics.get(k), 4) for k in keys]
            cost = [fmt_num(s.expected_cost, 4)] if ev.costs else []
            g.add_row(escape(f"{s.column}={s.value}"), f"{s.n:,}", *cells, *cost)
        console.print(g)
    if ev.found is not None:
        f = table(f"where errors concentrate ({ev.found.tested} slices tested)")
        for col in ("slice", "rows", "loss", "rest", "q"):
            f.add_column(col, justify="left" if col == "slice" else "right")
        for fs in ev.found.slices[:10]:
            f.add_row(escape(fs.expr), f"{fs.size:,}", fmt_num(fs.loss, 3), fmt_num(fs.rest_loss, 3),
                      fmt_num(fs.q_value, 2))
        console.print(f if ev.found.slices else "[green]no slice is significantly worse[/]")
    if fps is not None:
        for line in fps.findings[:5]:
            console.print(f"[yellow]false positives:[/] {escape(line)}")
    for v in report["criteria"]:
        mark = "[green]met[/]" if v["verdict"] == "met" else f"[bold red]{v['verdict']}[/]"
        value = "not computed" if v["value"] is None else fmt_num(v["value"], 4)
        console.print(f"{mark}  {escape(v['metric'])} {v['op']} {v['threshold']:g} (got {value})")
    if html is not None:
        console.print(f"wrote {escape(str(html))}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cmd)
