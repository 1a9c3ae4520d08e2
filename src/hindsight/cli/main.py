"""The ``hindsight`` command: entry point, global options and error handling."""

from __future__ import annotations

import sys
from typing import Annotated

import click
import typer

from hindsight import __version__
from hindsight.cli import common, experiments, importer, lessons, postmortem
from hindsight.cli.demo_cmd import demo
from hindsight.cli.diagnose_cmd import diagnose
from hindsight.errors import HindsightError

app = typer.Typer(
    name="hindsight",
    help="Make ML failure productive and loud: record experiments, diagnose failures, "
    "remember lessons.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
experiments.register(app)
app.add_typer(lessons.app, name="lessons")
app.add_typer(postmortem.app, name="postmortem")
app.add_typer(importer.app, name="import")
app.command("diagnose")(diagnose)
app.command("demo")(demo)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hindsight {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    store: Annotated[
        str | None,
        typer.Option("--store", envvar="HINDSIGHT_STORE", help="Store URL (SQLite or PostgreSQL)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """hindsight: learn from every failed experiment."""
    common.set_store_override(store)


def main() -> None:
    """Run the CLI; hindsight's own errors print as one clear line and exit 2."""
    try:
        rc = app(standalone_mode=False)
    except HindsightError as exc:
        common.err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except click.exceptions.Abort:
        common.err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
