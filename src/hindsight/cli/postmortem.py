"""``hindsight postmortem new | show | edit | list``."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from hindsight.cli.common import (
    ago,
    console,
    err_console,
    get_cli_ledger,
    print_json,
    table,
    wide,
)
from hindsight.errors import LedgerError
from hindsight.ledger import (
    draft_postmortem,
    parse_markdown,
    postmortem_markdown,
    update_postmortem,
)

app = typer.Typer(help="Blameless post-mortems drafted from failures.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command("new")
def new(
    failure_id: Annotated[str, typer.Option("--from", help="The failure (or its experiment) id.")],
    edit_now: Annotated[bool, typer.Option("--edit", help="Open it in $EDITOR at once.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Draft a post-mortem pre-filled with the failure's evidence."""
    ledger = get_cli_ledger()
    kind, full = ledger.resolve(failure_id)
    if kind == "experiment":
        exp = ledger.experiment_record(full)
        if exp.failure_id is None:
            raise LedgerError(f"Experiment {full} has no recorded failure to write up.")
        full = exp.failure_id
    elif kind != "failure":
        raise LedgerError(
            f"{full} is a {kind}; --from takes a failure id (fail_…) or an experiment id (exp_…)."
        )
    pm = draft_postmortem(ledger, full)
    if edit_now:
        edit(pm.id, as_json=as_json)
        return
    if as_json:
        print_json(pm.to_dict())
        return
    console.out(postmortem_markdown(pm), highlight=False, end="")
    # On stderr, so `hindsight postmortem new --from ID > pm.md` keeps only the Markdown.
    err_console.print(f"[dim]draft {pm.id} saved; edit it with: hindsight postmortem edit {pm.id}[/]")


def show(
    postmortem_id: Annotated[str, typer.Argument(help="The post-mortem id.")],
    as_json: JsonOpt = False,
) -> None:
    """Print a post-mortem as Markdown."""
    pm = get_cli_ledger().postmortem(postmortem_id)
    if as_json:
        print_json(pm.to_dict())
    else:
        console.out(postmortem_markdown(pm), highlight=False, end="")


app.command("show")(show)


@app.command("edit")
def edit(
    postmortem_id: Annotated[str, typer.Argument(help="The post-mortem id.")],
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--file", exists=True, dir_okay=False, help="Read the edited Markdown from a file instead."
        ),
    ] = None,
    status: Annotated[str | None, typer.Option(help="draft, reviewed or final.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Edit a post-mortem in $EDITOR (or from a file); new lessons are recorded."""
    ledger = get_cli_ledger()
    pm = ledger.postmortem(postmortem_id)
    if from_file is not None:
        text = from_file.read_text(encoding="utf-8")
    else:
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
        if not editor:
            raise LedgerError(
                "Set $EDITOR (e.g. export EDITOR=nano) or pass --file EDITED.md."
            )
        with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False, encoding="utf-8") as fh:
            fh.write(postmortem_markdown(pm))
            path = Path(fh.name)
        try:
            try:
                code = subprocess.call([*shlex.split(editor), str(path)])
            except OSError as exc:
                raise LedgerError(
                    f"Cannot start the editor {editor!r} ({exc}). Fix $EDITOR or pass --file EDITED.md."
                ) from exc
            if code != 0:
                raise LedgerError(f"The editor exited with {code}; nothing was changed.")
            text = path.read_text(encoding="utf-8")
        finally:
            path.unlink(missing_ok=True)
    parsed = parse_markdown(text)
    updated = update_postmortem(
        ledger, pm.id, title=parsed["title"], status=status, sections=parsed["sections"]
    )
    if as_json:
        print_json(updated.to_dict())
        return
    console.print(f"saved {updated.id} ({updated.status})")


@app.command("list")
def list_(
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List post-mortems, newest first."""
    rows = get_cli_ledger().store.list_postmortems(project=project)
    if as_json:
        print_json(rows)
        return
    with_failure = wide()
    t = table(f"{len(rows)} post-mortem(s)")
    t.add_column("id", no_wrap=True)  # people copy ids out of this table
    t.add_column("title", overflow="fold", ratio=1)
    t.add_column("status", no_wrap=True)
    t.add_column("created", no_wrap=True)
    if with_failure:
        t.add_column("failure", no_wrap=True)
    for r in rows:
        row = [r["id"], escape(r["title"]), r["status"], ago(r["created_at"])]
        if with_failure:
            row.append(r["failure_id"] or "—")
        t.add_row(*row)
    console.print(t)
