"""``hindsight lessons add | list | search | apply``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from hindsight.cli.common import console, get_cli_ledger, print_json
from hindsight.ledger import Lesson, add_lesson, apply_lesson, list_lessons

app = typer.Typer(help="Lessons learned: record, list, search and apply them.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command("add")
def add(
    text: Annotated[str, typer.Argument(help="The lesson, in a sentence people can act on.")],
    source: Annotated[
        list[str] | None,
        typer.Option("--from", "-f", help="Experiment, failure or post-mortem it came from; repeat."),
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="A tag; repeat.")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a lesson, linked to where it came from."""
    les = add_lesson(get_cli_ledger(), text, tags=tag or [], sources=source or [], project=project)
    if as_json:
        print_json(les.to_dict())
    else:
        console.print(f"recorded lesson [bold]{les.id}[/]")


@app.command("list")
def list_(
    project: Annotated[str | None, typer.Option("--project", "-p")] = None,
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Only with this tag.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List lessons, newest first."""
    _print(list_lessons(get_cli_ledger(), project=project, tag=tag, limit=limit), as_json)


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="Words that must all appear in the lesson.")],
    project: Annotated[str | None, typer.Option("--project", "-p")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Find lessons by words in their text."""
    _print(list_lessons(get_cli_ledger(), project=project, query=query), as_json)


@app.command("apply")
def apply(
    lesson_id: Annotated[str, typer.Argument(help="The lesson.")],
    experiment_id: Annotated[str, typer.Argument(help="The experiment that applied it.")],
) -> None:
    """Record that an experiment applied a lesson."""
    apply_lesson(get_cli_ledger(), lesson_id, experiment_id)
    console.print(f"{experiment_id} applies {lesson_id}")


def _print(lessons: list[Lesson], as_json: bool) -> None:
    if as_json:
        print_json([les.to_dict() for les in lessons])
        return
    t = Table(title=f"{len(lessons)} lesson(s)")
    for col in ("id", "lesson", "tags", "from", "applied by"):
        t.add_column(col, overflow="fold")
    for les in lessons:
        t.add_row(les.id, les.text, ", ".join(les.tags), ", ".join(les.sources),
                  ", ".join(les.applied_by) or "—")
    console.print(t)
