"""``hindsight monitor …``: scheduled production monitors described in a monitor.yaml.

Exit codes: 0 done (alerts or not, unless ``--fail-on-alert``); 1 an alert fired and
``--fail-on-alert`` was given; 2 a bad file, store or usage.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from hindsight.cli.common import console, get_cli_ledger, parse_since, print_json, table

__all__ = ["app"]

app = typer.Typer(
    help="Production monitors: judge closed windows, alert, open incidents (monitor.yaml).",
    no_args_is_help=True,
)

_File = Annotated[Path, typer.Argument(help="The monitor.yaml describing the monitor.")]
_Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _plan(path: Path) -> Any:
    from hindsight.monitor.config import load_plan

    return load_plan(path, ledger=get_cli_ledger())


def _when(value: str | None) -> float | None:
    """An ISO time (UTC unless it says otherwise) or a span ago such as ``7d``."""
    return parse_since(value)


def _print_run(result: Any) -> None:
    judged = [w for w in result.windows if w.skipped is None]
    skipped = [w for w in result.windows if w.skipped is not None]
    console.print(
        f"monitor [bold]{escape(result.monitor)}[/]: {result.rows_pulled:,} rows pulled, "
        f"{len(judged)} window(s) judged"
        + (f", {len(skipped)} without a reference yet" if skipped else "")
        + f" ({result.seconds:.2f} s)"
    )
    flagged = [(w, f) for w in judged for f in w.flagged]
    if flagged:
        t = table(f"{len(flagged)} flagged finding(s)")
        for col in ("window", "check", "key", "detail"):
            t.add_column(col)
        for w, f in flagged[-30:]:
            t.add_row(w.to_dict()["window"], f.monitor, escape(f.key), escape(f.detail[:160]))
        console.print(t)
    for d in result.alerts:
        sev = {"critical": "bold red", "warning": "yellow"}.get(d.alert.severity, "cyan")
        line = f"[{sev}]{d.alert.severity}[/] {escape(d.alert.title)} ({d.alert.fields['window_start']})"
        if d.failure_id:
            line += f" -> incident {d.failure_id}"
            if d.postmortem_id:
                line += f", post-mortem draft {d.postmortem_id}"
        console.print(line)
    if not result.alerts:
        console.print("[green]no alerts[/]")


@app.command("run")
def run_cmd(
    monitor_file: _File,
    now: Annotated[
        str | None,
        typer.Option(help="Judge as of this instant (ISO time; default: now), for backfills."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Leave windows before this (ISO time, or 7d) unjudged on this pass."),
    ] = None,
    fail_on_alert: Annotated[
        bool, typer.Option("--fail-on-alert", help="Exit 1 when an alert fired (for CI gates).")
    ] = False,
    as_json: _Json = False,
) -> None:
    """One pass (for cron or Airflow): pull new rows, judge the windows that closed."""
    from hindsight.monitor.runner import run_monitor

    plan = _plan(monitor_file)
    result = run_monitor(plan, now=_when(now), since=_when(since))
    if as_json:
        print_json(result.to_dict())
    else:
        _print_run(result)
    if fail_on_alert and result.alerts:
        raise typer.Exit(1)


def _json_line(result: Any) -> None:
    # One object per line and pass (JSON Lines), flushed, for a log shipper or jq.
    sys.stdout.write(json.dumps(result.to_dict(), sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


@app.command("watch")
def watch_cmd(
    monitor_file: _File,
    every: Annotated[str, typer.Option(help="How often to run a pass (e.g. 60s, 5min).")] = "60s",
    iterations: Annotated[
        int | None, typer.Option(help="Stop after this many passes (default: run until stopped).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per pass.")] = False,
) -> None:
    """Run a pass every --every until stopped (Ctrl-C); state survives restarts."""
    from hindsight.monitor.runner import watch_monitor
    from hindsight.monitor.windows import parse_duration

    plan = _plan(monitor_file)
    seconds = parse_duration(every)
    try:
        watch_monitor(
            plan,
            every_s=float(seconds),
            iterations=iterations,
            on_result=_json_line if as_json else _print_run,
        )
    except KeyboardInterrupt:
        console.print("stopped")


@app.command("windows")
def windows_cmd(monitor_file: _File, as_json: _Json = False) -> None:
    """The monitor's stored windows and where its runs stand."""
    from hindsight.monitor.runner import load_state

    plan = _plan(monitor_file)
    mon = plan.monitor
    starts = mon.windows()
    state = load_state(mon)
    info = {
        "monitor": mon.name,
        "window": mon.spec.to_dict(),
        "windows": len(starts),
        "first": starts[0] if starts else None,
        "last": starts[-1] if starts else None,
        "last_judged": state.get("last_window"),
    }
    if as_json:
        print_json(info)
        return

    def iso(x: float | None) -> str:
        return "-" if x is None else dt.datetime.fromtimestamp(x, dt.UTC).strftime("%Y-%m-%d %H:%M")

    console.print(
        f"monitor [bold]{escape(mon.name)}[/]: {len(starts)} windows of "
        f"{info['window']['every']}, {iso(info['first'])} to {iso(info['last'])}; "
        f"judged up to {iso(info['last_judged'])}"
    )


@app.command("findings")
def findings_cmd(
    monitor_file: _File,
    since: Annotated[
        str | None, typer.Option(help="Only windows from this time (ISO, or 7d).")
    ] = None,
    flagged: Annotated[bool, typer.Option("--flagged", help="Only flagged findings.")] = False,
    as_json: _Json = False,
) -> None:
    """The stored findings of the monitor's runs, oldest window first."""
    from hindsight.monitor.runner import findings

    plan = _plan(monitor_file)
    rows = findings(plan.monitor, since=_when(since), flagged_only=flagged)
    if as_json:
        print_json(rows)
        return
    t = table(f"{len(rows)} finding(s)")
    for col in ("window", "check", "key", "value", "flagged", "detail"):
        t.add_column(col)
    for r in rows[-200:]:
        value = "-" if r["value"] is None else f"{r['value']:.4g}"
        mark = "[bold red]yes[/]" if r["flagged"] else "no"
        t.add_row(r["window"], r["check"], escape(r["key"]), value, mark, escape(r["detail"][:120]))
    console.print(t)
