"""Commands over experiments: run, ls, show, similar, export, metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from hindsight.api import similar_failures
from hindsight.cli.common import (
    ago,
    console,
    err_console,
    get_cli_ledger,
    load_config_file,
    parse_criteria_options,
    parse_since,
    print_json,
    sparkline,
    status_style,
    table,
    wide,
)
from hindsight.cli.postmortem import show as pm_show
from hindsight.ledger import (
    ExperimentRecord,
    SimilarFailure,
    experiment_markdown,
    export_markdown,
    learning_metrics,
    run_command,
)
from hindsight.ledger.criteria import format_value
from hindsight.ledger.explain import similar_text
from hindsight.ledger.records import STATUSES
from hindsight.ledger.views import experiment_detail

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ProjectOpt = Annotated[str | None, typer.Option("--project", "-p", help="Only this project.")]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="Only since: 7d, 24h, 2w or an ISO date.")
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("run", context_settings={"allow_interspersed_args": False})(run)
    app.command("ls")(ls)
    app.command("show")(show)
    app.command("similar")(similar)
    app.command("export")(export)
    app.command("metrics")(metrics)


def run(
    command: Annotated[list[str], typer.Argument(help="The command to run, after --.")],
    name: Annotated[str | None, typer.Option(help="Experiment name (default: the program).")] = None,
    hypothesis: Annotated[str, typer.Option(help="What you expect and why.")] = "",
    approach: Annotated[str, typer.Option(help="How you test it.")] = "",
    config: Annotated[
        Path | None, typer.Option(help="Config file (JSON or TOML) stored with the run.")
    ] = None,
    criteria: Annotated[
        list[str] | None, typer.Option("--criteria", "-c", help="Criterion like 'acc>=0.9'; repeat.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="Approach tag; repeat.")] = None,
    project: ProjectOpt = None,
    builds_on: Annotated[
        list[str] | None, typer.Option("--builds-on", help="Experiment id this continues.")
    ] = None,
    applies: Annotated[
        list[str] | None, typer.Option("--applies", help="Lesson id this run applies.")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="Do not print the failure analysis.")] = False,
    strict: Annotated[
        bool,
        typer.Option(help="Exit 1 when the command succeeds but misses its --criteria."),
    ] = False,
) -> None:
    """Run any command as a recorded experiment and exit with its exit code.

    Output streams through; a non-zero exit is diagnosed from the log. The command
    can write final metrics as JSON to $HINDSIGHT_METRICS_FILE to be judged against
    --criteria. Example: hindsight run --name train -c 'acc>=0.9' -- python train.py
    """
    result = run_command(
        get_cli_ledger(),
        command,
        name=name,
        hypothesis=hypothesis,
        approach=approach,
        config=load_config_file(config),
        criteria=parse_criteria_options(criteria),
        tags=tag or [],
        project=project,
        builds_on=builds_on or [],
        applies=applies or [],
        quiet=quiet,
    )
    r = result.record
    err_console.print(
        f"hindsight: {r.id} {status_style(r.status, r.outcome)} in {r.duration_s or 0:.1f}s"
        + (f" — {escape(r.outcome_reason)}" if r.outcome_reason else ""),
        soft_wrap=True,
    )
    if strict and result.exit_code == 0 and r.outcome in ("failure", "partial"):
        raise typer.Exit(1)
    raise typer.Exit(result.exit_code)


def ls(
    failed: Annotated[bool, typer.Option("--failed", help="Only crashed, killed or failed.")] = False,
    project: ProjectOpt = None,
    since: SinceOpt = None,
    status: Annotated[
        list[str] | None, typer.Option(help="running, finished, crashed or killed; repeat.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List experiments, newest first."""
    unknown = sorted(set(status or []) - set(STATUSES))
    if unknown:
        raise typer.BadParameter(
            f"{', '.join(unknown)} is not a status. Use {', '.join(STATUSES)}.",
            param_hint="'--status'",
        )
    exps = get_cli_ledger().experiments(
        project=project, since=parse_since(since), failed=failed, status=status, limit=limit
    )
    if as_json:
        print_json([e.to_dict() for e in exps])
        return
    # Ids stay whole (people copy them); the project column only when rows differ in it,
    # the reason only where there is room (`show ID` and --json always have both).
    many_projects = project is None and len({e.project for e in exps}) > 1
    with_reason = wide()
    t = table(f"{len(exps)} experiment(s)")
    t.add_column("id", no_wrap=True)
    t.add_column("name", overflow="fold", ratio=1)
    if many_projects:
        t.add_column("project", overflow="fold", ratio=1)
    t.add_column("status / outcome", no_wrap=True)
    t.add_column("started", no_wrap=True)
    t.add_column("took", no_wrap=True, justify="right")
    if with_reason:
        t.add_column("why", overflow="fold", ratio=3)
    for e in exps:
        row = [e.id, escape(e.name)]
        if many_projects:
            row.append(escape(e.project))
        row += [status_style(e.status, e.outcome), ago(e.started_at),
                f"{e.duration_s:.1f}s" if e.duration_s is not None else "—"]
        if with_reason:
            row.append(escape((e.outcome_reason or "")[:120]))
        t.add_row(*row)
    console.print(t)


