"""``hindsight diagnose LOGFILE``: classify a failure from its log text."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel

from hindsight.cli.common import console, load_config_file, print_json
from hindsight.diagnose import diagnose as run_diagnose


def diagnose(
    log: Annotated[
        Path | None,
        typer.Argument(help="A log file; omit or '-' to read standard input."),
    ] = None,
    config: Annotated[Path | None, typer.Option(help="The run's config (JSON or TOML).")] = None,
    exit_code: Annotated[int | None, typer.Option(help="The process's exit code.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Diagnose a failure from log text: category, likely cause, config issues, fixes."""
    if log is None or str(log) == "-":
        text = sys.stdin.read()
    elif log.is_file():
        text = log.read_text(encoding="utf-8", errors="replace")
    else:
        raise typer.BadParameter(
            f"{str(log)!r} is not a file. Pass a log file, or '-' (or nothing) to read "
            "standard input.",
            param_hint="'LOG'",
        )
    d = run_diagnose(text, load_config_file(config), exit_code=exit_code)
    if as_json:
        print_json(d.to_dict())
        return
    # The likely cause quotes the log: escape it so "[...]" in a log is not read as markup.
    body = [f"[bold]{d.category}[/] — {escape(d.title)} (confidence {d.confidence:.0%})",
            f"likely cause: {escape(d.likely_cause)}"]
    body += [f"[yellow]config:[/] {escape(i.message)}" for i in d.config_issues]
    body += [f"try: {escape(r)}" for r in d.recommendations]
    console.print(Panel("\n".join(body), title=f"fingerprint {d.fingerprint.hash}"))
