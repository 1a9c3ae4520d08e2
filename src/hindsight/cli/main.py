"""The ``hindsight`` command: entry point, global options and error handling."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from hindsight import __version__
from hindsight.cli import (
    common,
    data_cmd,
    evaluate_cmd,
    experiments,
    importer,
    lessons,
    monitor_cmd,
    postmortem,
    serve_cmd,
    server_cmd,
    sync_cmd,
)
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
data_cmd.register(app)
serve_cmd.register(app)
server_cmd.register(app)
sync_cmd.register(app)
evaluate_cmd.register(app)
app.add_typer(lessons.app, name="lessons")
app.add_typer(postmortem.app, name="postmortem")
app.add_typer(monitor_cmd.app, name="monitor")
app.add_typer(importer.app, name="import")
app.command("diagnose")(diagnose)
app.command("demo")(demo)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hindsight {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
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
    ctx.call_on_close(common.close_ledger)


def main() -> None:
    """Run the CLI: an error prints one `error:` line and exits 2 (usage errors too)."""
    try:
        rc = app(standalone_mode=False)
    except HindsightError as exc:
        _error(str(exc))
        sys.exit(2)
    except typer.Abort:
        common.err_console.print("aborted")
        sys.exit(130)
    except typer.TyperException as exc:
        # Typer bundles its own Click: usage errors (bad option, missing argument,
        # unknown command) arrive here as TyperException, not click.ClickException.
        sys.exit(_usage_error(exc))
    sys.exit(rc if isinstance(rc, int) else 0)


def _error(message: str) -> None:
    # Messages quote user text ("[postgres]", "[/]"): never read them as Rich markup,
    # and keep them on one line for CI logs and grep.
    common.err_console.print(
        f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True
    )


def _usage_error(exc: typer.TyperException) -> int:
    code = int(getattr(exc, "exit_code", 2))
    if type(exc).__name__ == "NoArgsIsHelpError":
        return code  # the help was printed already; nothing else to say
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        common.err_console.out(ctx.get_usage(), highlight=False)
        common.err_console.out(f"Try '{ctx.command_path} --help' for help.", highlight=False)
    _error(exc.format_message())
    return code


if __name__ == "__main__":
    main()
