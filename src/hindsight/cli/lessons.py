"""``hindsight lessons add | list | search | apply``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from hindsight.cli.common import console, get_cli_ledger, print_json, table, wide
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
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Project (default: the source's).")
    ] = None,
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
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project.")] = None,
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Only with this tag.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List lessons, newest first."""
    _print(list_lessons(get_cli_ledger(), project=project, tag=tag, limit=limit), as_json)


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="Words that must all appear in the lesson.")],
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Find lessons by words in their text."""
    _print(list_lessons(get_cli_ledger(), project=project, query=query), as_json)


@app.command("apply")
def apply(
    lesson_id: Annotated[str, typer.Argument(help="The lesson.")],
    experiment_id: Annotated[str, typer.Argument(help="The experiment that applied it.")],
    as_json: JsonOpt = False,
) -> None:
    """Record that an experiment applied a lesson."""
    ledger = get_cli_ledger()
    apply_lesson(ledger, lesson_id, experiment_id)
    _, les = ledger.resolve(lesson_id, "lesson")  # prefixes may have been given
    _, exp = ledger.resolve(experiment_id, "experiment")
    if as_json:
        print_json(ledger.lessons_by_id([les])[0].to_dict())
        return
    console.print(f"{exp} applies {les}", markup=False, highlight=False)


def _print(lessons: list[Lesson], as_json: bool) -> None:
    if as_json:
        print_json([les.to_dict() for les in lessons])
        return
    # The text gets the room; at under 120 columns, sources and appliers are counted
    # (`show LESSON_ID` and --json list them).
    full = wide()
    t = table(f"{len(lessons)} lesson(s)")
    t.add_column("id", no_wrap=True)  # people copy ids out of this table
    t.add_column("lesson", overflow="fold", ratio=3)
    t.add_column("tags", overflow="fold", ratio=1)
    t.add_column("from", no_wrap=True)
    t.add_column("applied by", no_wrap=True)
    for les in lessons:
        if full:  # one id a line, whole
            sources, applied = "\n".join(les.sources), "\n".join(les.applied_by) or "—"
        else:
            sources, applied = str(len(les.sources)), str(len(les.applied_by))
        t.add_row(les.id, escape(les.text), escape(", ".join(les.tags)), sources, applied)
    console.print(t)
