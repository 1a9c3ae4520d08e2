"""``hindsight import mlflow``: bring runs tracked elsewhere into the ledger."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hindsight.cli.common import console, err_console, get_cli_ledger, print_json
from hindsight.ledger.mlflow_bridge import ImportResult, import_runs

app = typer.Typer(
    help="Import runs from other trackers into the ledger (failed runs get diagnosed).",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """Import runs from other trackers into the ledger."""  # keeps `mlflow` a subcommand


@app.command("mlflow")
def mlflow_(
    tracking_uri: Annotated[
        str,
        typer.Option(
            "--tracking-uri",
            envvar="MLFLOW_TRACKING_URI",
            help="The MLflow tracking server, e.g. http://127.0.0.1:5000.",
        ),
    ],
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment", "-e", help="MLflow experiment to import; repeat. Default: all."
        ),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(
            "--project", "-p", help="Project to file the runs under. Default: the MLflow experiment's name."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Import MLflow runs: statuses, params as config, metric histories; diagnose failed runs.

    Runs imported before are skipped, so it is safe to run again. Runs still
    RUNNING in MLflow are left for a later import unless they went silent a day
    ago, then they count as crashed.
    """
    ledger = get_cli_ledger()
    if as_json:
        result = import_runs(ledger, tracking_uri, experiment or None, project=project)
        print_json(result.to_dict())
        return
    with Progress(
        TextColumn("importing MLflow runs"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("runs", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = import_runs(
            ledger, tracking_uri, experiment or None, project=project, progress=advance
        )
    _summary(result)


def _summary(result: ImportResult) -> None:
    t = Table(title="MLflow import")
    t.add_column("imported", justify="right")
    t.add_column("skipped (imported before)", justify="right")
    t.add_column("failed, diagnosed", justify="right")
    t.add_column("still running", justify="right")
    t.add_row(
        str(len(result.imported)), str(result.skipped), str(result.failed), str(result.still_running)
    )
    console.print(t)
    if result.failed:
        console.print("See the diagnoses with [bold]hindsight ls --failed[/] and [bold]hindsight show <id>[/].")