def show(
    record_id: Annotated[str, typer.Argument(help="Experiment id (or a unique prefix).")],
    md: Annotated[bool, typer.Option("--md", help="Print Markdown.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show an experiment; a failed one with its diagnosis and similar past failures."""
    ledger = get_cli_ledger()
    kind, full = ledger.resolve(record_id)
    if kind == "postmortem":
        pm_show(full, as_json=as_json)
        return
    if kind == "failure":
        f = ledger.failure_record(full)
        similar = similar_failures(full, ledger=ledger)
        if as_json:
            print_json({"failure": f.to_dict(), "similar": [s.to_dict() for s in similar]})
            return
        if f.experiment_id:
            full = f.experiment_id
        else:
            console.print(Panel(escape(f"{f.title}\n{f.diagnosis.get('likely_cause')}"),
                                title=f.id))
            _print_similar(similar)
            return
    if kind == "lesson":
        les = ledger.lessons_by_id([full])[0]
        if as_json:
            print_json(les.to_dict())
        else:
            console.print(Panel(escape(les.text), title=f"lesson {les.id}"))
            console.print(f"from: {', '.join(les.sources) or '—'}; applied by: "
                          f"{', '.join(les.applied_by) or 'nobody yet'}")
        return
    if md:
        console.out(experiment_markdown(ledger, full), highlight=False, end="")
        return
    if as_json:
        print_json(experiment_detail(ledger, full))
        return
    e = ledger.experiment_record(full)
    similar = similar_failures(e.id, ledger=ledger) if e.failure_id else []
    # The same lessons and next steps as the Markdown page: the experiment's and its failure's.
    lessons = ledger.lessons_for([e.id, *([e.failure_id] if e.failure_id else [])])
    next_steps = [n["text"] for n in ledger.store.notes(e.id) if n["kind"] == "next_step"]
    _print_experiment(e)
    if e.failure_id:
        f = ledger.failure_record(e.failure_id)
        d = f.diagnosis
        body = [f"[bold]{escape(f.title)}[/]",
                f"[bold]{d.get('category')}[/] — {escape(str(d.get('title')))}",
                f"likely cause: {escape(str(d.get('likely_cause')))}"]
        body += [f"[yellow]config:[/] {escape(str(i.get('message')))}"
                 for i in d.get("config_issues") or []]
        body += [f"try: {escape(str(r))}" for r in d.get("recommendations") or []]
        console.print(Panel("\n".join(body), title=f"failure {f.id}", border_style="red"))
        _print_curves(f.evidence.get("curves"))
        _print_similar(similar)
    for les in lessons:
        console.print(f"lesson {les.id}: {les.text}", markup=False, highlight=False)
    for step in next_steps:
        console.print(f"next step: {step}", markup=False, highlight=False)


def _print_curves(curves: Any) -> None:
    """The training guard's curves up to its stop, one sparkline each."""
    if not isinstance(curves, dict):
        return
    for name, curve in curves.items():
        values = curve.get("values") if isinstance(curve, dict) else None
        if not values:
            continue
        steps = curve.get("steps") or []
        span = f"steps {steps[0]}-{steps[-1]}" if steps else f"{len(values)} points"
        console.print(
            f"  {name:<10} {sparkline(values)}  {_num(values[0])} → {_num(values[-1])} ({span})",
            markup=False, highlight=False,
        )


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)


def _print_experiment(e: ExperimentRecord) -> None:
    # Names, hypotheses, configs and exception text are the user's: escape them so
    # "[2048, 1024]" or "[/]" print as written instead of being read as Rich markup.
    lines = [
        f"{status_style(e.status, e.outcome)}  project {escape(e.project)}  started "
        f"{ago(e.started_at)}  duration {e.duration_s or 0:.1f}s",
        f"hypothesis: {escape(e.hypothesis or '—')}",
    ]
    if e.approach:
        lines.append(f"approach: {escape(e.approach)}")
    if e.tags:
        lines.append(f"tags: {escape(', '.join(e.tags))}")
    if e.config:
        lines.append("config: " + escape(", ".join(f"{k}={v}" for k, v in e.config.items())))
    if e.outcome_reason:
        lines.append(f"outcome: {escape(e.outcome_reason)}")
    console.print(Panel("\n".join(lines), title=escape(f"{e.name} ({e.id})")))
    if e.verdicts:
        t = Table("criterion", "value", "verdict")
        for v in e.verdicts:
            colour = {"met": "green", "missed": "red"}.get(v["verdict"], "yellow")
            value = format_value(v["value"], 4)
            t.add_row(f"{v['metric']} {v['op']} {v['threshold']:g}", value,
                      f"[{colour}]{v['verdict']}[/]")
        console.print(t)


def _print_similar(similar: list[SimilarFailure]) -> None:
    if not similar:
        console.print("[dim]No similar past failures.[/]")
        return
    console.print("[bold]Similar past failures[/]")
    for s in similar:
        console.print(similar_text(s, indent="  "), highlight=False, markup=False)


def similar(
    record_id: Annotated[str, typer.Argument(help="A failure or experiment id.")],
    k: Annotated[int, typer.Option("-k", help="How many.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Past failures most like this one, with their lessons and fixes."""
    found = similar_failures(record_id, k=k, ledger=get_cli_ledger())
    if as_json:
        print_json([s.to_dict() for s in found])
        return
    _print_similar(found)


def export(
    md: Annotated[
        Path,
        typer.Option(
            "--md", file_okay=False, help="Folder for one Markdown page per experiment."
        ),
    ],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export experiments as Markdown pages with an index."""
    paths = export_markdown(get_cli_ledger(), md, project=project)
    if as_json:
        print_json([str(p) for p in paths])
        return
    console.print(f"wrote {len(paths)} file(s) to {md}", markup=False, highlight=False)


def metrics(project: ProjectOpt = None, since: SinceOpt = None, as_json: JsonOpt = False) -> None:
    """Learning metrics: velocity, recovery time, lessons applied, repeats, innovation."""
    m = learning_metrics(get_cli_ledger(), project=project, since=parse_since(since))
    if as_json:
        print_json(m.to_dict())
        return
    t = Table(title=f"Learning metrics{' — ' + project if project else ''}", show_header=True)
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("behind it")

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{x:.0%}"

    t.add_row("experiment velocity", f"{m.velocity_per_week:.1f}/week",
              f"{m.experiments} experiments over {m.weeks:.1f} week(s)")
    rec = "—" if m.recovery_hours_median is None else _hours(m.recovery_hours_median)
    t.add_row("failure recovery time (median)", rec,
              f"{m.recoveries} recovered, {m.unrecovered} not yet")
    t.add_row("lesson application rate", pct(m.lesson_application_rate),
              f"{m.lessons_applied} of {m.lessons} lessons applied")
    t.add_row("repeat-failure rate", pct(m.repeat_failure_rate),
              f"{m.repeat_failures} of {m.failures} failures had a known lesson")
    t.add_row("innovation index", pct(m.innovation_index),
              f"{m.innovative_experiments} experiments introduced a new approach tag")
    t.add_row("[bold]learning efficiency[/]", f"[bold]{m.learning_efficiency:.2f}[/]",
              "0.3·apply + 0.3·(1-repeat) + 0.2·innovation + 0.2·min(velocity/10, 1)")
    console.print(t)


def _hours(h: float) -> str:
    if h < 1 / 60:
        return f"{h * 3600:.0f} s"
    if h < 1:
        return f"{h * 60:.0f} min"
    return f"{h:.1f} h"
